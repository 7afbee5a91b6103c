"""Where state lives: PostgreSQL, Redis, media files, and what an outage of one of them means."""
