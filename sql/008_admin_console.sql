-- The admin console: staff roles, disabling, password changes (which end the account's other
-- sessions), and which config values are rich text (HTML, sanitised on save) or plain text.
ALTER TABLE admins
    ADD COLUMN role text NOT NULL DEFAULT 'editor' CHECK (role IN ('owner', 'editor', 'moderator')),
    ADD COLUMN password_changed_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
-- Staff names are unique whatever their case: "Admin" and "admin" are one account.
CREATE UNIQUE INDEX admins_username_lower_idx ON admins (lower(username));

ALTER TABLE config_values ADD COLUMN rich boolean NOT NULL DEFAULT false;
UPDATE config_values SET rich = true
WHERE code IN ('service_agreement', 'purchase_agreement', 'membership_agreement')
   OR value ~ '<(p|div|h[1-6]|br|ul|ol|li|strong|em|a|span|table)[\s>/]';

