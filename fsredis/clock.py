"""What the client knows of the server's clock, so a plain ``HMGET`` can drop expired values.

Every expiry is set from the server's clock (``TIME`` inside the Lua write). To read a value
without running Lua, the client needs an *upper bound* of the server's time now: a value whose
expiry lies at or before that bound is dropped. The bound comes from one ``TIME`` reply: the
server read its clock somewhere between sending the command (``sent``) and receiving the reply,
so ``now <= server_time + (monotonic now - sent) * (1 + drift)``. The bound errs on the side of
dropping: a value is dropped up to one round trip plus the drift before its expiry, never
returned after it — as long as the server's clock does not jump forward between two
synchronisations (an NTP step): :attr:`ServerClock.interval` bounds how long such a jump can go
unnoticed.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

DRIFT = 1e-3
"""The most two clocks may run apart, as a fraction (1,000 ppm: NTP allows 500 on each side)."""


class ServerClock:
    """An upper bound of a server's clock, learned from ``TIME`` every ``interval`` seconds."""

    __slots__ = ("interval", "_reading")

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        # (server ms, monotonic time TIME was sent, monotonic time to learn again): one tuple,
        # replaced whole, so threads sharing a store never mix two readings.
        self._reading = (0.0, 0.0, 0.0)

    def stale(self) -> bool:
        """True when the bound must be learned again (first use, or ``interval`` has passed)."""
        return monotonic() >= self._reading[2]

    def learn(self, reply: Any, sent: float) -> None:
        """Take a ``TIME`` reply (seconds, microseconds) to a command sent at ``sent`` (monotonic)."""
        seconds, micros = int(reply[0]), int(reply[1])
        self._reading = (seconds * 1000.0 + micros / 1000.0, sent, monotonic() + self.interval)

    def upper_ms(self) -> float:
        """An upper bound of the server's time now, in ms since the epoch."""
        server_ms, sent, _ = self._reading
        return server_ms + (monotonic() - sent) * 1000.0 * (1.0 + DRIFT) + 1.0
