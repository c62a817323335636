"""Deadlines: every call of a store ends within its time budget, retries included.

A read gets ``read_timeout`` (or its own ``timeout=``), a write ``write_timeout``. The budget is
the absolute :func:`time.monotonic` time in a context variable, set by the store's executor for the
length of one operation:

* asyncio: the whole operation runs under ``asyncio.timeout`` (redis-py drops a connection that
  was cancelled mid-command, so nothing half-read is reused);
* sync: the connections of the pool wait for a reply (and send) at most until the deadline, and
  :class:`DeadlineRetry` starts no new attempt once it has passed.

Either way the caller gets :class:`~fsredis.errors.StoreUnavailable` at the deadline, never after
``socket_timeout`` x ``retries``. Writes may be retried within their budget: each carries a write id
that the Lua library applies at most once.
"""

from __future__ import annotations

import contextvars
import functools
from time import monotonic
from typing import Any

from redis.exceptions import RedisError
from redis.retry import Retry

DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("fsredis_deadline", default=None)
"""The monotonic time by which the running operation must end (None: no deadline)."""


class DeadlinePassed(RedisError):
    """The operation's deadline passed before Redis answered (translated to StoreUnavailable)."""


class deadline:
    """``with deadline(seconds):`` runs the body under a deadline ``seconds`` from now (None: none).

    A class rather than a generator: it wraps every call of the store, and costs a fraction."""

    __slots__ = ("_at", "_token")

    def __init__(self, seconds: float | None) -> None:
        self._at = None if seconds is None else monotonic() + seconds

    def __enter__(self) -> None:
        self._token = DEADLINE.set(self._at)

    def __exit__(self, *exc: object) -> None:
        DEADLINE.reset(self._token)


def remaining(cap: float | None) -> float | None:
    """Seconds left before the deadline, at most ``cap`` (None: no limit); raises DeadlinePassed
    when none are left."""
    at = DEADLINE.get()
    if at is None:
        return cap
    left = at - monotonic()
    if left <= 0:
        raise DeadlinePassed("no answer from Redis within the call's deadline")
    return left if cap is None else min(cap, left)


class DeadlineRetry(Retry):
    """redis-py's Retry that starts no attempt after the deadline (the first always runs)."""

    def call_with_retry(self, do: Any, fail: Any, *args: Any, **kwargs: Any) -> Any:
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            if attempts:
                remaining(None)
            attempts += 1
            return do()

        return super().call_with_retry(attempt, fail, *args, **kwargs)


class _DeadlineSocket:
    """Mixed into a sync redis-py connection class: connecting, sending and reading wait at most
    until the deadline (and at most their own timeouts), by setting the socket's timeout before
    each. A connection whose deadline passed with replies still due is dropped, never reused."""

    _sock: Any
    socket_timeout: float | None
    socket_connect_timeout: float | None

    def _bound(self) -> None:
        if self._sock is not None and DEADLINE.get() is not None:
            try:
                self._sock.settimeout(remaining(self.socket_timeout))
            except DeadlinePassed:
                self.disconnect()  # type: ignore[attr-defined]  # replies may be due: drop it
                raise

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if DEADLINE.get() is None or self._sock is not None:
            return super().connect(*args, **kwargs)  # type: ignore[misc]
        saved = self.socket_connect_timeout, self.socket_timeout
        # The TCP connect, a TLS handshake and the handshake commands all end by the deadline.
        self.socket_connect_timeout = remaining(saved[0] if saved[0] is not None else saved[1])
        self.socket_timeout = remaining(saved[1])
        try:
            return super().connect(*args, **kwargs)  # type: ignore[misc]
        finally:
            self.socket_connect_timeout, self.socket_timeout = saved
            if self._sock is not None:
                self._sock.settimeout(self.socket_timeout)

    def send_packed_command(self, *args: Any, **kwargs: Any) -> Any:
        self._bound()
        return super().send_packed_command(*args, **kwargs)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        self._bound()
        try:
            return super().read_response(*args, **kwargs)  # type: ignore[misc]
        finally:
            if self._sock is not None and DEADLINE.get() is not None:
                self._sock.settimeout(self.socket_timeout)


@functools.cache
def with_deadlines(connection_class: type) -> type:
    """``connection_class`` (Connection, SSLConnection, ...) bounded by the deadline."""
    return type(f"Deadline{connection_class.__name__}", (_DeadlineSocket, connection_class), {})
