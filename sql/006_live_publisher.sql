-- The publishing session that made a live go live, as its streaming server names it (nginx-rtmp
-- clientid, SRS client_id, Aliyun's pusher address and node); NULL while the live is not live or
-- when the change came without one (the Aliyun online-list check). Only that session's stop, or
-- a stop that names no session, ends the live: a second publisher refused by the server as
-- "already publishing" still sends its stop.
ALTER TABLE lives ADD COLUMN publisher text;
