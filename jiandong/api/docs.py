"""The API's own documentation: the OpenAPI document, the HTML docs page and the settings table."""

from __future__ import annotations

import dataclasses
import sys
import typing

import aiohttp_jinja2
from aiohttp import web

from ..keys import docs_cache_key, settings_key
from ..lib import encoding
from ..realtime.hub import BATCH_MIN_MEMBERS
from ..settings import ENV_PREFIX, Settings
from ..web.auth import public
from ..web.h5 import DOCS_PATH
from ..web.openapi import HTTP_METHODS, build_spec
from ..web.params import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

routes = web.RouteTableDef()

DOCS_TEMPLATE = "docs.html"
CHAT_PATH = "/ws"


def cached_spec(app: web.Application) -> dict[str, typing.Any]:
    cache = app[docs_cache_key]
    if "spec" not in cache:
        cache["spec"] = build_spec(app)
    return cache["spec"]


@routes.get("/api/v1/")
@public
async def api_root(request: web.Request) -> web.StreamResponse:
    """The API's base address, opened in a browser: its documentation."""
    raise web.HTTPFound(DOCS_PATH)


@routes.get("/api/v1/openapi.json")
@public
async def get_openapi(request: web.Request) -> web.Response:
    cache = request.app[docs_cache_key]
    if "json" not in cache:
        cache["json"] = encoding.dumps(cached_spec(request.app))
    return web.Response(body=cache["json"], content_type="application/json")


@routes.get(DOCS_PATH)
async def docs_page(request: web.Request) -> web.Response:
    cache = request.app[docs_cache_key]
    if "html" not in cache:
        context = docs_context(request.app, cached_spec(request.app))
        cache["html"] = aiohttp_jinja2.render_string(DOCS_TEMPLATE, request, context)
    return web.Response(text=cache["html"], content_type="text/html")


@dataclasses.dataclass
class Field:
    name: str
    type: str
    description: str
    depth: int
    required: bool = False
    location: str = ""


def type_label(schema: dict[str, typing.Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind == "array":
        return f"array<{type_label(schema.get('items', {}))}>"
    if kind:
        return kind
    for combinator in ("oneOf", "anyOf"):
        if combinator in schema:
            return " | ".join(type_label(s) for s in schema[combinator])
    return "any"


def schema_fields(schema: dict[str, typing.Any], prefix: str = "", depth: int = 0) -> list[Field]:
    """Flatten a JSON schema into rows: `team.name`, `data[].id`, nested objects and arrays included."""
    rows: list[Field] = []
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items", {})
        if items.get("type") in ("object", "array"):
            return schema_fields(items, f"{prefix}[]", depth)
        return rows
    required = set(schema.get("required", ()))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        rows.append(Field(path, type_label(sub), _describe(sub), depth, name in required))
        if sub.get("type") == "object":
            rows.extend(schema_fields(sub, path, depth + 1))
        elif sub.get("type") == "array" and sub.get("items", {}).get("type") in ("object", "array"):
            rows.extend(schema_fields(sub["items"], f"{path}[]", depth + 1))
    return rows


def _describe(schema: dict[str, typing.Any]) -> str:
    text = schema.get("description", "")
    if "enum" in schema:
        text = f"{text}（取值：{' / '.join(str(v) for v in schema['enum'])}）".strip()
    return text


def _resolve(spec: dict[str, typing.Any], schema: dict[str, typing.Any]) -> dict[str, typing.Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def _params(op: dict[str, typing.Any]) -> list[Field]:
    rows = []
    for p in op.get("parameters", ()):
        schema = {**p.get("schema", {}), "description": p.get("description", "")}
        where = {"query": "查询串", "path": "路径"}.get(p["in"], p["in"])
        rows.append(Field(p["name"], type_label(schema), _describe(schema), 0, p.get("required", False), where))
    content = op.get("requestBody", {}).get("content", {})
    if content:
        body = next(iter(content.values()))["schema"]
        for row in schema_fields(body):
            row.location = "请求体"
            rows.append(row)
    return rows


def docs_context(app: web.Application, spec: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """What the docs page shows, computed once from the OpenAPI document."""
    groups: dict[str, list[dict[str, typing.Any]]] = {tag["name"]: [] for tag in spec.get("tags", ())}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            ok = op["responses"]["200"]
            content_type, media = next(iter(ok["content"].items()))
            response = _resolve(spec, media["schema"])
            groups.setdefault(op["tags"][0], []).append(
                {
                    "anchor": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op["summary"],
                    "description": op.get("description", ""),
                    "public": op.get("security") == [],
                    "params": _params(op),
                    "content_type": content_type,
                    "response_type": type_label(response),
                    "response_description": response.get("description", ""),
                    "fields": schema_fields(response),
                    "errors": op.get("x-errors", []),
                }
            )
    settings: Settings = app[settings_key]
    return {
        "spec": spec,
        "groups": {tag: ops for tag, ops in groups.items() if ops},
        "errors": spec["x-error-codes"],
        "public_url": settings.public_url,
        "timezone": settings.timezone,
        "default_page_size": DEFAULT_PAGE_SIZE,
        "max_page_size": MAX_PAGE_SIZE,
        # The chat section describes the websocket only when the app really serves one.
        "chat_path": CHAT_PATH if _has_route(app, CHAT_PATH) else "",
        "chat_batch_ms": round(settings.chat_batch_window * 1000),
        "chat_batch_min": BATCH_MIN_MEMBERS,
        "chat_emoji_path": settings.chat_emoji_path,
        "port": settings.port,
        "chat_port": settings.chat_port,
    }


def _has_route(app: web.Application, path: str) -> bool:
    return any(
        route.resource is not None and route.resource.canonical == path for route in app.router.routes()
    )


def _default(value: typing.Any) -> str:
    if value in ("", ()):
        return "(empty)"
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if isinstance(value, tuple):
        return f"`{','.join(value)}`"
    return f"`{value}`"


def _markdown_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def settings_markdown() -> str:
    """The configuration table of the README, generated from the Settings dataclass."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Settings):
        help_text = _markdown_text(f.metadata.get("help", ""))
        if f.metadata.get("secret"):
            help_text += " (secret: logged as `***`)"
        default = f.default if f.default is not dataclasses.MISSING else ""
        lines.append(f"| `{ENV_PREFIX}{f.name.upper()}` | {_default(default)} | {help_text} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--settings-markdown"]:
        sys.exit("usage: python -m jiandong.api.docs --settings-markdown")
    sys.stdout.write(settings_markdown())
