-- Sign-ups per match: an optional capacity and sign-up deadline on the match; on each sign-up, who among
-- the staff added it (NULL: the member signed up), the reason they gave, and attendance once marked.
ALTER TABLE competitions
    ADD COLUMN capacity integer CHECK (capacity > 0),        -- NULL: no limit
    ADD COLUMN apply_deadline timestamptz;                   -- NULL: open until the match starts

ALTER TABLE competition_applies
    ADD COLUMN attended boolean,                             -- NULL: not marked; true came; false did not
    ADD COLUMN attended_at timestamptz,
    ADD COLUMN marked_by bigint REFERENCES admins (id) ON DELETE SET NULL,
    ADD COLUMN added_by bigint REFERENCES admins (id) ON DELETE SET NULL,
    ADD COLUMN note text NOT NULL DEFAULT '';

-- The sheet of a match in sign-up order.
CREATE INDEX competition_applies_sheet_idx ON competition_applies (competition_id, created_at, id);
