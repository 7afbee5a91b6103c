-- The trigram indexes of search (see 002_search.sql), made whenever pg_trgm is installed and they are
-- missing: run after the migrations on every start and `server.py migrate`, so that installing the
-- extension later (CREATE EXTENSION pg_trgm) and restarting is all it takes.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS videos_search_idx ON videos
                 USING gin (lower(title || '' '' || summary) gin_trgm_ops) WHERE status = 1';
        EXECUTE 'CREATE INDEX IF NOT EXISTS lives_search_idx ON lives
                 USING gin (lower(title || '' '' || summary) gin_trgm_ops) WHERE status = 1';
    END IF;
END
$$;
