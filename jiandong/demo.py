"""Demo data: a small realistic club for a first start, and a large generated set for benchmarks."""

from __future__ import annotations

import datetime as dt
import logging
import random
import typing

import psycopg2
import psycopg2.extras

from .db import connect_options
from .integrations.wechat import dev_openid

logger = logging.getLogger(__name__)

# Marks a loaded data set in config_values, so loading again changes nothing.
DEMO_MARKER = "demo_data"
DEMO_LOGIN_CODE = "demo"

TEAMS = [
    ("建东猛龙", "https://img.example.com/teams/menglong.png", "建东体育一队，成立于2012年，三届市联赛冠军。"),
    ("建东飞虎", "https://img.example.com/teams/feihu.png", "以快攻见长的青年队。"),
    ("建东雄鹰", "https://img.example.com/teams/xiongying.png", "防守稳健的老牌劲旅。"),
    ("建东闪电", "https://img.example.com/teams/shandian.png", "2020年组建的新军，平均年龄22岁。"),
]
OPPONENTS = ["城南勇士", "江北火箭", "滨海骑士", "西城公牛", "东湖湖人", "南山马刺", "高新雷霆", "天河太阳"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = ["伟", "强", "磊", "洋", "勇", "军", "杰", "涛", "明", "超", "浩", "宇", "鹏", "飞", "俊", "帆", "晨", "博",
         "子豪", "浩然", "宇轩", "一鸣", "子轩", "天佑", "志强", "建国", "文博", "思远", "嘉懿", "睿泽"]
POSITIONS = ["控球后卫", "得分后卫", "小前锋", "大前锋", "中锋"]
PROVINCES = ["广东广州", "广东深圳", "湖南长沙", "湖北武汉", "四川成都", "福建厦门", "江西南昌", "广西南宁"]
NATIONS = ["汉族", "汉族", "汉族", "壮族", "回族", "满族", "土家族"]
SCHOOLS = ["广州体育学院", "华南师范大学", "中山大学", "暨南大学", "广东工业大学", "广州大学"]

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


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _insert(cur: typing.Any, table: str, row: dict[str, typing.Any]) -> int:
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    cur.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks}) RETURNING id", list(row.values()))
    return cur.fetchone()[0]


def load_demo(dsn: str, timezone: str = "Asia/Shanghai") -> bool:
    """Load the small demo club in one transaction; False when it is already there."""
    rng = random.Random(20261128)
    conn = psycopg2.connect(dsn, **connect_options(timezone))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(7318004212)")
            cur.execute("SELECT 1 FROM config_values WHERE code = %s", (DEMO_MARKER,))
            if cur.fetchone():
                return False
            now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
            _load(cur, rng, now)
            cur.execute(
                "INSERT INTO config_values (code, name, value) VALUES (%s, %s, %s)",
                (DEMO_MARKER, "演示数据", now.isoformat()),
            )
        return True
    finally:
        conn.close()


def _load(cur: typing.Any, rng: random.Random, now: dt.datetime) -> None:
    for code, name, value in CONFIG_VALUES:
        cur.execute(
            "INSERT INTO config_values (code, name, value) VALUES (%s, %s, %s) ON CONFLICT (code) DO NOTHING",
            (code, name, value),
        )
    category = _insert(cur, "business_categories", {"name": "会员服务"})
    _insert(cur, "businesses", {**MEMBERSHIP, "s_id": category, "audit_time": now})

    # The player card of the login code "demo", so a newcomer sees a populated member centre.
    cur.execute(
        "INSERT INTO users (openid, username, sex, head_img, profile_edited, last_login_time)"
        " VALUES (%s, %s, 1, %s, true, now())"
        " ON CONFLICT (openid) DO UPDATE SET username = users.username RETURNING id",
        (dev_openid(DEMO_LOGIN_CODE), "演示球员", "https://img.example.com/avatars/demo.png"),
    )
    demo_user = cur.fetchone()[0]

    team_ids = []
    for index, (name, logo, description) in enumerate(TEAMS):
        team_ids.append(_insert(cur, "teams", {"name": name, "logo": logo, "description": description, "sort": index}))

    players_by_team: dict[int, list[int]] = {t: [] for t in team_ids}
    for team_index, team_id in enumerate(team_ids):
        for number in rng.sample(range(0, 56), 10):
            birthday = dt.date(rng.randint(1990, 2006), rng.randint(1, 12), rng.randint(1, 28))
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
                "photo": f"https://img.example.com/players/{team_index}-{number}.jpg",
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
            players_by_team[team_id].append(player_id)
            cur.execute(
                "INSERT INTO team_members (team_id, player_id, joined_at) VALUES (%s, %s, %s)",
                (team_id, player_id, now - dt.timedelta(days=rng.randint(200, 1500))),
            )
    # The demo user's card: now in 建东猛龙, earlier in 建东飞虎.
    demo_player = _insert(cur, "players", {
        "user_id": demo_user, "cn_name": "林建东", "birthday": dt.date(1998, 6, 18), "birth_addr": "广东广州",
        "mobile": "13800138000", "sex": 1, "stature": 188, "weight": 82, "native_place": "广东梅州",
        "nation": "汉族", "photo": "https://img.example.com/players/demo.jpg",
        "individual": "俱乐部主力得分后卫。", "number": "23", "position": "得分后卫", "school": "广州体育学院",
        "experience": "2016年加入建东飞虎，2021年转入建东猛龙。", "feature": "三分稳定，无球跑动好",
        "honor": "2024年市联赛最佳阵容", "comment": "球队进攻核心",
    })
    cur.execute(
        "INSERT INTO team_members (team_id, player_id, joined_at, left_at) VALUES (%s, %s, %s, %s), (%s, %s, %s, NULL)",
        (team_ids[1], demo_player, now - dt.timedelta(days=3000), now - dt.timedelta(days=1800),
         team_ids[0], demo_player, now - dt.timedelta(days=1800)),
    )

    competition_ids = []
    for index in range(36):
        past = index < 24
        home = rng.choice(team_ids)
        away = rng.choice(OPPONENTS)
        play_time = now - dt.timedelta(days=7 * (24 - index) + rng.randint(0, 3)) if past \
            else now + dt.timedelta(days=3 * (index - 23) + rng.randint(0, 2), hours=2)
        home_name = TEAMS[team_ids.index(home)][0]
        score = f"{rng.randint(68, 112)}:{rng.randint(68, 112)}" if past else ""
        competition = {
            "title": f"{['市联赛', '友谊赛', '杯赛', '邀请赛'][index % 4]}：{home_name} vs {away}",
            "summary": f"{home_name}主场迎战{away}，{'精彩对决' if past else '欢迎报名观赛'}。",
            "description": f"<p>{home_name} 对阵 {away}。</p><p>比赛地点：建东体育馆{index % 3 + 1}号场。</p>",
            "score": score,
            "main_img_url": f"https://img.example.com/competitions/{index + 1}.jpg",
            "play_time": play_time,
            "notes": "请提前30分钟到场检录" if not past else "",
            "is_hot": 1 if index % 5 == 0 else 0,
        }
        competition_id = _insert(cur, "competitions", competition)
        competition_ids.append((competition_id, past, competition["title"], play_time))
        cur.execute("INSERT INTO competition_teams (competition_id, team_id) VALUES (%s, %s)", (competition_id, home))

    for competition_id, past, title, play_time in competition_ids:
        if not past:
            continue
        for kind, label in ((1, "全场回放"), (2, "精彩集锦")):
            file_id = _insert(cur, "files", {
                "cate": "video",
                "name": f"https://media.example.com/videos/{competition_id}-{kind}.mp4",
                "original": f"{title}-{label}.mp4",
                "size": rng.randint(50, 900) * 1024 * 1024,
                "mime": "video/mp4",
            })
            _insert(cur, "videos", {
                "competition_id": competition_id,
                "title": f"{title} {label}",
                "summary": f"{label}：{title}",
                "main_img_url": f"https://img.example.com/videos/{competition_id}-{kind}.jpg",
                "file_id": file_id,
                "type": kind,
                "browse_num": rng.randint(20, 3000),
                "publish_time": play_time + dt.timedelta(hours=3),
            })

    live_plan = [(1, 0), (0, 1), (0, 2), (2, -1), (2, -2)]  # (live_status, offset into upcoming/past)
    for index, (status, offset) in enumerate(live_plan):
        competition_id, _, title, play_time = competition_ids[23 + offset]
        stream = f"match_{competition_id}"
        _insert(cur, "lives", {
            "competition_id": competition_id,
            "title": f"直播：{title}",
            "summary": f"{title} 全场直播",
            "main_img_url": f"https://img.example.com/lives/{index + 1}.jpg",
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

    banner_titles = {1: ["球员风采", "年度MVP评选"], 2: ["市联赛火热进行中", "杯赛报名开启", "周末友谊赛"],
                     3: ["俱乐部新闻", "青训营招生"]}
    for position, titles in banner_titles.items():
        for sort, title in enumerate(titles):
            img_url = f"https://img.example.com/banners/{position}-{sort + 1}.jpg"
            file_id = _insert(cur, "files", {"cate": "image", "name": img_url, "original": f"{title}.jpg",
                                             "size": rng.randint(80, 400) * 1024, "mime": "image/jpeg"})
            _insert(cur, "banners", {"title": title, "description": f"{title}，点击查看详情", "position": position,
                                     "img_id": file_id, "img_url": img_url, "jump_url": "", "sort": sort})


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
