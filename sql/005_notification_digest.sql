-- pay/notify is public: a rejected notification keeps the digest and size of its body and a short
-- prefix of it (in raw), so junk posted there cannot grow the table by its own size.
ALTER TABLE payment_notifications
    ADD COLUMN raw_sha256 text NOT NULL DEFAULT '',
    ADD COLUMN raw_size integer NOT NULL DEFAULT 0;
