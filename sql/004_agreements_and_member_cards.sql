-- The agreement page (protocol.html?type=1|2|3) asks config/value for exactly these three codes.
-- Every install starts with a placeholder the club replaces with its own text; a value already
-- there is kept.
INSERT INTO config_values (code, name, value) VALUES
    ('service_agreement', '服务协议', '<p>《服务协议》正文尚未发布，请以俱乐部公布的版本为准。</p>'),
    ('purchase_agreement', '视频购买观看协议', '<p>《视频购买观看协议》正文尚未发布，请以俱乐部公布的版本为准。</p>'),
    ('membership_agreement', '尊享会员服务协议', '<p>《尊享会员服务协议》正文尚未发布，请以俱乐部公布的版本为准。</p>')
ON CONFLICT (code) DO NOTHING;

-- The membership is the member (会员) record: since this version the payment that makes a user a
-- member also gives them a player card (services/players.py CREATE_PROFILE_SQL). Members from
-- before get theirs now, prefilled the same way.
INSERT INTO players (user_id, cn_name, mobile, sex)
SELECT u.id, u.username, COALESCE(u.mobile, ''), u.sex
FROM users u
WHERE u.member_status IN (1, 2)
   OR EXISTS (SELECT 1 FROM member_extensions e WHERE e.user_id = u.id)
ON CONFLICT (user_id) DO NOTHING;
