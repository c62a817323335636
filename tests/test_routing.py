"""The cluster batch planner (fsredis/routing.py), without Redis: what goes again, where, and when
it gives up. The same planner drives the live-cluster tests of tests/test_cluster_moving.py."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from redis import exceptions as redis_errors

from fsredis.deadline import deadline
from fsredis.routing import ClusterBatch, ClusterMoving, moving

A, B = SimpleNamespace(name="a:1"), SimpleNamespace(name="b:2")
WIRE = [("FCALL", "fs_get_batch", 1, f"k{i}", "x") for i in range(4)]


def locate_all_on(node):  # type: ignore[no-untyped-def]
    return lambda command, replica=False: node


def test_final_replies_are_kept_and_moved_ones_go_again_after_a_refresh() -> None:
    batch = ClusterBatch(WIRE)
    [(node, positions, wire)] = batch.plan(locate_all_on(A), lambda host, port: None)
    assert node is A and positions == [[0], [1], [2], [3]] and wire == WIRE
    refused = redis_errors.ResponseError("FSVALIDATION feature=x rule=min")
    batch.take(positions, wire, [b"one", redis_errors.MovedError("5 127.0.0.1:2"), refused, b"four"])
    assert batch.pending == [1] and batch.refresh and batch.replies[0] == b"one" and batch.replies[2] is refused
    assert batch.next_wait() == 0  # a MOVED goes again at once, after the refresh
    [(node, positions, wire)] = batch.plan(locate_all_on(B), lambda host, port: None)
    assert node is B and positions == [[1]]
    batch.take(positions, wire, [b"two"])
    assert batch.done and batch.replies == [b"one", b"two", refused, b"four"]


def test_an_ask_goes_to_its_target_after_asking_on_the_same_connection() -> None:
    batch = ClusterBatch(WIRE[:2])
    [(_, positions, wire)] = batch.plan(locate_all_on(A), lambda host, port: None)
    batch.take(positions, wire, [redis_errors.AskError("7 127.0.0.1:2"), b"ok"])
    assert not batch.refresh  # the slot map is right: the slot is migrating
    groups = batch.plan(locate_all_on(A), lambda host, port: B if (host, port) == ("127.0.0.1", 2) else None)
    [(node, positions, wire)] = groups
    assert node is B and positions == [None, [0]] and wire == [("ASKING",), WIRE[0]]
    batch.take(positions, wire, [b"OK", b"answer"])
    assert batch.replies == [b"answer", b"ok"]


@pytest.mark.parametrize("error", [
    redis_errors.TryAgainError("Multiple keys request during rehashing of slot"),
    redis_errors.ClusterDownError("The cluster is down"),
    redis_errors.ReadOnlyError("You can't write against a read only replica."),
    redis_errors.ConnectionError("Connection refused"),
    redis_errors.TimeoutError("Timeout reading from socket"),
])
def test_a_moving_cluster_waits_longer_each_round(error) -> None:
    assert moving(error)
    batch = ClusterBatch(WIRE[:1])
    waits = []
    for _ in range(6):
        [(_, positions, wire)] = batch.plan(locate_all_on(A), lambda host, port: None)
        batch.take(positions, wire, [error])
        waits.append(batch.next_wait())
    assert waits == sorted(waits) and 0 < waits[0] < waits[-1] <= 0.5
    assert batch.refresh == (not isinstance(error, redis_errors.TryAgainError))


def test_past_the_deadline_the_pending_commands_get_cluster_moving() -> None:
    batch = ClusterBatch(WIRE)
    with deadline(0.05):
        [(_, positions, wire)] = batch.plan(locate_all_on(A), lambda host, port: None)
        batch.take(positions, wire, [b"done", *[redis_errors.ClusterDownError("The cluster is down")] * 3])
        time.sleep(0.06)
        assert batch.next_wait() == 0.0
    assert batch.done and batch.replies[0] == b"done"
    assert all(isinstance(reply, ClusterMoving) and "ClusterDownError" in str(reply) for reply in batch.replies[1:])
    assert isinstance(batch.replies[1], redis_errors.ConnectionError)  # fsredis translates it to StoreUnavailable


def test_without_a_deadline_the_rounds_are_bounded() -> None:
    batch = ClusterBatch(WIRE[:1])
    rounds = 0
    while not batch.done:
        [(_, positions, wire)] = batch.plan(locate_all_on(A), lambda host, port: None)
        batch.take(positions, wire, [redis_errors.TryAgainError("again")])
        batch.next_wait()
        rounds += 1
    assert rounds == 12 and isinstance(batch.replies[0], ClusterMoving)


def test_a_slot_no_node_serves_waits_for_a_refresh() -> None:
    def nowhere(command, replica=False):  # type: ignore[no-untyped-def]
        raise redis_errors.SlotNotCoveredError("slot 5 is not covered")

    batch = ClusterBatch(WIRE[:2])
    assert batch.plan(nowhere, lambda host, port: None) == []
    assert batch.pending == [0, 1] and batch.refresh and batch.next_wait() > 0


def test_the_deadline_itself_is_final() -> None:
    from fsredis.deadline import DeadlinePassed

    assert not moving(DeadlinePassed("no answer within the deadline"))
    assert not moving(redis_errors.ResponseError("FSVALIDATION feature=x rule=min"))


@pytest.mark.parametrize("error", [
    redis_errors.ClusterError("TTL exhausted."),
    redis_errors.TryAgainError("Multiple keys request during rehashing of slot"),
    redis_errors.MovedError("5 127.0.0.1:7001"),
    redis_errors.AskError("5 127.0.0.1:7001"),
    redis_errors.ClusterDownError("The cluster is down"),
    redis_errors.SlotNotCoveredError("Slot 5 not covered by the cluster"),
    redis_errors.RedisClusterException("Redis Cluster cannot be connected"),
    ClusterMoving("the cluster did not serve the command within the deadline"),
])
def test_every_error_of_a_moving_cluster_is_one_retryable_error(error) -> None:
    from fsredis import StoreUnavailable
    from fsredis.errors import translate
    from fsredis.routing import as_redis_error

    assert isinstance(translate(error), StoreUnavailable)
    assert isinstance(as_redis_error(error), redis_errors.RedisError)
    assert isinstance(translate(as_redis_error(error)), StoreUnavailable)


def test_a_wait_follows_each_nodes_commands_and_counts_for_its_final_replies() -> None:
    wait = ("WAIT", 1, 100)
    batch = ClusterBatch(WIRE[:3], (1, 100))
    groups = batch.plan(lambda command, replica: A if command[3] != "k2" else B, lambda host, port: None)
    assert [(node, wire[-1]) for node, _, wire in groups] == [(A, wait), (B, wait)]
    (_, a_positions, a_wire), (_, b_positions, b_wire) = groups
    batch.take(a_positions, a_wire, [b"one", redis_errors.ResponseError("FSVALIDATION x"), 1])
    batch.take(b_positions, b_wire, [redis_errors.TryAgainError("again"), 1])
    assert batch.acks[:2] == [1, 0] and batch.pending == [2]  # an error reply counts no replica
    [(_, positions, wire)] = batch.plan(locate_all_on(B), lambda host, port: None)
    batch.take(positions, wire, [b"three", 0])  # the replica did not confirm in time
    assert batch.done and batch.acks == [1, 0, 0] and batch.replies[2] == b"three"


def test_batch_reads_of_one_node_go_as_one_call_and_a_key_it_cannot_serve_goes_again_alone() -> None:
    from fsredis.routing import ReadMerger

    reads = [("FCALL_RO", "fs_get_batch", 2, "k0", "k1", "x"), ("FCALL_RO", "fs_get_batch", 1, "k2", "x"),
             ("FCALL_RO", "fs_get_batch", 1, "k3", "y"), ("FCALL", "fs_write", 1, "k4", "o")]
    merger = ReadMerger({"fs_get_batch"}, lambda keys, names: ("FCALL_RO", "fs_get_many", 0, len(names), *names, *keys))
    batch = ClusterBatch(reads, merger=merger)
    [(node, parts, wire)] = batch.plan(locate_all_on(A), lambda host, port: None)
    assert sorted(map(sorted, parts)) == [[0, 1], [2], [3]]  # the two reads of "x" joined; "y" and the write alone
    joined = wire[parts.index([0, 1])]
    assert joined == ("FCALL_RO", "fs_get_many", 0, 1, "x", "k0", "k1", "k2")
    moved = redis_errors.ResponseError("Script attempted to access a non local key in a cluster node")
    answers = []
    for covered in parts:
        if covered == [0, 1]:
            answers.append([1000, [b"a"], [b"b"], moved])  # k2 is not served here (any more)
        elif covered == [2]:
            answers.append([1000, [b"y"]])
        else:
            answers.append([1])
    batch.take(parts, wire, answers)
    assert batch.replies[0] == [1000, [b"a"], [b"b"]] and batch.replies[2] == [1000, [b"y"]] and batch.replies[3] == [1]
    assert batch.pending == [1]
    batch.next_wait()
    [(node, parts, wire)] = batch.plan(locate_all_on(B), lambda host, port: None)
    assert parts == [[1]] and wire == [reads[1]]  # alone: fs_get_batch follows the redirect
    batch.take(parts, wire, [[1001, [b"c"]]])
    assert batch.done and batch.replies[1] == [1001, [b"c"]]


def test_a_read_on_a_replica_asks_readonly_first_and_goes_to_the_primary_if_it_fails() -> None:
    replica = SimpleNamespace(name="r:3", server_type="replica")
    batch = ClusterBatch(WIRE[:2])
    [(node, parts, wire)] = batch.plan(lambda command, replica_ok: replica if replica_ok else A, lambda host, port: None)
    assert node is replica and wire[0] == ("READONLY",) and parts[0] is None
    batch.take(parts, wire, [b"OK", b"one", redis_errors.ConnectionError("refused")])
    batch.next_wait()
    [(node, parts, wire)] = batch.plan(lambda command, replica_ok: replica if replica_ok else A, lambda host, port: None)
    assert node is A and parts == [[1]] and wire == [WIRE[1]]


def test_a_refused_asking_or_readonly_is_final_and_credentials_are_not_retried() -> None:
    """An ACL without ASKING/READONLY: the redirect would repeat forever; the refusal is final."""
    batch = ClusterBatch(WIRE[:1])
    [(_, parts, wire)] = batch.plan(locate_all_on(A), lambda host, port: None)
    batch.take(parts, wire, [redis_errors.AskError("7 127.0.0.1:2")])
    [(_, parts, wire)] = batch.plan(locate_all_on(A), lambda host, port: B)
    refusal = redis_errors.NoPermissionError("this user has no permissions to run the 'asking' command")
    batch.take(parts, wire, [refusal, redis_errors.MovedError("7 127.0.0.1:1")])
    assert batch.done and batch.replies[0] is refusal
    assert not moving(redis_errors.AuthenticationError("invalid username-password pair"))


def test_rows_of_one_entity_stay_in_one_call_on_a_cluster() -> None:
    from fsredis.commands import BATCH_ENTITIES_PER_CALL, batch_groups
    from fsredis.keys import entity_keys

    by_slot: dict[int, list[str]] = {}
    for i in range(100_000):  # three entity ids whose keys share a slot
        same = by_slot.setdefault(entity_keys("ns", f"e{i}").slot, [])
        same.append(f"e{i}")
        if len(same) == 3:
            break
    keys = [entity_keys("ns", same[i % 3]) for i in range(3 * BATCH_ENTITIES_PER_CALL)]  # rows interleaved
    groups = batch_groups(list(range(len(keys))), keys, cluster=True)
    seen: dict[str, int] = {}
    for n, (positions, group_keys) in enumerate(groups):
        assert len(positions) <= 2 * BATCH_ENTITIES_PER_CALL
        for entity in {k.entity for k in group_keys}:
            assert seen.setdefault(entity, n) == n, "an entity's rows are split over two calls"
        for entity in {k.entity for k in group_keys}:  # and in their order
            mine = [p for p, k in zip(positions, group_keys) if k.entity == entity]
            assert mine == sorted(mine)
    assert sorted(p for positions, _ in groups for p in positions) == list(range(len(keys)))


def test_each_rounds_wait_is_cut_to_the_deadline_left() -> None:
    batch = ClusterBatch(WIRE[:1], (1, 10_000))
    with deadline(0.5):
        [(_, parts, wire)] = batch.plan(locate_all_on(A), lambda host, port: None)
        assert wire[-1][:2] == ("WAIT", 1) and 300 < wire[-1][2] <= 500
        batch.take(parts, wire, [redis_errors.TryAgainError("again"), 0])
        time.sleep(0.25)
        [(_, parts, wire)] = batch.plan(locate_all_on(A), lambda host, port: None)
        assert wire[-1][2] <= 250
