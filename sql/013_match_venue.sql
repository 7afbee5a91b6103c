-- Where a match is played (console only; the pages read the title and texts).
ALTER TABLE competitions ADD COLUMN venue text NOT NULL DEFAULT '' CHECK (length(venue) <= 100);
