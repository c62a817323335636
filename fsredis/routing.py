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

Locate = Callable[[tuple[Any, ...], bool], Any]
"""The node that serves a command now (from the client's slot map; a replica may serve a read
when the second argument allows it); raises when none does."""


class ClusterMoving(redis_errors.ConnectionError):
    """The cluster did not settle within the operation's deadline: a command could not be served
    (the last reason is given). Whether a write of it was applied is unknown; sending it again
    with the same write id is safe."""


_REFRESH = (redis_errors.MovedError, redis_errors.ClusterDownError, redis_errors.ReadOnlyError,
            redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.RedisClusterException)
_AGAIN = (redis_errors.TryAgainError, redis_errors.AskError, *_REFRESH)


UNSETTLED = (redis_errors.RedisError, redis_errors.RedisClusterException)
"""What refreshing the slot map may raise while no node answers (the next round finds out)."""


def half_left() -> float | None:
    """Half of what is left of the operation's deadline (None without one): what a step that may
    stall on one node (a replica's reply, a refresh of the slot map) may take, so that the rest of
    the operation still has the other half."""
    try:
        left = remaining(None)
    except DeadlinePassed:
        return 0.001
    return None if left is None else max(left / 2, 0.001)


def replica_share(node: Any) -> float | None:
    """For a replica, the seconds its replies may take (:func:`half_left`), so that its primary
    can still answer when it does not (None: no bound of its own, for a primary)."""
    return half_left() if getattr(node, "server_type", None) == "replica" else None


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


_FINAL = (DeadlinePassed, redis_errors.AuthenticationError)  # (connection errors that going again cannot mend)


def moving(reply: Any) -> bool:
    """True when ``reply`` says the cluster is moving under the command (it can go again)."""
    return isinstance(reply, _AGAIN) and not isinstance(reply, _FINAL)


class ReadMerger:
    """Joins the batch reads (fs_get_batch, one per slot) that go to one node into fs_get_many
    calls (one per node, its keys as arguments: the function may touch any slot of its node),
    and splits their replies back. ``markers``: what names fs_get_batch in a command (its function
    name, its script's sha); ``build(keys, names)``: the fs_get_many command."""

    def __init__(self, markers: set[str], build: Callable[[list[Any], list[Any]], tuple[Any, ...]], limit: int = 1000,
                 names: int = 1000) -> None:
        self.markers, self.build, self.limit, self.names = markers, build, limit, names

    def kind(self, command: tuple[Any, ...]) -> Any:
        """What a command may be joined with (commands of one kind read the same names), or None."""
        if command[0] not in ("FCALL_RO", "EVALSHA_RO") or command[1] not in self.markers:
            return None
        names = command[3 + command[2]:]
        return names if len(names) <= self.names else None

    def chunks(self, positions: list[int], wire: Sequence[tuple[Any, ...]]) -> list[list[int]]:
        """``positions`` in groups of at most ``limit`` keys (a command larger than that alone)."""
        out: list[list[int]] = []
        keys = 0
        for position in positions:
            count = wire[position][2]
            if not out or keys + count > self.limit:
                out.append([])
                keys = 0
            out[-1].append(position)
            keys += count
        return out

    def join(self, commands: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        keys = [key for command in commands for key in command[3 : 3 + command[2]]]
        return self.build(keys, list(commands[0][3 + commands[0][2]:]))

    @staticmethod
    def split(reply: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Each command's own fs_get_batch reply; None for one with a key the node did not serve."""
        now, rows, at, out = reply[0], reply[1:], 0, []
        for command in commands:
            own = rows[at : at + command[2]]
            at += command[2]
            out.append(None if any(isinstance(row, Exception) for row in own) else [now, *own])
        return out


class ClusterBatch:
    """What is known of one batch: the final replies so far, the commands still to send, and
    whether the next round must refresh the slot map or wait first."""

    def __init__(self, wire: Sequence[tuple[Any, ...]], durable: tuple[int, int] | None = None,
                 merger: ReadMerger | None = None) -> None:
        self.wire = wire
        self.merger = merger
        self._alone: set[int] = set()  # positions that go unjoined (a joined read could not serve them)
        self._on_primary: set[int] = set()  # reads a replica did not serve: they go to the primary
        self.durable = durable  # (replicas, timeout ms): a WAIT after each node's commands, or None
        self.wait_command: tuple[Any, ...] | None = None  # this round's WAIT (cut to the deadline left)
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

    def plan(self, locate: Locate, node_at: Callable[[str, int], Any]) -> list[tuple[Any, list[Any], list[tuple[Any, ...]]]]:
        """The next round: for each node, the commands to send it and, beside each, the
        positions it answers for (None for ``ASKING`` before an ASK-redirected command, and for a
        WAIT). Reads the merger may join go as one command (several positions). A command whose
        node cannot be found waits for the next round (after a refresh)."""
        self.rounds += 1
        groups: dict[str, tuple[Any, list[Any], list[tuple[Any, ...]]]] = {}
        joinable: dict[str, dict[Any, list[int]]] = {}
        unplaced: list[int] = []
        for position in self.pending:
            command = self.wire[position]
            asked = self._ask.pop(position, None)
            try:  # (a read that failed on a replica goes to the primary)
                node = node_at(*asked) if asked else locate(command, position not in self._on_primary)
            except (redis_errors.RedisError, redis_errors.RedisClusterException, KeyError) as exc:
                node = None
                self._reason = exc
            if node is None:
                unplaced.append(position)
                continue
            if node.name not in groups and getattr(node, "server_type", None) == "replica":
                groups[node.name] = (node, [None], [("READONLY",)])  # a replica serves reads after READONLY
            group = groups.setdefault(node.name, (node, [], []))
            kind = None if asked or self.merger is None or position in self._alone else self.merger.kind(command)
            if kind is not None:
                joinable.setdefault(node.name, {}).setdefault(kind, []).append(position)
                continue
            if asked:
                group[1].append(None)
                group[2].append(("ASKING",))
            group[1].append([position])
            group[2].append(command)
        for name, kinds in joinable.items():
            _, parts, wire = groups[name]
            for positions in kinds.values():
                for chunk in self.merger.chunks(positions, self.wire):  # type: ignore[union-attr]
                    parts.append(chunk)
                    wire.append(self.merger.join([self.wire[i] for i in chunk]) if len(chunk) > 1 else self.wire[chunk[0]])  # type: ignore[union-attr]
        if self.durable is not None:
            self.wait_command = ("WAIT", self.durable[0], wait_ms(self.durable[1]))
            for group in groups.values():
                group[1].append(None)
                group[2].append(self.wait_command)
        if unplaced:
            self.refresh = True
            self.wait = max(self.wait, self._backoff())
        self.pending = unplaced
        return list(groups.values())

    def take(self, parts: Sequence[Any], commands: Sequence[tuple[Any, ...]], replies: Sequence[Any]) -> None:
        """The replies of one node's pipeline, one per command sent (``parts`` as :meth:`plan`
        gave them)."""
        acks, refused = 0, None
        for covered, command, reply in zip(parts, commands, replies):
            if command is self.wait_command:
                acks = reply if isinstance(reply, int) else 0
            elif covered is None and isinstance(reply, redis_errors.ResponseError):
                refused = reply  # ASKING or READONLY refused (an ACL without them): nothing it covers was served
        for covered, command, reply in zip(parts, commands, replies):
            if covered is None:
                continue
            if refused is not None and moving(reply):
                reply = refused
            if len(covered) == 1 or isinstance(reply, BaseException):
                for position in covered:
                    self._settle(position, reply, acks)
                continue
            for position, own in zip(covered, self.merger.split(reply, [self.wire[i] for i in covered])):  # type: ignore[union-attr]
                if own is None:  # the node did not serve one of its keys: it goes again alone
                    self._alone.add(position)
                    self.pending.append(position)
                    self.wait = max(self.wait, self._backoff())
                else:
                    self._settle(position, own, acks)

    def _settle(self, position: int, reply: Any, acks: int) -> None:
        if not moving(reply):
            self.replies[position] = reply
            self.acks[position] = 0 if isinstance(reply, Exception) else acks
            return
        self.pending.append(position)
        self._on_primary.add(position)
        self._reason = reply
        if isinstance(reply, redis_errors.AskError) and not isinstance(reply, redis_errors.MovedError):
            self._ask[position] = (reply.host, reply.port)
            return
        if isinstance(reply, _REFRESH):
            self.refresh = True
        if not isinstance(reply, redis_errors.MovedError) or self.rounds > 1:  # a first MOVED goes at once
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

    def give_up(self) -> None:
        """Every pending command gets ClusterMoving (naming the last reason seen)."""
        why = self._reason
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
