-- Substring search over videos and lives. Queries match
--     lower(title || ' ' || summary) LIKE '%' || lower(term) || '%'
-- which trigram GIN indexes on that exact expression serve for terms of 3+ characters (Chinese
-- included). pg_trgm ships with PostgreSQL's contrib package but not with every build (the
-- embedded pgserver lacks it): without it the indexes are skipped and search scans, still correct.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm is available but this role may not create it; search will scan';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS videos_search_idx ON videos
                 USING gin (lower(title || '' '' || summary) gin_trgm_ops) WHERE status = 1';
        EXECUTE 'CREATE INDEX IF NOT EXISTS lives_search_idx ON lives
                 USING gin (lower(title || '' '' || summary) gin_trgm_ops) WHERE status = 1';
    END IF;
END
$$;
