"""How a :class:`~fsredis.commands.Call` becomes a Redis command, for either transport.

* ``fcall``: ``FCALL``/``FCALL_RO`` of the Functions library. A server that lost its functions
  (restarted without persistence, ``FUNCTION FLUSH``) answers ``Function not found``; the client
  loads the library (``FUNCTION LOAD REPLACE``) and sends the call again.
* ``evalsha``: ``EVALSHA``/``EVALSHA_RO`` of one script per command. After ``SCRIPT FLUSH`` or a
  restart the server answers ``NOSCRIPT``; the client loads the scripts and sends the call again.
  The commands that check the schema registry (``fs_write``, ``fs_rollback``) exist only as
  functions and are always sent with ``FCALL``, so every writer obeys the one registry the server
  holds (see fsredis/library.py).

Either way a call that failed that way never ran, so sending it again cannot apply it twice.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from fsredis.commands import Call
from fsredis.library import Library

_KEYED = frozenset({"FCALL", "FCALL_RO", "EVALSHA", "EVALSHA_RO"})
_ONE_KEY = frozenset({"HGET", "HGETALL", "HEXISTS", "HKEYS", "HSET", "PEXPIRE", "SMEMBERS", "XREVRANGE"})
_EVERYWHERE = frozenset({("FCALL_RO", "fs_version"), ("FCALL_RO", "fs_registry_version")})


class Transport:
    """Turns calls into command tuples; knows how to recognise and repair a missing library."""

    def __init__(self, library: Library, kind: str) -> None:
        self.library = library
        self.kind = kind
        self._fcall = kind == "fcall"

    def command(self, call: Call) -> tuple[Any, ...]:
        """The argument tuple for ``execute_command``."""
        sha = None if self._fcall else self.library.shas.get(call.function)
        if sha is None:  # the fcall transport, or a functions-only command
            return ("FCALL_RO" if call.readonly else "FCALL", call.function, len(call.keys), *call.keys, *call.args)
        return ("EVALSHA_RO" if call.readonly else "EVALSHA", sha, len(call.keys), *call.keys, *call.args)

    @staticmethod
    def routing_key(command: tuple[Any, ...]) -> str | None:
        """The first key of a library call or of a one-key read (what a cluster routes it by)."""
        if command[0] in _KEYED:
            return command[3] if command[2] else None  # type: ignore[no-any-return]
        return command[1] if command[0] in _ONE_KEY else None  # type: ignore[no-any-return]

    @staticmethod
    def everywhere(command: tuple[Any, ...]) -> bool:
        """True for commands every primary of a cluster must run (library loading, its version)."""
        return command[0] in ("FUNCTION", "SCRIPT") or command[:2] in _EVERYWHERE

    @staticmethod
    def is_missing(error: BaseException) -> bool:
        """True when ``error`` says the server lacks our scripts or functions."""
        if isinstance(error, NoScriptError):
            return True
        return isinstance(error, ResponseError) and str(error).startswith("Function not found")

    def load_commands(self, source: str) -> list[tuple[Any, ...]]:
        """Commands that (re)install what this transport calls: the Functions library (``source``,
        with its registry compiled in) always, so writes are checked and ``redis-cli FCALL`` works
        for operators whichever transport the client uses."""
        commands: list[tuple[Any, ...]] = [("FUNCTION", "LOAD", "REPLACE", source)]
        if not self._fcall:
            commands += [("SCRIPT", "LOAD", script) for script in self.library.scripts.values()]
        return commands
