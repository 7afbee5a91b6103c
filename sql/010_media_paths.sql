-- Media are stored as paths on this site (/media/...) and made absolute under the public URL when an
-- answer is served, so a change of host needs no rewrite, and a request's Host header never ends up in
-- the database. Earlier versions stored absolute URLs, built from JIANDONG_PUBLIC_URL or, without it,
-- from whatever Host the upload came with. Those that point at our own /media/ files become paths:
-- the names this server generates (<folder>/<yyyymm>/<hex>.<ext>, uploads and console files) and the
-- demo's (demo/...), on any host. Outside URLs (WeChat avatars, a CDN) are left as they are.
CREATE FUNCTION pg_temp.media_path(url text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(
        substring(url FROM '^https?://[^/?#]+(/media/(?:(?:avatars|teams|players|competitions|videos|lives|banners)'
                           '/[0-9]{6}/[0-9a-f]{32,64}\.(?:jpg|png|mp4|mov|webm)|demo/[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*'
                           '\.(?:jpg|png|mp4)))$'),
        url)
$$;

UPDATE users SET head_img = pg_temp.media_path(head_img) WHERE head_img <> pg_temp.media_path(head_img);
UPDATE teams SET logo = pg_temp.media_path(logo) WHERE logo <> pg_temp.media_path(logo);
UPDATE players SET photo = pg_temp.media_path(photo) WHERE photo <> pg_temp.media_path(photo);
UPDATE competitions SET main_img_url = pg_temp.media_path(main_img_url)
    WHERE main_img_url <> pg_temp.media_path(main_img_url);
UPDATE videos SET main_img_url = pg_temp.media_path(main_img_url)
    WHERE main_img_url <> pg_temp.media_path(main_img_url);
UPDATE lives SET main_img_url = pg_temp.media_path(main_img_url)
    WHERE main_img_url <> pg_temp.media_path(main_img_url);
UPDATE banners SET img_url = pg_temp.media_path(img_url) WHERE img_url <> pg_temp.media_path(img_url);
UPDATE files SET name = pg_temp.media_path(name) WHERE name <> pg_temp.media_path(name);
-- The sender's avatar kept with each chat message (served by guest/:id).
UPDATE chat_messages SET user_info = jsonb_set(user_info, '{head_img}', to_jsonb(pg_temp.media_path(user_info->>'head_img')))
    WHERE user_info->>'head_img' <> pg_temp.media_path(user_info->>'head_img');
