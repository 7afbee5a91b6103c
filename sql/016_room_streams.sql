-- Each live room has its own chat history stream in Redis (on a Redis Cluster, in the room's slot), so an
-- entry's id is unique only within its room.
ALTER TABLE chat_messages DROP CONSTRAINT chat_messages_stream_id_key;
ALTER TABLE chat_messages ADD CONSTRAINT chat_messages_room_stream_key UNIQUE (room_id, stream_id);
