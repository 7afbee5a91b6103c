"""Pages outside the API: the built H5 front end under /h5/."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

H5_PREFIX = "/h5/"
# The API's documentation page (jiandong/api/docs.py), where a browser opening "/" is sent without H5 pages.
DOCS_PATH = "/Docs/jiandong.html"


def add_h5_routes(app: web.Application, h5_dir: str) -> None:
    """Serve `h5_dir` at /h5/: files as they are, a directory as its index.html, never a listing."""
    root = Path(h5_dir).resolve()

    async def serve_h5(request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"]
        # Dot files (.git, .env) are never part of a built front end.
        if any(part.startswith(".") for part in relative.split("/")):
            raise web.HTTPNotFound()
        try:
            # resolve() also follows symlinks, so neither "../" nor a link may lead outside the root.
            target = (root / relative).resolve()
            if not target.is_relative_to(root):
                raise web.HTTPNotFound()
            is_dir = target.is_dir()
            if is_dir:
                target = target / "index.html"
            found = target.is_file()
        except (OSError, ValueError):
            # A name no file can have (too long, say): nothing is there.
            raise web.HTTPNotFound() from None
        if is_dir and relative and not relative.endswith("/"):
            # The page's relative asset URLs need the trailing slash.
            raise web.HTTPMovedPermanently(f"{H5_PREFIX}{relative}/")
        if not found:
            raise web.HTTPNotFound()
        response = web.FileResponse(target)
        if target.name == "index.html":
            # The page names its assets; re-checking it each time lets a new build take effect.
            response.headers["Cache-Control"] = "no-cache"
        return response

    async def redirect_root(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(H5_PREFIX)

    app.router.add_get(H5_PREFIX.rstrip("/"), redirect_root)
    app.router.add_get(H5_PREFIX + "{path:.*}", serve_h5, name="h5")
