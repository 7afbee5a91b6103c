-- Notices to members (通知): what each kind sends through (WeChat template message, Aliyun SMS template), and
-- the outbox: one row per notice, written in the transaction of the event that causes it, sent by one job.

-- Per kind: on or off, the OA's template id and which template key carries which value, the SMS template.
-- A kind without a row is on, with no template set (the defaults of services/notice_kinds.py).
CREATE TABLE notice_kinds (
    kind               text PRIMARY KEY,
    enabled            boolean NOT NULL DEFAULT true,
    template_id        text NOT NULL DEFAULT '' CHECK (length(template_id) <= 128),
    fields             text NOT NULL DEFAULT '' CHECK (length(fields) <= 2000),   -- "thing1=match" lines
    sms_template_code  text NOT NULL DEFAULT '' CHECK (length(sms_template_code) <= 64),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- A notice staff send to many members at once.
CREATE TABLE notice_campaigns (
    id          bigserial PRIMARY KEY,
    audience    text NOT NULL,                               -- match, team, active, expiring
    audience_id bigint,                                      -- the match or team; days for expiring
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 40),
    content     text NOT NULL CHECK (length(content) BETWEEN 1 AND 200),
    url         text NOT NULL DEFAULT '' CHECK (length(url) <= 500),
    recipients  integer NOT NULL DEFAULT 0,
    created_by  bigint REFERENCES admins (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notice_campaigns_by_admin_idx ON notice_campaigns (created_by, created_at);

CREATE TABLE notices (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL,
    user_id          bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The event this notice is about ("signup:12:confirmed"): a second row for one event cannot exist.
    event_key        text NOT NULL UNIQUE,
    data             jsonb NOT NULL,                         -- the values, as of the event
    campaign_id      bigint REFERENCES notice_campaigns (id) ON DELETE CASCADE,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'sent', 'sms', 'logged', 'failed', 'unreachable')),
    channel          text CHECK (channel IN ('wechat', 'sms', 'log')),   -- the one tried last
    claim            text,                                   -- the sender holding it while 'sending'
    claimed_at       timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    msgid            text,                                   -- WeChat's msgid
    biz_id           text,                                   -- Aliyun's BizId
    error            text NOT NULL DEFAULT '',
    text             text NOT NULL DEFAULT '',               -- what it says, as staff and logs read it
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX notices_due_idx ON notices (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX notices_sending_idx ON notices (claimed_at) WHERE state = 'sending';
CREATE INDEX notices_user_idx ON notices (user_id, id DESC);
CREATE INDEX notices_kind_idx ON notices (kind, created_at);
CREATE INDEX notices_campaign_idx ON notices (campaign_id, state) WHERE campaign_id IS NOT NULL;
