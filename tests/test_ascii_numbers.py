"""A number from a client is written in ASCII digits: Python's \\d and int() also take other scripts' digits
(١, １, 𝟏), underscores and spaces, which made /api/v1/competition/١ the match of id 1."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import make_mocked_request

from tests.helpers.api import get_json, login

# Arabic-Indic, full-width, Devanagari and mathematical bold ones: each int() reads as 1.
OTHER_ONES = ("\u0661", "\uff11", "\u0967", "\U0001d7cf")
PLACEHOLDER = re.compile(r"\{[^}]+\}")


async def resolves_to(app, method: str, path: str, resource) -> bool:
    match = await app.router.resolve(make_mocked_request(method, path, app=app))
    return match.http_exception is None and match.route.resource is resource


def resources_with_numbers(app) -> list[tuple[str, str, object]]:
    """(method, canonical, resource) of every route of the app and its sub-applications with a part in its URL."""
    found = []
    apps = [app]
    while apps:
        current = apps.pop()
        for route in current.router.routes():
            resource = route.resource
            if resource is not None and "{" in resource.canonical:
                found.append((route.method, resource.canonical, resource))
        apps.extend(r._app for r in current.router.resources() if hasattr(r, "_app"))
    return found


async def test_no_route_takes_a_number_in_digits_of_another_script(client):
    checked = []
    for method, canonical, resource in resources_with_numbers(client.app):
        ones = PLACEHOLDER.sub("1", canonical)
        # A part that takes letters too (a name, a file's path) is not a number.
        if not await resolves_to(client.app, method, ones, resource) or \
                await resolves_to(client.app, method, PLACEHOLDER.sub("x", canonical), resource):
            continue
        checked.append(canonical)
        for one in OTHER_ONES:
            path = PLACEHOLDER.sub(one, canonical)
            assert not await resolves_to(client.app, method, path, resource), f"{method} {path} reached {canonical}"
    # The API's and the console's: every id route the router has.
    assert "/api/v1/competition/{id}" in checked and "/admin/members/{id}" in checked and len(checked) > 40


@pytest.mark.parametrize("one", OTHER_ONES)
async def test_a_match_named_in_other_digits_is_no_page(client, one):
    token = await login(client)
    body = await get_json(client, f"/api/v1/competition/{one}", token, status=404)
    assert body["error_code"] == 10000


@pytest.mark.parametrize("page", [*OTHER_ONES, "1_0", "\u0661\u0662"])
async def test_a_page_number_in_other_digits_or_with_an_underscore_is_refused(client, page):
    token = await login(client)
    body = await get_json(client, "/api/v1/competition/video", token, status=400, method="POST",
                          data={"page": page, "size": "2"})
    assert body == {"msg": "参数错误: page 必须是整数", "error_code": 99999, "request_url": "/api/v1/competition/video"}
