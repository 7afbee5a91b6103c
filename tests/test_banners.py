from tests.helpers.content import add_banner

BY_POSITION = "/api/v1/banner/by_position"


def add_file(sql, name="https://cdn.example.com/b1.jpg", original="b1.jpg", size=1234):
    return sql(
        "INSERT INTO files (cate, name, original, size, mime) VALUES ('image', %s, %s, %s, 'image/jpeg') RETURNING id",
        name, original, size,
    )[0]["id"]




async def test_banner_with_file(client, token, sql):
    file_id = add_file(sql)
    banner_id = add_banner(
        sql, 2, title="赛事", img_id=file_id, img_url="https://cdn.example.com/b1.jpg", jump_url="https://x.example/a"
    )
    resp = await client.get(f"/api/v1/banner/{banner_id}", headers={"token": token})
    assert resp.status == 200
    assert await resp.json() == {
        "id": banner_id,
        "title": "赛事",
        "description": "赛事 描述",
        "position": 2,
        "img_url": "https://cdn.example.com/b1.jpg",
        "jump_url": "https://x.example/a",
        "img": {"cate": "image", "name": "https://cdn.example.com/b1.jpg", "original": "b1.jpg", "size": 1234},
    }


async def test_banner_without_file_has_a_fallback_img(client, token, sql):
    banner_id = add_banner(sql, img_url="/static/banner.png")
    body = await (await client.get(f"/api/v1/banner/{banner_id}", headers={"token": token})).json()
    assert body["img_url"] == "/static/banner.png" and body["jump_url"] == ""
    assert body["img"] == {"cate": "", "name": "/static/banner.png", "original": "", "size": 0}


async def test_banner_img_url_falls_back_to_the_file(client, token, sql):
    banner_id = add_banner(sql, img_id=add_file(sql, name="https://cdn.example.com/f.png"), img_url="")
    body = await (await client.get(f"/api/v1/banner/{banner_id}", headers={"token": token})).json()
    assert body["img_url"] == "https://cdn.example.com/f.png" and body["img"]["name"] == body["img_url"]


async def test_banner_not_found(client, token, sql):
    disabled = add_banner(sql, status=0)
    for banner_id in (disabled, disabled + 1, "abc", "1.5", "-1", "9" * 30):
        resp = await client.get(f"/api/v1/banner/{banner_id}", headers={"token": token})
        assert resp.status == 404
        assert await resp.json() == {
            "msg": "请求banner不存在", "error_code": 40002, "request_url": f"/api/v1/banner/{banner_id}"
        }


async def test_banner_requires_token(client, sql):
    banner_id = add_banner(sql)
    for resp in (await client.get(f"/api/v1/banner/{banner_id}"), await client.post(BY_POSITION, data={"id": "1"})):
        assert resp.status == 401
        assert (await resp.json())["error_code"] == 10003


async def test_carousel_by_position_in_order(client, token, sql):
    file_id = add_file(sql)
    third = add_banner(sql, 1, title="c", sort=5)
    first = add_banner(sql, 1, title="a", sort=1, img_id=file_id)
    second = add_banner(sql, 1, title="b", sort=1)
    add_banner(sql, 1, title="off", sort=0, status=0)
    add_banner(sql, 3, title="news", sort=0)
    resp = await client.post(BY_POSITION, data={"id": "1"}, headers={"token": token})
    assert resp.status == 200
    body = await resp.json()
    assert [item["id"] for item in body] == [first, second, third]
    assert [item["title"] for item in body] == ["a", "b", "c"]
    img = {"cate": "image", "name": "https://cdn.example.com/b1.jpg", "original": "b1.jpg", "size": 1234}
    assert body[0]["img"] == img
    assert body[1]["img"] == {"cate": "", "name": "", "original": "", "size": 0}
    assert set(body[0]) == {"id", "title", "description", "position", "img_url", "jump_url", "img"}
    # The same answer by GET with a query string, and from a JSON body.
    resp = await client.get(BY_POSITION, params={"id": "1"}, headers={"token": token})
    assert resp.status == 200 and await resp.json() == body
    resp = await client.post(BY_POSITION, json={"id": 1}, headers={"token": token})
    assert resp.status == 200 and await resp.json() == body


async def test_carousel_none_for_position(client, token, sql):
    add_banner(sql, 1, status=0)
    add_banner(sql, 3)
    for position in ("1", "2", "-4", "99999999"):
        resp = await client.post(BY_POSITION, data={"id": position}, headers={"token": token})
        assert resp.status == 404
        assert await resp.json() == {"msg": "请求轮播图片不存在", "error_code": 40003, "request_url": BY_POSITION}


async def test_carousel_position_must_be_an_integer(client, token, sql):
    add_banner(sql, 1)
    for form in ({}, {"id": ""}, {"id": "one"}, {"id": "1.0"}):
        resp = await client.post(BY_POSITION, data=form, headers={"token": token})
        assert resp.status == 400
        body = await resp.json()
        assert body["error_code"] == 99999 and body["request_url"] == BY_POSITION
