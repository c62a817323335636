"""The one middleware (:func:`edge`) and the token check it runs."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from fsredis_server import logs
from fsredis_server.auth import given_token, is_token
from fsredis_server.console import is_console
from fsredis_server.errors import HTTP_CODES, INTERNAL, classify, details, json_error
from fsredis_server.state import METRICS, SETTINGS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CLIENT_GONE = 499
"""The status recorded (metrics, access log; nobody receives it) for a request whose client
hung up before its answer, as nginx does: neither a client error nor a server failure."""
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
_log = logs.logger()


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Everything around a handler, in one layer (each layer costs on every request):

    * a request id (the caller's ``X-Request-ID`` when sane, else a new one), bound to every log
      line of the request and echoed in the response;
    * authentication (:func:`check_token`);
    * errors as JSON ``{"error": {"code", "message", ...}}`` with the status they deserve, never a
      stack trace;
    * a client that hangs up: recorded as 499, no error, no traceback;
    * the request metrics, and one access log line, without feature values.
    """
    started = time.perf_counter()
    given = request.headers.get("X-Request-ID")
    request_id = given if given and _REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        check_token(request)
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_error(exc.status, HTTP_CODES.get(exc.status, "FSHTTP"), exc.reason)
        response.headers.update({k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")})
    except asyncio.CancelledError:  # the client left (handler_cancellation) or shutdown ran out of time
        _record(request, started, CLIENT_GONE, cancelled=True)
        raise
    except ConnectionResetError:
        if not _client_gone(request):
            response = _error_response(request, ConnectionResetError("connection reset"))
        else:  # nobody to answer; re-raising would make aiohttp log a 500 with a traceback
            _record(request, started, CLIENT_GONE, client_gone=True)
            return web.Response(status=CLIENT_GONE)
    except Exception as exc:  # every failure answers in the same JSON shape
        response = _error_response(request, exc)
    _record(request, started, response.status)
    response.headers["X-Request-ID"] = request_id
    return response


def _record(request: web.Request, started: float, status: int, **extra: bool) -> None:
    route = _route(request)
    seconds = time.perf_counter() - started
    metrics = request.app[METRICS]
    metrics.latency.labels(route, request.method).observe(seconds)
    metrics.requests.labels(route, request.method, str(status)).inc()
    _log.info("request", method=request.method, path=request.path, route=route, status=status,
              ms=round(seconds * 1000.0, 3), **extra)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _error_response(request: web.Request, exc: Exception) -> web.Response:
    known = classify(exc)
    if known is None:
        _log.exception("unhandled error", route=_route(request))
        return json_error(*INTERNAL, "internal error; the request id is in the log")
    status, code = known
    fields = details(exc)
    if "rule" in fields and code in ("FSVALIDATION", "FSNOTFOUND"):
        detail = getattr(exc, "detail", None)
        _log.info("refused", code=type(exc).__name__, **fields,
                  **({"detail": detail} if detail and request.app[SETTINGS].log_values else {}))
    return json_error(status, code, str(exc), **fields)


def check_token(request: web.Request) -> None:
    """With a token configured: writes (and reads, with ``protect_reads``) need
    ``Authorization: Bearer <token>``, compared in constant time (the console's static files and
    settings never do). 401 without it, 403 when wrong."""
    settings = request.app[SETTINGS]
    if settings.token and request.path not in _OPEN_PATHS and not is_console(request.path):
        reading = request.method in ("GET", "HEAD", "OPTIONS") or _is_read_post(request)
        if settings.protect_reads or not reading:
            given = given_token(request)
            if given is None:
                raise web.HTTPUnauthorized(reason="this route needs Authorization: Bearer <token>",
                                           headers={"WWW-Authenticate": 'Bearer realm="fsredis"'})
            if not is_token(given, settings.token):
                raise web.HTTPForbidden(reason="the token is not valid")


def _is_read_post(request: web.Request) -> bool:
    return request.method == "POST" and request.path == "/v1/features:batch"


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"
