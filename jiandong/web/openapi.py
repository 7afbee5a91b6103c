"""The OpenAPI 3.1 document, built from the descriptions each handler carries (`@describe`)."""

from __future__ import annotations

import dataclasses
import re
import typing

from aiohttp import web

from .. import __version__
from ..errors import (
    ApiError,
    BodyTimeout,
    MethodNotAllowed,
    ParameterError,
    PayloadTooLarge,
    RouteNotFound,
    ServiceUnavailable,
    TokenInvalid,
    UnsupportedMediaType,
    all_errors,
)
from .params import DEFAULT_BODY_LIMIT

if typing.TYPE_CHECKING:
    from .fields import Spec

Schema = dict[str, typing.Any]


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    required: bool = False
    description: str = ""
    location: str = "body"  # body, query or path


# Marks a text parameter that takes any string: one from an outside service, whose control characters
# are removed (jiandong.lib.cleaning) rather than refused (but for a NUL in a query string, refused by all).
CLEANED = "x-cleaned"


def string(description: str = "", **extra: typing.Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def integer(description: str = "", **extra: typing.Any) -> Schema:
    return {"type": "integer", "description": description, **extra}


def boolean(description: str = "") -> Schema:
    return {"type": "boolean", "description": description}


def obj(description: str = "", /, **properties: Schema) -> Schema:
    # Positional-only, so a response field may itself be called "description".
    return {"type": "object", "description": description, "properties": properties, "required": list(properties)}


def array(items: Schema, description: str = "") -> Schema:
    return {"type": "array", "description": description, "items": items}


def page_of(item: Schema) -> Schema:
    return obj(
        "一页数据",
        total=integer("总数"),
        per_page=integer("每页条数"),
        current_page=integer("当前页码"),
        last_page=integer("最后一页页码"),
        data=array(item),
    )


OPERATION_RESULT = obj(
    "操作结果",
    msg=string("提示", examples=["success"]),
    error_code=integer("错误码，0 为成功"),
    request_url=string("接口访问路径"),
)
# The `file` object of services/files.file_object.
FILE_OBJECT = obj(
    "文件",
    cate=string("文件类型，如 image、video"),
    name=string("资源路径（URL）"),
    original=string("原文件名"),
    size=integer("文件大小（字节）"),
)

ERROR_BODY = obj(
    "错误",
    msg=string("提示"),
    error_code=integer("错误码（见错误码表）"),
    request_url=string("接口访问路径"),
)
# What every text parameter is held to (jiandong.web.params.Params.text): no NUL, and, when required, a
# character that is not white space (values are trimmed, and an empty one counts as missing).
NO_NUL = "^[^\\x00]*$"
NOT_BLANK = "^[^\\x00]*[^\\x00\\s][^\\x00]*$"


# What read_params takes (the pages post forms, jQuery's default).
BODY_TYPES = ("application/x-www-form-urlencoded", "application/json", "multipart/form-data")


@dataclasses.dataclass(frozen=True)
class Description:
    summary: str
    tag: str
    description: str
    params: tuple[Param, ...]
    response: Schema
    errors: tuple[type[ApiError], ...]
    public: bool
    content_type: str
    # bytes of body the route takes (the request limits middleware refuses more with 413)
    max_body: int = DEFAULT_BODY_LIMIT
    # the media types of the body it reads its parameters from
    body_types: tuple[str, ...] = BODY_TYPES


def describe(
    summary: str,
    *,
    tag: str,
    response: Schema = OPERATION_RESULT,
    params: type[Spec] | None = None,
    errors: typing.Sequence[type[ApiError]] = (),
    description: str = "",
    public: bool = False,
    content_type: str = "application/json",
    max_body: int = DEFAULT_BODY_LIMIT,
    body_types: typing.Sequence[str] = BODY_TYPES,
) -> typing.Callable[[typing.Any], typing.Any]:
    """Attach the endpoint's documentation to its handler (read by `build_spec` and the body limit)."""

    # The spec class the handler reads its parameters with documents them.
    declared = params.params() if params is not None else ()

    def decorate(handler: typing.Any) -> typing.Any:
        handler.openapi = Description(
            summary, tag, description, declared, response, tuple(errors), public, content_type, max_body,
            tuple(body_types),
        )
        return handler

    return decorate


_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _schema(p: Param) -> Schema:
    """The parameter's schema with what the parsing of text holds every value to."""
    if p.schema.get(CLEANED):
        schema = {k: v for k, v in p.schema.items() if k != CLEANED}
        # A NUL anywhere in a query string is refused before any handler (middlewares.request_limits_middleware).
        return {**schema, "pattern": NO_NUL} if p.location == "query" else schema
    if p.schema.get("type") != "string" or "pattern" in p.schema or "enum" in p.schema:
        return p.schema
    return {**p.schema, "pattern": NOT_BLANK if p.required else NO_NUL}


def _body_schema(schema: Schema, media_type: str) -> Schema:
    if media_type != "multipart/form-data":
        return schema
    # A part's name is in a header, where a control character makes the whole body malformed (400).
    return {**schema, "propertyNames": {"pattern": "^[^\\x00-\\x1f\\x7f]*$"}}


def _possible_errors(method: str, path: str, doc: Description) -> list[type[ApiError]]:
    """The errors any operation of this shape can answer, whatever its handler adds."""
    # Another method on the same path is answered 405; a body over the route's limit is refused by its
    # Content-Length on every route. Every documented operation needs PostgreSQL or Redis (the token
    # check alone needs Redis): 503 while one of them is away (jiandong.store.outages).
    errors: list[type[ApiError]] = [MethodNotAllowed, PayloadTooLarge, ServiceUnavailable]
    if _PATH_PARAM.search(path):
        # A path whose placeholder does not match (an id that is no number) names no route.
        errors.append(RouteNotFound)
    if any(p.location != "path" for p in doc.params):
        # Parameters are parsed in one place (jiandong.web.params.read_params), with these failures.
        errors += [ParameterError, UnsupportedMediaType, BodyTimeout]
    elif method != "get":
        # A body is read (jiandong.web.params.read_body), and may not arrive.
        errors.append(BodyTimeout)
    return errors


def _operation(method: str, path: str, doc: Description, public: bool) -> dict[str, typing.Any]:
    declared = {p.name: p for p in doc.params if p.location == "path"}
    parameters: list[dict[str, typing.Any]] = []
    for name in _PATH_PARAM.findall(path):
        # A placeholder without a declared Param is an id, the only kind the API has.
        p = declared.get(name) or Param(name, {"type": "integer"})
        parameters.append({"name": name, "in": "path", "required": True, "description": p.description,
                           "schema": p.schema})
    body_params = []
    for p in doc.params:
        if p.location == "path":
            continue
        if p.location == "query" or method == "get":
            parameters.append({"name": p.name, "in": "query", "required": p.required,
                               "description": p.description, "schema": _schema(p)})
        else:
            body_params.append(p)
    op: dict[str, typing.Any] = {
        "summary": doc.summary,
        "tags": [doc.tag],
        "operationId": f"{method}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
        "parameters": parameters,
    }
    if doc.description:
        op["description"] = doc.description
    if body_params:
        schema = {
            "type": "object",
            "properties": {p.name: {**_schema(p), "description": p.description} for p in body_params},
            "required": [p.name for p in body_params if p.required],
        }
        op["requestBody"] = {
            # Without a body a required parameter is missing, and a JSON-only body must be a document: only a
            # form with nothing required may be left out.
            "required": bool(schema["required"]) or BODY_TYPES[0] not in doc.body_types,
            "content": {media_type: {"schema": _body_schema(schema, media_type)} for media_type in doc.body_types},
        }
    responses: dict[str, typing.Any] = {
        "200": {"description": "成功", "content": {doc.content_type: {"schema": doc.response}}}
    }
    shared = [e for e in _possible_errors(method, path, doc) if e not in doc.errors]
    errors = [*doc.errors, *shared]
    if not public:
        errors.append(TokenInvalid)
    by_status: dict[int, list[type[ApiError]]] = {}
    for err in errors:
        by_status.setdefault(err.status, [])
        if err not in by_status[err.status]:
            by_status[err.status].append(err)
    for status, errs in sorted(by_status.items()):
        responses[str(status)] = {
            "description": "；".join(f"{e.error_code} {e.msg}" for e in errs),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    op["responses"] = responses
    op["x-error-codes"] = sorted({e.error_code for e in errors})
    # `shared`: answered by the request handling every operation goes through, not by its handler.
    op["x-errors"] = [
        {"error_code": e.error_code, "status": e.status, "msg": e.msg, **({"shared": True} if e in shared else {})}
        for e in sorted({*errors}, key=lambda e: (e.error_code, e.status))
    ]
    if public:
        op["security"] = []
    return op


def build_spec(app: web.Application) -> dict[str, typing.Any]:
    paths: dict[str, dict[str, typing.Any]] = {}
    tags: dict[str, None] = {}
    for route in app.router.routes():
        handler = route.handler
        doc: Description | None = getattr(handler, "openapi", None)
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        method = route.method.lower()
        # HEAD is aiohttp's automatic twin of each GET; "*" routes have no single method to document.
        if doc is None or path is None or method == "head" or method not in HTTP_METHODS:
            continue
        path = _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", path)
        # What the auth middleware enforces, not what the description claims: it only guards /api/.
        public = getattr(handler, "public", False) or not path.startswith("/api/")
        paths.setdefault(path, {})[method] = _operation(method, path, doc, public)
        tags.setdefault(doc.tag)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jiandong 公众号H5应用接口",
            "version": __version__,
            "description": "除获取令牌与支付回调外，所有接口必须在请求头部携带 token。",
        },
        "tags": [{"name": tag} for tag in tags],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "token"}},
            "schemas": {"Error": ERROR_BODY, "OperationResult": OPERATION_RESULT},
        },
        "security": [{"token": []}],
        "x-error-codes": [
            {"error_code": e.error_code, "status": e.status, "msg": e.msg, "name": e.__name__,
             "variants": list(e.variants)} for e in all_errors()
        ],
    }
