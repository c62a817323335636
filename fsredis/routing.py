"""Batches on Redis Cluster that survive the cluster moving (sans I/O: the drivers do the sending).

A batch is a list of commands, each touching one hash slot (one Lua call per slot or per entity).
The drivers send them as one pipeline per node, and hand every reply to a :class:`ClusterBatch`,
which decides what is final and what must go again:

* ``MOVED``: the slot lives elsewhere now (a reshard, a failover): the slot map is refreshed and
  the command goes to the slot's new node in the next round;
* ``ASK``: the slot is migrating and this key is already on the target: the command goes there,
  after ``ASKING`` on the same connection;
* ``TRYAGAIN`` (a multi-key call whose keys are split by a migration), ``CLUSTERDOWN``,
  ``MASTERDOWN``, ``READONLY`` (the node became a replica), a refused or broken connection: the
  command goes again after a short wait, and after a refresh of the slot map.

Each round waits longer (20 ms, doubling, at most 500 ms) and none starts after the operation's
deadline: then the commands still pending get :class:`ClusterMoving`, which names the last
reason. Sending a command again is safe: reads have no effect, and every write carries a write
id that the Lua library applies at most once. Any other reply (a value, a refusal of the library)
is final.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis import exceptions as redis_errors

from fsredis.deadline import DeadlinePassed, remaining

FIRST_WAIT = 0.02
"""Seconds before the second round; each further round waits twice as long, up to LONGEST_WAIT."""
LONGEST_WAIT = 0.5
ROUNDS_WITHOUT_DEADLINE = 12
"""Rounds at most for an operation without a deadline (about 4 s of waiting)."""

Locate = Callable[[tuple[Any, ...]], Any]
"""The node that serves a command now (from the client's slot map); raises when none does."""


class ClusterMoving(redis_errors.ConnectionError):
    """The cluster did not settle within the operation's deadline: a command could not be served
    (the last reason is given). Whether a write of it was applied is unknown; sending it again
    with the same write id is safe."""


_REFRESH = (redis_errors.MovedError, redis_errors.ClusterDownError, redis_errors.ReadOnlyError,
            redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.RedisClusterException)
_AGAIN = (redis_errors.TryAgainError, redis_errors.AskError, *_REFRESH)


UNSETTLED = (redis_errors.RedisError, redis_errors.RedisClusterException)
"""What refreshing the slot map may raise while no node answers (the next round finds out)."""


def wait_ms(timeout_ms: int) -> int:
    """``timeout_ms`` for a WAIT, cut to the operation's deadline (at least 1 ms: WAIT 0 would
    wait forever)."""
    try:
        left = remaining(None)
    except DeadlinePassed:
        return 1
    return max(1, min(timeout_ms, int(left * 1000) - 5)) if left is not None else timeout_ms


def as_redis_error(exc: BaseException) -> redis_errors.RedisError:
    """``exc`` as a RedisError: redis-py raises RedisClusterException (no RedisError) when no node
    serves a slot or none answers; that is a cluster moving (ClusterMoving, chained to it)."""
    if isinstance(exc, redis_errors.RedisError):
        return exc
    error = ClusterMoving(f"no cluster node serves the call now ({type(exc).__name__}: {exc})")
    error.__cause__ = exc
    return error


def moving(reply: Any) -> bool:
    """True when ``reply`` says the cluster is moving under the command (it can go again)."""
    return isinstance(reply, _AGAIN) and not isinstance(reply, DeadlinePassed)


class ClusterBatch:
    """What is known of one batch: the final replies so far, the commands still to send, and
    whether the next round must refresh the slot map or wait first."""

    def __init__(self, wire: Sequence[tuple[Any, ...]], wait: tuple[Any, ...] | None = None) -> None:
        self.wire = wire
        self.wait_command = wait  # ("WAIT", replicas, ms) after each node's commands, or None
        self.acks = [0] * len(wire)  # replicas that confirmed each final reply (with wait)
        self.replies: list[Any] = [None] * len(wire)
        self.pending: list[int] = list(range(len(wire)))
        self.rounds = 0
        self.refresh = False
        self.wait = 0.0
        self._ask: dict[int, tuple[str, int]] = {}  # position -> (host, port) of an ASK redirect
        self._reason: BaseException | None = None

    @property
    def done(self) -> bool:
        return not self.pending

    def plan(self, locate: Locate, node_at: Callable[[str, int], Any]) -> list[tuple[Any, list[int], list[tuple[Any, ...]]]]:
        """The next round: for each node, the positions it serves and the commands to send it
        (``ASKING`` before an ASK-redirected command: its reply is not one of the positions').
        A command whose node cannot be found waits for the next round (after a refresh)."""
        self.rounds += 1
        groups: dict[str, tuple[Any, list[int], list[tuple[Any, ...]]]] = {}
        unplaced: list[int] = []
        for position in self.pending:
            command = self.wire[position]
            asked = self._ask.pop(position, None)
            try:
                node = node_at(*asked) if asked else locate(command)
            except (redis_errors.RedisError, redis_errors.RedisClusterException, KeyError) as exc:
                node = None
                self._reason = exc
            if node is None:
                unplaced.append(position)
                continue
            group = groups.setdefault(node.name, (node, [], []))
            group[1].append(position)
            if asked:
                group[2].append(("ASKING",))
            group[2].append(command)
        if self.wait_command is not None:
            for group in groups.values():
                group[2].append(self.wait_command)
        if unplaced:
            self.refresh = True
            self.wait = max(self.wait, self._backoff())
        self.pending = unplaced
        return list(groups.values())

    def take(self, positions: Sequence[int], commands: Sequence[tuple[Any, ...]], replies: Sequence[Any]) -> None:
        """The replies of one node's pipeline (one per command sent, ``ASKING`` and ``WAIT``
        included)."""
        kept, acks = [], 0
        for command, reply in zip(commands, replies):
            if command is self.wait_command:
                acks = reply if isinstance(reply, int) else 0
            elif command != ("ASKING",):
                kept.append(reply)
        for position, reply in zip(positions, kept):
            if not moving(reply):
                self.replies[position] = reply
                self.acks[position] = 0 if isinstance(reply, Exception) else acks
                continue
            self.pending.append(position)
            self._reason = reply
            if isinstance(reply, redis_errors.AskError) and not isinstance(reply, redis_errors.MovedError):
                self._ask[position] = (reply.host, reply.port)
                continue
            if isinstance(reply, _REFRESH):
                self.refresh = True
            if not isinstance(reply, redis_errors.MovedError):  # a MOVED can go at once (after the refresh)
                self.wait = max(self.wait, self._backoff())

    def next_wait(self) -> float:
        """Seconds to wait before the next round; ClusterMoving for the pending commands (and 0)
        when the deadline would pass first or the rounds are used up."""
        wait, self.wait = self.wait, 0.0
        try:
            left = remaining(None)
        except DeadlinePassed:
            left = 0.0
        if (left is None and self.rounds >= ROUNDS_WITHOUT_DEADLINE) or (left is not None and left <= wait):
            self.give_up()
            return 0.0
        return wait

    def give_up(self, reason: BaseException | None = None) -> None:
        """Every pending command gets ClusterMoving (naming ``reason`` or the last one seen)."""
        why = reason or self._reason
        for position in self.pending:
            error = ClusterMoving(
                f"the cluster did not serve the command within the deadline ({self.rounds} rounds; "
                f"last: {type(why).__name__}: {why}); a write of it may or may not have been applied, "
                "and is safe to send again with the same write id"
            )
            error.__cause__ = why
            self.replies[position] = error
        self.pending = []

    def _backoff(self) -> float:
        return min(FIRST_WAIT * 2 ** max(self.rounds - 1, 0), LONGEST_WAIT)
