"""The web console at ``/ui``: three static files shipped in the package, no build step.

The page reads the HTTP API every other client uses (nothing here touches Redis), so it shows
what the API answers and obeys the same token: reads are open unless ``protect_reads``; the
console offers writes (a correction, a rollback) only when the sidecar has a write token, which
the person gives in the page (kept in the tab's ``sessionStorage``, sent as ``Authorization``).
A sidecar without a token accepts writes from anyone who reaches it; its console stays read-only.

Every answer under ``/ui`` carries a Content-Security-Policy that allows only this origin's
scripts, styles and API: the page renders stored values as text, never as HTML.
"""

from __future__ import annotations

import functools
from pathlib import Path

from aiohttp import web

from fsredis import __version__
from fsredis_server.auth import given_token, is_token
from fsredis_server.state import SETTINGS

PREFIX = "/ui"
FILES = Path(__file__).with_name("console")
"""index.html, console.js, console.css (package data)."""
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def is_console(path: str) -> bool:
    """True for the console's own paths (static files and its settings: no feature data)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


async def index(request: web.Request) -> web.StreamResponse:
    if request.path == PREFIX:
        raise web.HTTPPermanentRedirect(PREFIX + "/")
    return _file("index.html")


async def asset(request: web.Request) -> web.StreamResponse:
    return _file(request.match_info["name"])


async def console_settings(request: web.Request) -> web.Response:
    """What the page must know before its first call: whether it may offer writes, whether reads
    need the token, and whether the token it sent (``Authorization``, if any) is the right one."""
    settings = request.app[SETTINGS]
    given = given_token(request)
    unlocked = settings.token is not None and given is not None and is_token(given, settings.token)
    return web.json_response({
        "version": __version__, "namespace": settings.store.namespace, "writes": settings.token is not None,
        "reads_need_token": settings.token is not None and settings.protect_reads, "unlocked": unlocked,
    }, headers=HEADERS)


@functools.cache
def _shipped() -> dict[str, tuple[bytes, str]]:
    """The shipped files by bare name: their bytes and type, read once."""
    return {p.name: (p.read_bytes(), _TYPES[p.suffix]) for p in FILES.iterdir() if p.suffix in _TYPES}


def _file(name: str) -> web.Response:
    """One of the shipped files by its bare name (no path can be asked for: the route takes one
    segment and only names in the directory listing answer)."""
    found = _shipped().get(name)
    if found is None:
        raise web.HTTPNotFound(reason=f"the console has no file {name!r}")
    body, kind = found
    return web.Response(body=body, content_type=kind, charset="utf-8", headers=HEADERS)


def add_console(app: web.Application) -> None:
    """Serve the console under ``/ui`` (``console=False`` in the settings turns it off)."""
    app.router.add_get(PREFIX, index)
    app.router.add_get(PREFIX + "/", index)
    app.router.add_get(PREFIX + "/config.json", console_settings)
    app.router.add_get(PREFIX + "/{name:[A-Za-z0-9_.-]+}", asset)
