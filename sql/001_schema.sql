-- The whole application's schema. Money is integer fen; times are timestamptz; empty text is ''.

-- Accounts ---------------------------------------------------------------------------------------

CREATE TABLE users (
    id                  bigserial PRIMARY KEY,
    openid              text NOT NULL UNIQUE,
    unionid             text,
    username            text NOT NULL DEFAULT '',
    mobile              text UNIQUE,                      -- NULL until a phone is bound
    sex                 smallint NOT NULL DEFAULT 0 CHECK (sex IN (0, 1, 2)),
    country             text NOT NULL DEFAULT '',
    province            text NOT NULL DEFAULT '',
    city                text NOT NULL DEFAULT '',
    head_img            text NOT NULL DEFAULT '',
    -- once the user edits the profile, logins stop copying WeChat's nickname and avatar over it
    profile_edited      boolean NOT NULL DEFAULT false,
    is_disabled         boolean NOT NULL DEFAULT false,
    -- stored 0 none, 1 active, 2 disabled by an admin; 3 (expired) is derived from the expiry on read
    member_status       smallint NOT NULL DEFAULT 0 CHECK (member_status IN (0, 1, 2, 3)),
    member_expire_time  timestamptz,
    register_time       timestamptz NOT NULL DEFAULT now(),
    last_login_time     timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE admins (
    id               bigserial PRIMARY KEY,
    username         text NOT NULL UNIQUE,
    password_hash    text NOT NULL,
    is_active        boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_login_time  timestamptz
);

-- Files (images, videos) -------------------------------------------------------------------------

CREATE TABLE files (
    id          bigserial PRIMARY KEY,
    cate        text NOT NULL DEFAULT 'image',            -- image, video, ...
    name        text NOT NULL,                            -- URL or path the pages load
    original    text NOT NULL DEFAULT '',                 -- original file name
    size        bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
    mime        text NOT NULL DEFAULT '',
    sha256      text,
    user_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_sha256_idx ON files (sha256);

-- Club: teams, players, competitions -------------------------------------------------------------

CREATE TABLE teams (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    logo         text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    sort         integer NOT NULL DEFAULT 0,
    status       smallint NOT NULL DEFAULT 1 CHECK (status IN (0, 1)),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- A player's profile (球员信息), kept by the club and linked to the user who owns it.
CREATE TABLE players (
    id            bigserial PRIMARY KEY,
    user_id       bigint UNIQUE REFERENCES users (id) ON DELETE SET NULL,
    cn_name       text NOT NULL,
    birthday      date,
    birth_addr    text NOT NULL DEFAULT '',
    mobile        text NOT NULL DEFAULT '',
    sex           smallint NOT NULL DEFAULT 0 CHECK (sex IN (0, 1, 2)),
    stature       integer CHECK (stature IS NULL OR stature BETWEEN 50 AND 260),      -- cm
    weight        numeric(5, 1) CHECK (weight IS NULL OR weight BETWEEN 10 AND 300),  -- kg
    native_place  text NOT NULL DEFAULT '',
    nation        text NOT NULL DEFAULT '',
    photo         text NOT NULL DEFAULT '',
    individual    text NOT NULL DEFAULT '',
    number        text NOT NULL DEFAULT '',
    position      text NOT NULL DEFAULT '',
    school        text NOT NULL DEFAULT '',
    experience    text NOT NULL DEFAULT '',
    feature       text NOT NULL DEFAULT '',
    honor         text NOT NULL DEFAULT '',
    comment       text NOT NULL DEFAULT '',
    status        smallint NOT NULL DEFAULT 1 CHECK (status IN (0, 1)),  -- 0 disabled
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Team membership over time; left_at NULL marks the current team (at most one per player).
CREATE TABLE team_members (
    id          bigserial PRIMARY KEY,
    team_id     bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    player_id   bigint NOT NULL REFERENCES players (id) ON DELETE CASCADE,
    joined_at   timestamptz NOT NULL DEFAULT now(),
    left_at     timestamptz,
    CHECK (left_at IS NULL OR left_at >= joined_at)
);
CREATE INDEX team_members_player_idx ON team_members (player_id, team_id);
CREATE INDEX team_members_team_idx ON team_members (team_id);
CREATE UNIQUE INDEX team_members_current_idx ON team_members (player_id) WHERE left_at IS NULL;

CREATE TABLE competitions (
    id            bigserial PRIMARY KEY,
    title         text NOT NULL,
    summary       text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',               -- sanitised HTML
    score         text NOT NULL DEFAULT '',
    main_img_url  text NOT NULL DEFAULT '',
    play_time     timestamptz NOT NULL,
    notes         text NOT NULL DEFAULT '',
    is_hot        smallint NOT NULL DEFAULT 0 CHECK (is_hot IN (0, 1)),
    status        smallint NOT NULL DEFAULT 1 CHECK (status IN (0, 1)),  -- 0 draft, 1 published
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX competitions_published_time_idx ON competitions (play_time) WHERE status = 1;

CREATE TABLE competition_teams (
    competition_id  bigint NOT NULL REFERENCES competitions (id) ON DELETE CASCADE,
    team_id         bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (competition_id, team_id)
);
CREATE INDEX competition_teams_team_idx ON competition_teams (team_id, competition_id);

-- Sign-ups (赛事报名): one per user and competition.
CREATE TABLE competition_applies (
    id              bigserial PRIMARY KEY,
    competition_id  bigint NOT NULL REFERENCES competitions (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT competition_applies_once UNIQUE (competition_id, user_id)
);
CREATE INDEX competition_applies_user_idx ON competition_applies (user_id);

-- Replays (type 1) and highlights (type 2).
CREATE TABLE videos (
    id              bigserial PRIMARY KEY,
    competition_id  bigint REFERENCES competitions (id) ON DELETE SET NULL,
    title           text NOT NULL,
    summary         text NOT NULL DEFAULT '',
    main_img_url    text NOT NULL DEFAULT '',
    file_id         bigint REFERENCES files (id) ON DELETE SET NULL,
    type            smallint NOT NULL DEFAULT 1 CHECK (type IN (1, 2)),
    browse_num      bigint NOT NULL DEFAULT 0 CHECK (browse_num >= 0),
    status          smallint NOT NULL DEFAULT 1 CHECK (status IN (0, 1)),  -- 0 hidden, 1 published
    publish_time    timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX videos_published_idx ON videos (publish_time DESC, id DESC) WHERE status = 1;
CREATE INDEX videos_competition_idx ON videos (competition_id);

-- Live streams. play_* are the viewers' URLs; plug_flow (the push URL) never leaves the admin side.
CREATE TABLE lives (
    id              bigserial PRIMARY KEY,
    competition_id  bigint REFERENCES competitions (id) ON DELETE SET NULL,
    title           text NOT NULL,
    summary         text NOT NULL DEFAULT '',
    main_img_url    text NOT NULL DEFAULT '',
    app_name        text NOT NULL DEFAULT 'live',
    stream_name     text NOT NULL UNIQUE,
    play_rtmp       text NOT NULL DEFAULT '',
    play_flv        text NOT NULL DEFAULT '',
    play_m3u8       text NOT NULL DEFAULT '',
    plug_flow       text NOT NULL DEFAULT '',
    -- 0 not started, 1 live, 2 ended
    live_status     smallint NOT NULL DEFAULT 0 CHECK (live_status IN (0, 1, 2)),
    live_changed_at timestamptz,
    online_show     smallint NOT NULL DEFAULT 1 CHECK (online_show IN (0, 1)),
    browse_num      bigint NOT NULL DEFAULT 0 CHECK (browse_num >= 0),
    status          smallint NOT NULL DEFAULT 1 CHECK (status IN (0, 1)),
    publish_time    timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lives_published_idx ON lives (live_status, publish_time DESC, id DESC) WHERE status = 1;
CREATE INDEX lives_competition_idx ON lives (competition_id);

-- Chat history of the live rooms; stream_id (the Redis stream entry) makes batch inserts idempotent.
CREATE TABLE chat_messages (
    id          bigserial PRIMARY KEY,
    room_id     bigint NOT NULL,
    user_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    uuid        text NOT NULL DEFAULT '',                 -- sender's connection id
    stream_id   text UNIQUE,
    content     text NOT NULL,
    user_info   jsonb NOT NULL DEFAULT '{}'::jsonb,       -- {username, head_img} at send time
    msg_time    timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_room_idx ON chat_messages (room_id, id DESC);

-- Membership products and orders -----------------------------------------------------------------

CREATE TABLE business_categories (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    status      smallint NOT NULL DEFAULT 1 CHECK (status IN (0, 1)),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE businesses (
    id           bigserial PRIMARY KEY,
    s_id         bigint REFERENCES business_categories (id) ON DELETE SET NULL,
    title        text NOT NULL,
    cost         bigint NOT NULL DEFAULT 0 CHECK (cost >= 0),      -- fen
    price        bigint NOT NULL CHECK (price > 0),                -- fen
    content      text NOT NULL DEFAULT '',
    remark       text NOT NULL DEFAULT '',
    num          text NOT NULL DEFAULT '',
    valid_time   integer NOT NULL DEFAULT 1 CHECK (valid_time > 0), -- years
    amount       integer NOT NULL DEFAULT 0 CHECK (amount >= 0),    -- stock
    specs        text NOT NULL DEFAULT '',
    people       integer NOT NULL DEFAULT 1 CHECK (people > 0),
    audit_time   timestamptz,
    istui        smallint NOT NULL DEFAULT 0 CHECK (istui IN (0, 1)),
    status       smallint NOT NULL DEFAULT 1 CHECK (status IN (0, 1)),  -- 1 on sale
    sort         integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- status: -1 closed, 0 awaiting payment, 1 paid, 2 timed out, 3 refunding, 4 refunded, 5 cancelled
CREATE TABLE orders (
    id                 bigserial PRIMARY KEY,
    order_no           text NOT NULL UNIQUE CHECK (order_no ~ '^[0-9A-Za-z_-]{6,32}$'),
    user_id            bigint NOT NULL REFERENCES users (id),
    business_id        bigint NOT NULL REFERENCES businesses (id),
    name               text NOT NULL DEFAULT '',
    count              integer NOT NULL DEFAULT 1 CHECK (count > 0),
    price              bigint NOT NULL CHECK (price >= 0),            -- fen, unit price
    total_price        bigint NOT NULL CHECK (total_price >= 0),      -- fen, to pay
    discounts          bigint NOT NULL DEFAULT 0 CHECK (discounts >= 0),
    pay_amount         bigint NOT NULL DEFAULT 0 CHECK (pay_amount >= 0),
    pay_time           timestamptz,
    pay_way            text NOT NULL DEFAULT '',
    transaction_id     text UNIQUE,
    remark             text NOT NULL DEFAULT '',
    status             smallint NOT NULL DEFAULT 0 CHECK (status IN (-1, 0, 1, 2, 3, 4, 5)),
    coupon             text NOT NULL DEFAULT '',
    phone              text NOT NULL DEFAULT '',
    snap_items         jsonb NOT NULL,
    prepay_id          text,
    prepay_expires_at  timestamptz,
    closed_at          timestamptz,
    create_time        timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 1 OR (pay_time IS NOT NULL AND transaction_id IS NOT NULL))
);
CREATE INDEX orders_user_idx ON orders (user_id, id DESC);
CREATE INDEX orders_awaiting_idx ON orders (create_time) WHERE status = 0;

-- Each paid order extends one membership once.
CREATE TABLE member_extensions (
    id           bigserial PRIMARY KEY,
    order_id     bigint NOT NULL UNIQUE REFERENCES orders (id),
    user_id      bigint NOT NULL REFERENCES users (id),
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until > valid_from)
);

-- Every payment notification as received (also the ones that failed verification).
CREATE TABLE payment_notifications (
    id              bigserial PRIMARY KEY,
    order_id        bigint REFERENCES orders (id),
    out_trade_no    text NOT NULL DEFAULT '',
    transaction_id  text NOT NULL DEFAULT '',
    source          text NOT NULL DEFAULT 'notify',       -- notify, orderquery, dev
    outcome         text NOT NULL,                        -- paid, duplicate, rejected: <reason>
    raw             text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_notifications_order_idx ON payment_notifications (order_id);

-- Content ----------------------------------------------------------------------------------------

CREATE TABLE feedback (
    id          bigserial PRIMARY KEY,
    user_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    type        smallint NOT NULL DEFAULT 1 CHECK (type IN (1, 2, 3)),  -- 1 suggestion, 2 complaint, 3 other
    phone       text NOT NULL DEFAULT '',
    title       text NOT NULL DEFAULT '',
    content     text NOT NULL CHECK (length(content) BETWEEN 1 AND 2000),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- position: 1 player centre, 2 match centre, 3 news centre
CREATE TABLE banners (
    id           bigserial PRIMARY KEY,
    title        text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    position     smallint NOT NULL,
    img_id       bigint REFERENCES files (id) ON DELETE SET NULL,
    img_url      text NOT NULL DEFAULT '',
    jump_url     text NOT NULL DEFAULT '',
    sort         integer NOT NULL DEFAULT 0,
    status       smallint NOT NULL DEFAULT 1 CHECK (status IN (0, 1)),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX banners_position_idx ON banners (position, sort, id) WHERE status = 1;

CREATE TABLE config_values (
    code        text PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    value       text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
