-- Statistics on the searched expression, so the planner knows how common a term is. The trigram
-- indexes of 002 are partial (WHERE status = 1), and PostgreSQL ignores the statistics of partial
-- indexes: without these it guesses a handful of rows for any term. A common term (half of 100k
-- videos match 全场回放) then took a bitmap scan of every match and a sort (150 ms) instead of
-- walking videos_published_idx newest first until the page is full (0.1 ms); a rare term still
-- gets the trigram index. Expression statistics need PostgreSQL 14.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        EXECUTE 'CREATE STATISTICS IF NOT EXISTS videos_search_stats ON (lower(title || '' '' || summary)) FROM videos';
        EXECUTE 'CREATE STATISTICS IF NOT EXISTS lives_search_stats ON (lower(title || '' '' || summary)) FROM lives';
    END IF;
END
$$;
-- Collected now for existing data; autovacuum keeps them current.
ANALYZE videos;
ANALYZE lives;
