-- The console's second part: memberships granted by hand, refunds through WeChat Pay, feedback
-- handling, chat moderation and the audit log.

-- Orders of kind 'manual' record a membership granted by staff (cash at the pitch, a goodwill
-- extension) like a paid order, so a user's history and the club's revenue stay true. They have no
-- WeChat transaction and may have no product.
ALTER TABLE orders
    ADD COLUMN kind text NOT NULL DEFAULT 'wechat' CHECK (kind IN ('wechat', 'manual')),
    ALTER COLUMN business_id DROP NOT NULL,
    ADD CONSTRAINT orders_product_check CHECK (kind = 'manual' OR business_id IS NOT NULL),
    DROP CONSTRAINT orders_check,
    ADD CONSTRAINT orders_paid_check
        CHECK (status <> 1 OR (pay_time IS NOT NULL AND (transaction_id IS NOT NULL OR kind = 'manual'))),
    -- The refunds asked for and not failed (in flight or done), in fen. The refund that would take it
    -- past the payment fails on this check, whatever the code above it does: two clicks at once queue
    -- on the order row and the second one finds the first one's amount reserved.
    ADD COLUMN refund_reserved bigint NOT NULL DEFAULT 0 CHECK (refund_reserved >= 0),
    ADD CONSTRAINT orders_refund_within_payment CHECK (refund_reserved <= pay_amount);

-- A refund of (part of) an order's payment. out_refund_no is the idempotency key at WeChat Pay: a
-- request sent again after a timeout carries the same one and is the same refund (reference §1.1).
--   status  pending     recorded here, not yet accepted by WeChat Pay (sent again by the order round)
--           processing  accepted by WeChat Pay, outcome to come (notification or refundquery)
--           success     money returned;  closed: WeChat closed it (failed);  change: abnormal, handled
--           by hand at the merchant platform;  failed: refused by WeChat Pay for good
CREATE TABLE refunds (
    id             bigserial PRIMARY KEY,
    out_refund_no  text NOT NULL UNIQUE CHECK (out_refund_no ~ '^[0-9A-Za-z_|*@-]{6,64}$'),
    order_id       bigint NOT NULL REFERENCES orders (id),
    amount         bigint NOT NULL CHECK (amount > 0),                       -- fen
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 80),
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'processing', 'success', 'closed', 'change', 'failed')),
    refund_id      text NOT NULL DEFAULT '',                                 -- WeChat Pay's refund id
    last_error     text NOT NULL DEFAULT '',
    recv_account   text NOT NULL DEFAULT '',
    success_time   timestamptz,
    attempts       integer NOT NULL DEFAULT 0,
    sent_at        timestamptz,
    admin_id       bigint REFERENCES admins (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_order_idx ON refunds (order_id);
CREATE INDEX refunds_open_idx ON refunds (created_at) WHERE status IN ('pending', 'processing');

-- Every refund notification (and refundquery answer) received, decrypted fields included.
CREATE TABLE refund_notifications (
    id             bigserial PRIMARY KEY,
    refund_id      bigint REFERENCES refunds (id),
    out_refund_no  text NOT NULL DEFAULT '',
    source         text NOT NULL DEFAULT 'notify',       -- notify, refundquery, dev
    outcome        text NOT NULL,                        -- success, closed, change, duplicate, rejected: <reason>
    fields         jsonb NOT NULL DEFAULT '{}'::jsonb,    -- the decrypted req_info (or the query's record)
    raw            text NOT NULL,                        -- the outer XML (a prefix, when rejected)
    raw_sha256     text NOT NULL DEFAULT '',
    raw_size       integer NOT NULL DEFAULT 0,
    received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refund_notifications_refund_idx ON refund_notifications (refund_id);

-- A refund that ended the membership its order paid for (in whole or in part) records what it cut.
ALTER TABLE member_extensions
    ADD COLUMN cut interval NOT NULL DEFAULT interval '0',
    ADD COLUMN cut_at timestamptz;

-- Who disabled or re-enabled a membership, and why (the audit log keeps the history).
ALTER TABLE users ADD COLUMN member_note text NOT NULL DEFAULT '';

-- Feedback: handled or not, with the staff's note.
ALTER TABLE feedback
    ADD COLUMN handled_at timestamptz,
    ADD COLUMN handled_by bigint REFERENCES admins (id),
    ADD COLUMN handled_note text NOT NULL DEFAULT '';
CREATE INDEX feedback_open_idx ON feedback (created_at) WHERE handled_at IS NULL;

-- Chat moderation: a deleted message stays (for the audit) but is no longer shown anywhere.
ALTER TABLE chat_messages ADD COLUMN deleted_at timestamptz, ADD COLUMN deleted_by bigint REFERENCES admins (id);
CREATE INDEX chat_messages_day_idx ON chat_messages (msg_time);

-- Mutes: per room (room_id) or everywhere (NULL), until a time; lifted early by staff.
CREATE TABLE chat_mutes (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id     bigint,
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    until       timestamptz NOT NULL,
    lifted_at   timestamptz,
    admin_id    bigint REFERENCES admins (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (until > created_at)
);
CREATE INDEX chat_mutes_user_idx ON chat_mutes (user_id, until DESC);

-- The audit log: every change made in the console. Append-only: rows are never updated or deleted,
-- which the trigger enforces for every connection, the application's included.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    admin_id    bigint REFERENCES admins (id),
    admin_name  text NOT NULL,
    client_ip   text NOT NULL DEFAULT '',
    action      text NOT NULL,                 -- e.g. refund.create, member.disable, competitions.update
    target      text NOT NULL DEFAULT '',      -- e.g. order:12, user:7
    summary     text NOT NULL DEFAULT '',      -- the reason or a few words for the list
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_target_idx ON audit_log (target);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
