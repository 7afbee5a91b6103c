"""Demo data: a small realistic club for a first start, and a large generated set for benchmarks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import shutil
import typing

import psycopg2
import psycopg2.extras

from ..integrations.sms import mask_phone
from ..integrations.wechat import dev_openid
from ..lib import encoding, formats
from ..services.orders import new_order_no, product_view
from ..settings import Settings
from ..store.db import connect_options
from ..store.media import media_path
from . import media as demo_media
from .media import Picture

logger = logging.getLogger(__name__)

# Marks a loaded data set in config_values, so loading again changes nothing.
DEMO_MARKER = "demo_data"
DEMO_LOGIN_CODE = "demo"
DEMO_USER_NAME = "演示球员"
DEMO_PHONE = "13700000023"

# (name, Latin name for pictures drawn without a CJK font, colour, description)
TEAMS = [
    ("建东猛龙", "JD Dragons", (200, 40, 50), "建东体育一队，成立于2012年，三届市联赛冠军。"),
    ("建东飞虎", "JD Tigers", (230, 120, 20), "以快攻见长的青年队。"),
    ("建东雄鹰", "JD Eagles", (30, 90, 170), "防守稳健的老牌劲旅。"),
    ("建东闪电", "JD Lightning", (110, 60, 170), "2020年组建的新军，平均年龄22岁。"),
]
OPPONENTS = ["城南勇士", "江北火箭", "滨海骑士", "西城公牛", "东湖湖人", "南山马刺", "高新雷霆", "天河太阳"]
OPPONENTS_LATIN = ["Chengnan Warriors", "Jiangbei Rockets", "Binhai Knights", "Xicheng Bulls", "Donghu Lakers",
                   "Nanshan Spurs", "Gaoxin Thunder", "Tianhe Suns"]
MATCH_KINDS = [("市联赛", "City League"), ("友谊赛", "Friendly"), ("杯赛", "Cup"), ("邀请赛", "Invitational")]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = ["伟", "强", "磊", "洋", "勇", "军", "杰", "涛", "明", "超", "浩", "宇", "鹏", "飞", "俊", "帆", "晨", "博",
         "子豪", "浩然", "宇轩", "一鸣", "子轩", "天佑", "志强", "建国", "文博", "思远", "嘉懿", "睿泽"]
POSITIONS = ["控球后卫", "得分后卫", "小前锋", "大前锋", "中锋"]
PROVINCES = ["广东广州", "广东深圳", "湖南长沙", "湖北武汉", "四川成都", "福建厦门", "江西南昌", "广西南宁"]
NATIONS = ["汉族", "汉族", "汉族", "壮族", "回族", "满族", "土家族"]
SCHOOLS = ["广州体育学院", "华南师范大学", "中山大学", "暨南大学", "广东工业大学", "广州大学"]
# Fans chatting in the live rooms: (login code, name, colour of their avatar).
FANS = [("demo-fan-1", "篮球小王子", (14, 116, 144)), ("demo-fan-2", "猛龙铁粉", (200, 40, 50)),
        ("demo-fan-3", "周末打球的老张", (77, 124, 15)), ("demo-fan-4", "Lily", (190, 24, 93)),
        ("demo-fan-5", "场边解说员", (71, 85, 105))]
CHAT_LINES = ["来了来了！", "今天猛龙必胜[1]", "这个三分太准了[2][2]", "防守再积极一点！", "裁判这个判罚有点争议",
              "好球！！[3]", "下半场加油[4]", "23号今天手感火热", "这节打得漂亮[1][1]", "比分咬得好紧",
              "替补也很拼", "最后两分钟了！", "赢了！[5][5][5]", "下周主场见"]

CONFIG_VALUES = [
    ("index_title", "首页标题", "建东体育"),
    ("seo_title", "SEO 标题", "建东体育 - 篮球俱乐部赛事直播与会员服务"),
    ("description", "站点描述", "建东体育俱乐部官方公众号：球员信息、赛事报名、直播与回放。"),
    ("copyright", "版权信息", "© 2026 建东体育俱乐部 版权所有"),
    ("ICP", "备案号", "粤ICP备12345678号-1"),
    ("agreement_user", "用户协议",
     "<h3>用户协议</h3><p>欢迎使用建东体育公众号服务。使用本服务即表示您同意遵守俱乐部的各项规定……</p>"),
    ("agreement_privacy", "隐私政策",
     "<h3>隐私政策</h3><p>我们仅收集提供服务所必需的信息（微信昵称、头像、手机号码），不会向第三方出售……</p>"),
    ("agreement_member", "会员协议",
     "<h3>会员协议</h3><p>年度会员自支付成功之日起生效，有效期一年，可参加俱乐部组织的全部赛事……</p>"),
]
# The three agreements the agreement page shows (protocol.html?type=1|2|3). sql/004 gives every
# install a placeholder; the demo replaces only that placeholder, never a text the club wrote.
AGREEMENTS = [
    ("service_agreement", "服务协议",
     "<h3>建东体育服务协议</h3>"
     "<p>一、本协议是您与建东体育俱乐部（以下简称“俱乐部”）之间就使用建东体育公众号服务所订立的协议。"
     "您通过微信授权登录即表示已阅读并同意本协议。</p>"
     "<p>二、俱乐部通过公众号向您提供球员信息查询、赛事报名、比赛直播与回放、会员购买等服务。</p>"
     "<p>三、您应妥善保管绑定的手机号码，不得冒用他人身份报名或发表违法、侮辱、广告等内容；"
     "违反者俱乐部有权禁言或停止服务。</p>"
     "<p>四、俱乐部仅为提供服务收集您的微信昵称、头像和手机号码，不向第三方出售您的个人信息。</p>"
     "<p>五、因不可抗力或系统维护导致服务中断的，俱乐部将尽快恢复并在公众号公告。</p>"),
    ("purchase_agreement", "视频购买观看协议",
     "<h3>视频购买观看协议</h3>"
     "<p>一、俱乐部发布的比赛直播与回放视频，版权归俱乐部及参赛球队所有，仅供您本人在公众号内观看。</p>"
     "<p>二、未经俱乐部书面许可，不得录制、转载、剪辑或用于任何商业用途。</p>"
     "<p>三、直播可能因场馆网络等原因出现延迟或中断，俱乐部将在赛后尽快上传完整回放。</p>"
     "<p>四、已购买的观看权益不支持转让；如对扣费有疑问，请在 7 日内通过意见反馈联系俱乐部。</p>"),
    ("membership_agreement", "尊享会员服务协议",
     "<h3>尊享会员服务协议</h3>"
     "<p>一、年度会员自支付成功之时起生效，有效期一年；有效期内续费的，有效期顺延一年。</p>"
     "<p>二、会员权益：俱乐部全年赛事报名资格、全部比赛回放观看、个人球员档案与比赛数据、会员专属活动。</p>"
     "<p>三、会员资格仅限本人使用，不得转借；违反俱乐部章程的，俱乐部有权暂停会员资格。</p>"
     "<p>四、会员费用一经支付，除法律规定或俱乐部原因无法提供服务外，不予退还。</p>"
     "<p>五、本协议未尽事宜，以俱乐部章程及公告为准。</p>"),
]
AGREEMENT_PLACEHOLDER = "%正文尚未发布%"

MEMBERSHIP = {
    "title": "建东体育年度会员",
    "cost": 29900,
    "price": 19900,
    "content": "<p>年度会员权益：全年赛事报名、比赛回放无限观看、球员档案与数据统计、会员专属活动。</p>",
    "remark": "支付成功后立即生效，有效期一年",
    "num": "VIP-2026",
    "valid_time": 1,
    "amount": 10000,
    "specs": "一年",
    "people": 1,
    "istui": 1,
}
BANNERS = {
    1: [("球员风采", "Player Spotlight"), ("年度MVP评选", "MVP of the Year")],
    2: [("市联赛火热进行中", "City League Is On"), ("杯赛报名开启", "Cup Sign-ups Open"),
        ("周末友谊赛", "Weekend Friendlies")],
    3: [("俱乐部新闻", "Club News"), ("青训营招生", "Youth Camp Enrolment")],
}
BANNER_COLOURS = [(200, 40, 50), (30, 90, 170), (21, 128, 61), (180, 83, 9), (110, 60, 170)]
GREY = (90, 96, 110)


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _insert(cur: typing.Any, table: str, row: dict[str, typing.Any]) -> int:
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    cur.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks}) RETURNING id", list(row.values()))
    return cur.fetchone()[0]


class Media:
    """The demo's pictures: the path each row stores (/media/..., made absolute in answers), and the
    pictures to draw for them."""

    def __init__(self) -> None:
        self.pictures: list[Picture] = []

    def url(self, picture: Picture) -> str:
        self.pictures.append(picture)
        return self.file_url(picture.path)

    def file_url(self, relative: str) -> str:
        return media_path(relative)


def demo_state(dsn: str) -> str:
    """ "demo" when the demo is loaded, "empty" when the club has no match, team or player yet, else "data"."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM config_values WHERE code = %s),"
                        " EXISTS (SELECT 1 FROM competitions) OR EXISTS (SELECT 1 FROM teams)"
                        " OR EXISTS (SELECT 1 FROM players)", (DEMO_MARKER,))
            demo, content = cur.fetchone()
    finally:
        conn.close()
    return "demo" if demo else "data" if content else "empty"


def load_demo(settings: Settings, *, cjk_font: str | None = None, ffmpeg: str | None = None) -> bool:
    """Load the small demo club in one transaction; False when it is already there.

    Its pictures are drawn into the media dir and stored as /media/ paths, like uploads: answers
    link them under the public URL. `cjk_font` and `ffmpeg` default to what this machine has.
    """
    rng = random.Random(20261128)
    conn = psycopg2.connect(settings.database_url, **connect_options(settings.timezone))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(7318004212)")
            cur.execute("SELECT value FROM config_values WHERE code = %s", (DEMO_MARKER,))
            marker = cur.fetchone()
            if marker:
                return False
            now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
            media = Media()
            clip = demo_media.make_sample_clip(settings.media_path, ffmpeg or shutil.which("ffmpeg"))
            _load(cur, rng, now, media, settings, clip)
            written = demo_media.write_pictures(
                settings.media_path, media.pictures, cjk_font or demo_media.find_cjk_font()
            )
            for picture in media.pictures:
                cur.execute("UPDATE files SET size = %s WHERE name = %s",
                            ((settings.media_path / picture.path).stat().st_size, media.file_url(picture.path)))
            logger.info("demo pictures: %d drawn under %s, served at /media/%s/", written,
                        settings.media_path / demo_media.FOLDER, demo_media.FOLDER)
            if clip is None:
                logger.info("no ffmpeg here: the demo's videos point at placeholder URLs")
            cur.execute(
                "INSERT INTO config_values (code, name, value) VALUES (%s, %s, %s)",
                (DEMO_MARKER, "演示数据", encoding.dumps_str({"loaded_at": now.isoformat()})),
            )
        return True
    finally:
        conn.close()


def _load(cur: typing.Any, rng: random.Random, now: dt.datetime, media: Media, settings: Settings,
          clip: str | None) -> None:
    for code, name, value in CONFIG_VALUES:
        cur.execute(
            "INSERT INTO config_values (code, name, value) VALUES (%s, %s, %s) ON CONFLICT (code) DO NOTHING",
            (code, name, value),
        )
    for code, name, value in AGREEMENTS:
        cur.execute(
            "INSERT INTO config_values (code, name, value) VALUES (%s, %s, %s)"
            " ON CONFLICT (code) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
            " WHERE config_values.value LIKE %s",
            (code, name, value, AGREEMENT_PLACEHOLDER),
        )
    category = _insert(cur, "business_categories", {"name": "会员服务"})
    product = _insert(cur, "businesses", {**MEMBERSHIP, "s_id": category, "audit_time": now})

    team_ids = []
    for index, (name, latin, colour, description) in enumerate(TEAMS):
        logo = media.url(Picture(f"demo/teams/{index + 1}.png", (256, 256), colour, name[-2:],
                                 "".join(word[0] for word in latin.split()), style="round"))
        team_ids.append(_insert(cur, "teams", {"name": name, "logo": logo, "description": description, "sort": index}))

    for team_index, team_id in enumerate(team_ids):
        # The demo player wears 23 in the first team: no one else there does (a number is worn once a team).
        for number in (99 if team_index == 0 and n == 23 else n for n in rng.sample(range(0, 56), 10)):
            birthday = dt.date(rng.randint(1990, 2006), rng.randint(1, 12), rng.randint(1, 28))
            photo = media.url(Picture(f"demo/players/{team_index + 1}-{number}.jpg", (300, 400),
                                      TEAMS[team_index][2], str(number), str(number), style="portrait"))
            player = {
                "cn_name": _name(rng),
                "birthday": birthday,
                "birth_addr": rng.choice(PROVINCES),
                "mobile": f"13{rng.randint(100000000, 999999999)}",
                "sex": 1,
                "stature": rng.randint(175, 212),
                "weight": rng.randint(68, 115),
                "native_place": rng.choice(PROVINCES),
                "nation": rng.choice(NATIONS),
                "photo": photo,
                "individual": "热爱篮球，场上积极拼抢。",
                "number": str(number),
                "position": rng.choice(POSITIONS),
                "school": rng.choice(SCHOOLS),
                "experience": "12岁开始练球，校队主力，2019年加入俱乐部。",
                "feature": rng.choice(["突破犀利", "三分稳定", "篮板积极", "防守凶悍", "组织视野开阔"]),
                "honor": rng.choice(["市联赛最佳阵容", "俱乐部年度MVP", "省运会亚军", ""]),
                "comment": rng.choice(["团队核心", "潜力新星", "稳定输出", "更衣室领袖"]),
            }
            player_id = _insert(cur, "players", player)
            cur.execute(
                "INSERT INTO team_members (team_id, player_id, joined_at) VALUES (%s, %s, %s)",
                (team_id, player_id, now - dt.timedelta(days=rng.randint(200, 1500))),
            )

    competition_ids = []
    for index in range(36):
        past = index < 24
        home_index = rng.randrange(len(TEAMS))
        away_index = rng.randrange(len(OPPONENTS))
        home, home_latin, home_colour = TEAMS[home_index][:3]
        away, away_latin = OPPONENTS[away_index], OPPONENTS_LATIN[away_index]
        play_time = now - dt.timedelta(days=7 * (24 - index) + rng.randint(0, 3)) if past \
            else now + dt.timedelta(days=3 * (index - 23) + rng.randint(0, 2), hours=2)
        score = f"{rng.randint(68, 112)}:{rng.randint(68, 112)}" if past else ""
        kind, kind_latin = MATCH_KINDS[index % 4]
        cover = Picture(f"demo/competitions/{index + 1}.jpg", (640, 360), home_colour, f"{home} vs {away}",
                        f"{home_latin} vs {away_latin}", f"{kind}  {score}".strip(), f"{kind_latin}  {score}".strip())
        competition = {
            "title": f"{kind}：{home} vs {away}",
            "summary": f"{home}主场迎战{away}，{'精彩对决' if past else '欢迎报名观赛'}。",
            "description": f"<p>{home} 对阵 {away}。</p><p>比赛地点：建东体育馆{index % 3 + 1}号场。</p>",
            "score": score,
            "main_img_url": media.url(cover),
            "play_time": play_time,
            "notes": "请提前30分钟到场检录" if not past else "",
            "is_hot": 1 if index % 5 == 0 else 0,
        }
        competition_id = _insert(cur, "competitions", competition)
        competition_ids.append((competition_id, past, competition["title"], play_time, cover))
        cur.execute("INSERT INTO competition_teams (competition_id, team_id) VALUES (%s, %s)",
                    (competition_id, team_ids[home_index]))

    for competition_id, past, title, play_time, cover in competition_ids:
        if not past:
            continue
        for kind, label, latin in ((1, "全场回放", "Full match"), (2, "精彩集锦", "Highlights")):
            placeholder_size = rng.randint(50, 900) * 1024 * 1024
            file_id = _insert(cur, "files", {
                "cate": "video",
                "name": media.file_url(clip) if clip else f"https://media.example.com/videos/{competition_id}-{kind}.mp4",
                "original": f"{title}-{label}.mp4",
                "size": (settings.media_path / clip).stat().st_size if clip else placeholder_size,
                "mime": "video/mp4",
            })
            picture = dataclasses.replace(cover, path=f"demo/videos/{competition_id}-{kind}.jpg", badge=label,
                                          latin_badge=latin)
            _insert(cur, "videos", {
                "competition_id": competition_id,
                "title": f"{title} {label}",
                "summary": f"{label}：{title}",
                "main_img_url": media.url(picture),
                "file_id": file_id,
                "type": kind,
                "browse_num": rng.randint(20, 3000),
                "publish_time": play_time + dt.timedelta(hours=3),
            })

    live_plan = [(1, 0), (0, 1), (0, 2), (2, -1), (2, -2)]  # (live_status, offset into upcoming/past)
    lives = []
    for index, (status, offset) in enumerate(live_plan):
        competition_id, _, title, play_time, cover = competition_ids[23 + offset]
        stream = f"match_{competition_id}"
        badge = {0: ("即将开始", "Soon"), 1: ("直播中", "LIVE"), 2: ("已结束", "Ended")}[status]
        picture = dataclasses.replace(cover, path=f"demo/lives/{index + 1}.jpg", subtitle="全场直播",
                                      latin_subtitle="Live", badge=badge[0], latin_badge=badge[1])
        live_id = _insert(cur, "lives", {
            "competition_id": competition_id,
            "title": f"直播：{title}",
            "summary": f"{title} 全场直播",
            "main_img_url": media.url(picture),
            "app_name": "live",
            "stream_name": stream,
            "play_rtmp": f"rtmp://live.example.com/live/{stream}",
            "play_flv": f"https://live.example.com/live/{stream}.flv",
            "play_m3u8": f"https://live.example.com/live/{stream}.m3u8",
            "plug_flow": f"rtmp://push.example.com/live/{stream}?auth_key=demo-{rng.getrandbits(64):x}",
            "live_status": status,
            "browse_num": rng.randint(0, 5000) if status else 0,
            "publish_time": play_time - dt.timedelta(days=1),
        })
        lives.append((live_id, status, play_time))

    for position, titles in BANNERS.items():
        for sort, (title, latin) in enumerate(titles):
            colour = BANNER_COLOURS[(position + sort) % len(BANNER_COLOURS)]
            img_url = media.url(Picture(f"demo/banners/{position}-{sort + 1}.jpg", (750, 300), colour, title, latin,
                                        "建东体育", "Jiandong Sports"))
            file_id = _insert(cur, "files", {"cate": "image", "name": img_url, "original": f"{title}.jpg",
                                             "size": 0, "mime": "image/jpeg"})
            _insert(cur, "banners", {"title": title, "description": f"{title}，点击查看详情", "position": position,
                                     "img_id": file_id, "img_url": img_url, "jump_url": "", "sort": sort})

    demo_user = _demo_member(cur, now, media, settings, team_ids, product)
    if demo_user is not None:
        _sign_up(cur, demo_user, competition_ids)
    _chat_history(cur, rng, media, settings, demo_user, lives)


def _demo_member(cur: typing.Any, now: dt.datetime, media: Media, settings: Settings, team_ids: list[int],
                 product: int) -> int | None:
    """The user of the login code "demo": an active member with a bound phone, a full card in two
    teams (now 建东猛龙, earlier 建东飞虎) and the paid order that made them a member; None when
    that login belongs to someone with data of their own."""
    avatar = media.url(Picture("demo/avatars/demo.png", (200, 200), (200, 40, 50), "林", "DM", style="round"))
    paid_at = now - dt.timedelta(days=150)
    # A year later, as the membership's make_interval(years => 1) counts it (29 February: 1 March).
    try:
        expires = paid_at.replace(year=paid_at.year + 1)
    except ValueError:
        expires = paid_at.replace(year=paid_at.year + 1, month=3, day=1)
    openid = dev_openid(DEMO_LOGIN_CODE)
    # Someone may have logged in with the demo code before the demo was loaded. Such a user is made
    # the demo member only while it has nothing of its own: no phone, no order, no membership.
    cur.execute(
        "SELECT 1 FROM users u WHERE openid = %s AND (mobile IS NOT NULL OR member_expire_time IS NOT NULL"
        " OR EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id))",
        (openid,),
    )
    if cur.fetchone():
        logger.warning("the demo login %r already belongs to a user with a phone, orders or a membership:"
                       " left as it is, without the demo member's card", DEMO_LOGIN_CODE)
        return None
    cur.execute("SELECT 1 FROM users WHERE mobile = %s AND openid <> %s", (DEMO_PHONE, openid))
    phone = None if cur.fetchone() else DEMO_PHONE
    if phone is None:
        logger.warning("the demo phone %s is bound to another user: the demo member has none", mask_phone(DEMO_PHONE))
    cur.execute(
        "INSERT INTO users (openid, username, mobile, sex, head_img, profile_edited, last_login_time, member_status,"
        " member_expire_time, register_time)"
        " VALUES (%s, %s, %s, 1, %s, true, now(), 1, %s, %s)"
        " ON CONFLICT (openid) DO UPDATE SET username = EXCLUDED.username, mobile = EXCLUDED.mobile, sex = 1,"
        " head_img = EXCLUDED.head_img, profile_edited = true, member_status = 1,"
        " member_expire_time = EXCLUDED.member_expire_time, register_time = EXCLUDED.register_time"
        " RETURNING id",
        (openid, DEMO_USER_NAME, phone, avatar, expires, now - dt.timedelta(days=400)),
    )
    user_id = cur.fetchone()[0]
    cur.execute("DELETE FROM players WHERE user_id = %s", (user_id,))
    photo = media.url(Picture("demo/players/demo.jpg", (300, 400), TEAMS[0][2], "23", "23", style="portrait"))
    player = _insert(cur, "players", {
        "user_id": user_id, "cn_name": "林建东", "birthday": dt.date(1998, 6, 18), "birth_addr": "广东广州",
        "mobile": phone or "", "sex": 1, "stature": 188, "weight": 82, "native_place": "广东梅州",
        "nation": "汉族", "photo": photo,
        "individual": "俱乐部主力得分后卫。", "number": "23", "position": "得分后卫", "school": "广州体育学院",
        "experience": "2016年加入建东飞虎，2021年转入建东猛龙。", "feature": "三分稳定，无球跑动好",
        "honor": "2024年市联赛最佳阵容", "comment": "球队进攻核心",
    })
    cur.execute(
        "INSERT INTO team_members (team_id, player_id, joined_at, left_at) VALUES (%s, %s, %s, %s), (%s, %s, %s, NULL)",
        (team_ids[1], player, now - dt.timedelta(days=3000), now - dt.timedelta(days=1800),
         team_ids[0], player, now - dt.timedelta(days=1800)),
    )

    with cur.connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as dict_cur:
        dict_cur.execute("SELECT * FROM businesses WHERE id = %s", (product,))
        snapshot = {**product_view(dict_cur.fetchone()), "count": 1,
                    "total_price": formats.fmt_money(MEMBERSHIP["price"])}
    del snapshot["amount"]
    order = {"user_id": user_id, "business_id": product, "name": MEMBERSHIP["title"], "price": MEMBERSHIP["price"],
             "total_price": MEMBERSHIP["price"], "phone": phone or "", "snap_items": encoding.dumps_str([snapshot])}
    # An order given up at the pay sheet a while before, then the one that was paid.
    given_up = paid_at - dt.timedelta(days=3)
    _insert(cur, "orders", {**order, "order_no": new_order_no(settings.tz, given_up), "status": 5,
                            "create_time": given_up, "closed_at": given_up})
    transaction_id = f"DEMO{paid_at:%Y%m%d}{user_id:08d}"
    order_id = _insert(cur, "orders", {
        **order, "order_no": new_order_no(settings.tz, paid_at - dt.timedelta(minutes=2)), "status": 1,
        "pay_amount": MEMBERSHIP["price"], "pay_time": paid_at, "pay_way": "微信支付", "transaction_id": transaction_id,
        "create_time": paid_at - dt.timedelta(minutes=2),
    })
    cur.execute(
        "INSERT INTO member_extensions (order_id, user_id, valid_from, valid_until) VALUES (%s, %s, %s, %s)",
        (order_id, user_id, paid_at, expires),
    )
    cur.execute(
        "INSERT INTO payment_notifications (order_id, out_trade_no, transaction_id, source, outcome, raw, received_at)"
        " SELECT id, order_no, transaction_id, 'dev', 'paid', '', pay_time FROM orders WHERE id = %s",
        (order_id,),
    )
    return user_id


def _sign_up(cur: typing.Any, user_id: int, competitions: list[tuple[typing.Any, ...]]) -> None:
    """The demo member signed up for the next match ahead."""
    upcoming = [c for c in competitions if not c[1]]
    cur.execute("INSERT INTO competition_applies (competition_id, user_id) VALUES (%s, %s)", (upcoming[0][0], user_id))


def _chat_history(cur: typing.Any, rng: random.Random, media: Media, settings: Settings, demo_user: int | None,
                  lives: list[tuple[int, int, dt.datetime]]) -> None:
    """Messages in the rooms of the lives that are on or over, the demo member's among them."""
    people: list[tuple[int, dict[str, str]]] = []
    for code, name, colour in FANS:
        avatar = media.url(Picture(f"demo/avatars/{code}.png", (200, 200), colour, name[0], name[0].upper(),
                                   style="round"))
        cur.execute(
            "INSERT INTO users (openid, username, head_img, last_login_time) VALUES (%s, %s, %s, now())"
            " ON CONFLICT (openid) DO UPDATE SET username = users.username RETURNING id",
            (dev_openid(code), name, avatar),
        )
        people.append((cur.fetchone()[0], {"username": name, "head_img": avatar}))
    # The demo member speaks first among them (its lines show as `myself` to the demo login).
    if demo_user is not None:
        people.insert(0, (demo_user, {"username": DEMO_USER_NAME, "head_img": media.file_url("demo/avatars/demo.png")}))
    emoji = settings.chat_emoji_path
    for room_id, status, play_time in lives:
        if status == 0:
            continue
        start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=40) if status == 1 else play_time
        for n, line in enumerate(CHAT_LINES):
            user_id, info = people[0] if n % 5 == 3 else rng.choice(people[1:])
            if demo_user is None:
                user_id, info = rng.choice(people)
            content = line
            for digit in "12345":
                content = content.replace(f"[{digit}]", f'<img class="emoji" src="{emoji}{digit}.gif">')
            cur.execute(
                "INSERT INTO chat_messages (room_id, user_id, uuid, content, user_info, msg_time)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (room_id, user_id, f"000000000000-{user_id}", content, encoding.dumps_str(info),
                 start + dt.timedelta(minutes=3 * n, seconds=rng.randint(0, 59))),
            )



LARGE_MARKER = "demo_data_large"


def load_large(dsn: str, matches: int = 10_000, videos: int = 100_000, batch: int = 5_000) -> bool:
    """Add `matches` competitions and `videos` videos (generated in SQL), with a progress bar.

    False when a large set is already there. Batches commit as they go and the marker is written
    last, so a run that was interrupted is recognised and redone from scratch.
    """
    from tqdm import tqdm

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM config_values WHERE code = %s", (LARGE_MARKER,))
        if cur.fetchone():
            conn.close()
            return False
        # A previous interrupted run left part of the set: start over.
        cur.execute("DELETE FROM videos WHERE summary LIKE '生成的视频%%'")
        cur.execute("DELETE FROM files WHERE name LIKE 'https://media.example.com/videos/gen-%%'")
        cur.execute("DELETE FROM competitions WHERE summary LIKE '生成的比赛%%'")
    words = ["联赛", "杯赛", "友谊赛", "邀请赛", "决赛", "半决赛", "揭幕战", "德比", "全明星", "训练赛"]
    try:
        with conn.cursor() as cur, tqdm(total=matches + videos, unit="row", desc="demo data") as bar:
            done = 0
            while done < matches:
                n = min(batch, matches - done)
                cur.execute(
                    """
                    INSERT INTO competitions (title, summary, main_img_url, play_time, score, is_hot)
                    SELECT (%(words)s::text[])[1 + g %% 10] || ' 第' || g || '场：' || (%(teams)s::text[])[1 + g %% 4]
                               || ' vs ' || (%(opps)s::text[])[1 + g %% 8],
                           '生成的比赛 #' || g, 'https://img.example.com/competitions/gen.jpg',
                           now() - make_interval(hours => g), (60 + g %% 50) || ':' || (60 + g %% 43),
                           (g %% 20 = 0)::int
                    FROM generate_series(%(start)s, %(stop)s) g
                    """,
                    {"words": words, "teams": [t[0] for t in TEAMS], "opps": OPPONENTS,
                     "start": done + 1, "stop": done + n},
                )
                done += n
                bar.update(n)
            cur.execute("SELECT min(id), max(id) FROM competitions")
            low, high = cur.fetchone()
            done = 0
            while done < videos:
                n = min(batch, videos - done)
                cur.execute(
                    """
                    WITH f AS (
                        INSERT INTO files (cate, name, original, size, mime)
                        SELECT 'video', 'https://media.example.com/videos/gen-' || g || '.mp4', 'gen-' || g || '.mp4',
                               (50 + g %% 800) * 1048576, 'video/mp4'
                        FROM generate_series(%(start)s, %(stop)s) g
                        RETURNING id
                    )
                    INSERT INTO videos
                        (competition_id, title, summary, main_img_url, file_id, type, browse_num, publish_time)
                    SELECT %(low)s + (f.id %% (%(high)s - %(low)s + 1)),
                           (%(words)s::text[])[1 + f.id %% 10]
                               || (CASE WHEN f.id %% 2 = 0 THEN ' 全场回放 ' ELSE ' 精彩集锦 ' END)
                               || (%(teams)s::text[])[1 + f.id %% 4] || ' vs ' || (%(opps)s::text[])[1 + f.id %% 8]
                               || ' #' || f.id,
                           '生成的视频，编号 ' || f.id, 'https://img.example.com/videos/gen.jpg', f.id,
                           1 + (f.id %% 2)::int, f.id %% 5000, now() - make_interval(mins => f.id::int)
                    FROM f
                    """,
                    {"words": words, "teams": [t[0] for t in TEAMS], "opps": OPPONENTS, "start": done + 1,
                     "stop": done + n, "low": low, "high": high},
                )
                done += n
                bar.update(n)
            cur.execute("ANALYZE competitions; ANALYZE videos; ANALYZE files")
            cur.execute(
                "INSERT INTO config_values (code, name, value) VALUES (%s, %s, %s)",
                (LARGE_MARKER, "大数据量演示数据", f"{matches} matches, {videos} videos"),
            )
    finally:
        conn.close()
    return True
