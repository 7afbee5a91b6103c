"""docs/deploy.md's nginx site, as written: `nginx -t` accepts it, and one API call and one chat message
(on /ws and on the old chat port) go through it to a started server.

Debian's nginx is needed (`.ci/run` installs it); without it the test fails with the command to run."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.helpers.realtime import frame_of, send
from tests.helpers.servers import ROOT, free_port, server_env

pytestmark = pytest.mark.usefixtures("chat_rooms")

GUIDE = ROOT / "docs" / "deploy.md"
MARKER = "<!-- the nginx site"
CERT = "/etc/letsencrypt/live/club.example.com/fullchain.pem"
KEY = "/etc/letsencrypt/live/club.example.com/privkey.pem"


def nginx_site() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    return text[text.index(MARKER):].split("```nginx\n", 1)[1].split("\n```", 1)[0]


def local_site(site: str, ports: dict[str, int], upstream: int, cert: Path, key: Path) -> str:
    """The guide's site on this machine: its ports on 127.0.0.1, a self-signed certificate, the test's server."""
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{ports['http']};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{ports['https']} ssl http2;",
        "listen 19833 ssl;": f"listen 127.0.0.1:{ports['chat']} ssl;",
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream};",
        CERT: str(cert), KEY: str(key),
    }
    for old, new in replacements.items():
        assert old in site, old
        site = site.replace(old, new)
    return site


def main_config(prefix: Path, site: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf provides around a site, in the test's directory."""
    return f"""
user root;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


@pytest.fixture
def nginx_binary() -> str:
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(path).exists():
        pytest.fail("the deployment test needs Debian's nginx: apt-get install -y nginx", pytrace=False)
    return path


async def test_the_guides_nginx_site_serves_the_api_and_the_chat(nginx_binary, servers, settings, tmp_path):
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    cert, key = prefix / "cert.pem", prefix / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=club.example.com", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    # The server as the guide's environment file has it: behind a proxy on loopback.
    _, port, _ = await servers.start(server_env(settings, tmp_path / "var", JIANDONG_TRUST_PROXY="1",
                                                JIANDONG_LOG_FORMAT="json"))
    ports = {"http": free_port(), "https": free_port(), "chat": free_port()}
    site = prefix / "jiandong.conf"
    site.write_text(local_site(nginx_site(), ports, port, cert, key))
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, site))
    checked = subprocess.run([nginx_binary, "-t", "-c", str(conf), "-p", str(prefix)], capture_output=True, text=True)
    print(checked.stderr)
    assert checked.returncode == 0 and "syntax is ok" in checked.stderr and "test is successful" in checked.stderr
    nginx = subprocess.Popen([nginx_binary, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
            https = f"https://127.0.0.1:{ports['https']}"
            for _ in range(100):
                try:
                    async with session.get(f"{https}/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            async with session.get(f"http://127.0.0.1:{ports['http']}/api/v1/user/info",
                                   allow_redirects=False) as resp:
                assert resp.status == 301 and resp.headers["Location"].startswith("https://")
            async with session.post(f"{https}/api/v1/token/user", data={"code": "behind-nginx"}) as resp:
                assert resp.status == 200
                token = (await resp.json())["token"]
            async with session.get(f"{https}/api/v1/user/info", headers={"token": token}) as resp:
                assert resp.status == 200 and (await resp.json())["username"] == "dev-behind-nginx"
            for url in (f"wss://127.0.0.1:{ports['https']}/ws", f"wss://127.0.0.1:{ports['chat']}/"):
                async with session.ws_connect(url) as ws:
                    await send(ws, type="LOGIN", room_id="5", token=token)
                    await frame_of(ws, "LOGIN", myself=True)
                    await send(ws, type="SEND_ALL", room_id="5", content=f"经由 {url}", token=token)
                    assert (await frame_of(ws, "SEND_ALL", myself=True))["content"] == f"经由 {url}"
    finally:
        nginx.terminate()
        await asyncio.to_thread(nginx.wait, 30)
