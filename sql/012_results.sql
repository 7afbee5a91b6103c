-- Match results: the opponent as a record of its own (reused across matches), the club's team, the final
-- and per-period scores on the match, and a box score per player who played. When a match has a result,
-- the H5 `score` and the box-score table of `description` are derived from it (services/results.py).
CREATE TABLE opponents (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    logo        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE competitions
    ADD COLUMN team_id         bigint REFERENCES teams (id) ON DELETE SET NULL,   -- the club's team
    ADD COLUMN opponent_id     bigint REFERENCES opponents (id) ON DELETE RESTRICT,
    ADD COLUMN club_score      integer CHECK (club_score BETWEEN 0 AND 999),
    ADD COLUMN opponent_score  integer CHECK (opponent_score BETWEEN 0 AND 999),
    ADD COLUMN periods         jsonb,                                             -- [[club, opponent], ...]
    ADD CONSTRAINT competitions_result_whole CHECK ((club_score IS NULL) = (opponent_score IS NULL));

-- One row per player who played; stats holds the columns of services/box_score.py (integers by key).
CREATE TABLE box_scores (
    competition_id  bigint NOT NULL REFERENCES competitions (id) ON DELETE CASCADE,
    player_id       bigint NOT NULL REFERENCES players (id) ON DELETE RESTRICT,
    stats           jsonb NOT NULL,
    PRIMARY KEY (competition_id, player_id)
);
CREATE INDEX box_scores_player_idx ON box_scores (player_id);
