-- A staff notice is sent once per preview: the preview's key is kept with the campaign, and sending the same
-- preview again (a second click, a resubmitted page) finds that campaign instead of writing another.
ALTER TABLE notice_campaigns ADD COLUMN send_key text UNIQUE CHECK (send_key ~ '^[0-9a-f]{32}$');
