"""The bearer token: what a request gave, and whether it is the configured one."""

from __future__ import annotations

import hmac

from aiohttp import web


def given_token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None when the header gives none."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


def is_token(given: str, token: str) -> bool:
    """``given == token``, compared in constant time."""
    return hmac.compare_digest(given.encode(), token.encode())
