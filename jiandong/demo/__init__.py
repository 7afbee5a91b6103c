"""The demo club: its data and the pictures drawn for it."""
