"""How a :class:`~fsredis.commands.Call` becomes a Redis command, for either transport.

* ``fcall``: ``FCALL``/``FCALL_RO`` of the Functions library. A server that lost its functions
  (restarted without persistence, ``FUNCTION FLUSH``) answers ``Function not found``; the client
  loads the library (``FUNCTION LOAD REPLACE``) and sends the call again.
* ``evalsha``: ``EVALSHA``/``EVALSHA_RO`` of one script per command. After ``SCRIPT FLUSH`` or a
  restart the server answers ``NOSCRIPT``; the client loads the scripts and sends the call again.

Either way a call that failed that way never ran, so sending it again cannot apply it twice.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from fsredis.commands import Call
from fsredis.library import Library

_KEYED = frozenset({"FCALL", "FCALL_RO", "EVALSHA", "EVALSHA_RO"})


class Transport:
    """Turns calls into command tuples; knows how to recognise and repair a missing library."""

    def __init__(self, library: Library, kind: str) -> None:
        self.library = library
        self.kind = kind
        self._fcall = kind == "fcall"

    def command(self, call: Call) -> tuple[Any, ...]:
        """The argument tuple for ``execute_command``."""
        if self._fcall:
            return ("FCALL_RO" if call.readonly else "FCALL", call.function, len(call.keys), *call.keys, *call.args)
        sha = self.library.shas[call.function]
        return ("EVALSHA_RO" if call.readonly else "EVALSHA", sha, len(call.keys), *call.keys, *call.args)

    @staticmethod
    def routing_key(command: tuple[Any, ...]) -> str | None:
        """The first key of a library call (what a cluster routes it by), else None."""
        if command[0] in _KEYED and command[2]:
            return command[3]  # type: ignore[no-any-return]
        return None

    @staticmethod
    def everywhere(command: tuple[Any, ...]) -> bool:
        """True for commands every primary of a cluster must run (library loading, its version)."""
        return command[0] in ("FUNCTION", "SCRIPT") or command[:2] == ("FCALL_RO", "fs_version")

    @staticmethod
    def is_missing(error: BaseException) -> bool:
        """True when ``error`` says the server lacks our scripts or functions."""
        if isinstance(error, NoScriptError):
            return True
        return isinstance(error, ResponseError) and str(error).startswith("Function not found")

    def load_commands(self) -> list[tuple[Any, ...]]:
        """Commands that (re)install what this transport calls; the Functions library always,
        so that ``redis-cli FCALL`` works for operators whichever transport the client uses."""
        commands: list[tuple[Any, ...]] = [("FUNCTION", "LOAD", "REPLACE", self.library.source)]
        if not self._fcall:
            commands += [("SCRIPT", "LOAD", script) for script in self.library.scripts.values()]
        return commands
