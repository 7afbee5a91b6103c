import asyncio

import pytest
from yarl import URL

SECRET = "DO-NOT-SERVE-THIS"
TRAVERSALS = (
    "/h5/../setup.py",
    "/h5/%2e%2e/setup.py",
    "/h5/..%2fsetup.py",
    "/h5/%2E%2E%2Fsetup.py",
    "/h5/assets/../../setup.py",
    "/h5/assets/%2e%2e/%2e%2e/setup.py",
    "/h5//etc/passwd",
    "/h5/%2fetc%2fpasswd",
)


@pytest.fixture
def h5_dir(tmp_path):
    root = tmp_path / "h5"
    (root / "assets").mkdir(parents=True)
    (root / "sub").mkdir()
    (root / "index.html").write_text("<html>h5 index</html>")
    (root / "x.js").write_text("console.log('x');")
    (root / "assets" / "app.css").write_text("body{}")
    (root / "sub" / "index.html").write_text("<html>sub index</html>")
    (root / ".env").write_text(SECRET)
    (tmp_path / "setup.py").write_text(SECRET)
    (root / "link.txt").symlink_to(tmp_path / "setup.py")
    return root


async def raw_get(client, target):
    """Send the request line exactly as written: no client-side normalisation of `..`."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


async def test_h5_index_and_files(make_client, h5_dir):
    client = await make_client(h5_dir=str(h5_dir))
    resp = await client.get("/h5/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert await resp.text() == "<html>h5 index</html>"
    resp = await client.get("/h5/x.js")
    assert resp.status == 200
    assert resp.content_type in ("text/javascript", "application/javascript")
    assert await resp.text() == "console.log('x');"
    assert "Cache-Control" not in resp.headers
    resp = await client.get("/h5/assets/app.css")
    assert resp.status == 200 and await resp.text() == "body{}"
    resp = await client.get("/h5/sub/")
    assert resp.status == 200 and await resp.text() == "<html>sub index</html>"
    # Needs no token: the front end is public, only /api/ is guarded.
    resp = await client.head("/h5/x.js")
    assert resp.status == 200


async def test_h5_redirects_to_the_trailing_slash(make_client, h5_dir):
    client = await make_client(h5_dir=str(h5_dir))
    resp = await client.get("/h5", allow_redirects=False)
    assert resp.status == 301 and resp.headers["Location"] == "/h5/"
    resp = await client.get("/h5/sub", allow_redirects=False)
    assert resp.status == 301 and resp.headers["Location"] == "/h5/sub/"


async def test_h5_no_listing_no_dotfiles_no_escape(make_client, h5_dir):
    client = await make_client(h5_dir=str(h5_dir))
    for path in ("/h5/assets/", "/h5/missing.js", "/h5/.env", "/h5/link.txt", "/h5/sub/../.env"):
        resp = await client.get(URL(path, encoded=True), allow_redirects=False)
        assert resp.status == 404, path
        assert SECRET not in await resp.text()
        assert "app.css" not in await resp.text()
    for target in TRAVERSALS:
        status, body = await raw_get(client, target)
        assert status in (400, 404), target
        assert SECRET not in body and "root:" not in body, target


async def test_h5_not_served_without_h5_dir(client):
    resp = await client.get("/h5/", allow_redirects=False)
    assert resp.status == 404


async def test_h5_name_no_file_can_have_is_404(make_client, h5_dir):
    client = await make_client(h5_dir=str(h5_dir))
    for name in ("a" * 300, "x/" + "b" * 5000):
        resp = await client.get(f"/h5/{name}")
        assert resp.status == 404, name
