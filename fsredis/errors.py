"""Exceptions, and the mapping from the Lua library's error codes to them.

The Lua code raises replies such as ``FSVALIDATION feature=price rule=finite NaN ...``; the code
(first word) picks the class, ``feature=`` and ``rule=`` become attributes, the rest is the
detail. Every exception the package raises on purpose derives from :class:`FeatureStoreError`.
"""

from __future__ import annotations

import re
import ssl

from redis import exceptions as redis_errors

from fsredis.deadline import DeadlinePassed

__all__ = [
    "FeatureStoreError",
    "ValidationError",
    "NotFound",
    "SchemaError",
    "RegistryConflict",
    "TransformError",
    "LibraryError",
    "StoreUnavailable",
    "NotReplicated",
    "TLSError",
    "PermissionDenied",
    "LibraryPermissionDenied",
    "StoreFull",
    "BatchWriteError",
    "BatchReadError",
    "IngestError",
    "CorruptValue",
    "MissingDependency",
    "from_reply",
    "translate",
]


class FeatureStoreError(Exception):
    """Base of every error fsredis raises."""


class ValidationError(FeatureStoreError, ValueError):
    """A feature broke a rule; nothing of the write was stored.

    ``feature`` names the feature (or entity id), ``rule`` the rule it broke (``name``, ``type``,
    ``finite``, ``size``, ``dtype``, ``shape``, ``ttl``, ``entity_id``, ...).
    """

    def __init__(self, feature: str, rule: str, detail: str = "") -> None:
        self.feature = feature
        self.rule = rule
        self.detail = detail
        super().__init__(f"feature={feature} rule={rule}" + (f": {detail}" if detail else ""))


class NotFound(FeatureStoreError, LookupError):
    """The feature or version asked for does not exist (or is no longer kept)."""

    def __init__(self, feature: str, rule: str, detail: str = "") -> None:
        self.feature = feature
        self.rule = rule
        self.detail = detail
        super().__init__(f"feature={feature} rule={rule}" + (f": {detail}" if detail else ""))


class SchemaError(FeatureStoreError, ValueError):
    """A feature definition is invalid, or a registry change was refused (e.g. a dtype change of a
    feature that has data, without ``force``)."""


class RegistryConflict(SchemaError):
    """The registry changed between reading it and storing a change (``FSCONFLICT``)."""


class TransformError(FeatureStoreError, ValueError):
    """A transform failed or returned the wrong shape; nothing was written.

    ``transform`` is ``name@version`` (``-`` when no transform is to blame)."""

    def __init__(self, transform: str, detail: str) -> None:
        self.transform = transform
        self.detail = detail
        super().__init__(f"transform={transform}: {detail}")


class LibraryError(FeatureStoreError):
    """The Lua library could not be built, loaded, or called as expected."""


class StoreUnavailable(FeatureStoreError, ConnectionError):
    """Redis could not be reached (after the configured retries)."""


class StoreClosed(FeatureStoreError):
    """The store was closed (``close()``, or the end of its ``with`` block): make a new one."""


class NotReplicated(StoreUnavailable):
    """The primary applied the write, but fewer replicas than ``min_replicas`` confirmed it within
    ``replica_timeout``: it may or may not survive a failover. Sending it again with the same write
    id is safe (``acknowledged`` replicas confirmed it, ``wanted`` were asked for; ``result`` is
    what the primary did, when known)."""

    def __init__(self, message: str, acknowledged: int, wanted: int, result: object = None) -> None:
        super().__init__(message)
        self.acknowledged, self.wanted, self.result = acknowledged, wanted, result


class TLSError(StoreUnavailable):
    """The TLS handshake with Redis failed: the server's certificate could not be verified (another
    CA than ``ssl_ca_certs``, or issued for another host name), or the server wants a client
    certificate (``ssl_certfile``/``ssl_keyfile``) that was not given or that it does not trust."""


class PermissionDenied(FeatureStoreError, PermissionError):
    """The Redis user's ACL refused a command or a key (a ``NOPERM`` reply, also from a command run
    inside a library function: functions run with the caller's permissions).

    ``permission`` names what was refused as the server said it: ``command 'hset'``,
    ``command 'function|load'``, ``a key``, or ``a command`` when the server does not say which
    (Redis 7.0 inside a function: its ``ACL LOG`` names it). ``function`` is the library function
    that ran the refused command, if any. deploy/users.acl lists what each fsredis role needs.
    """

    def __init__(self, message: str, permission: str = "", function: str | None = None) -> None:
        self.permission = permission
        self.function = function
        super().__init__(message)


class LibraryPermissionDenied(PermissionDenied, LibraryError):
    """The Redis user may not install the Lua library (``FUNCTION LOAD``, ``SCRIPT LOAD``) and the
    server lacks it or has another version: an admin must run ``fsredis load-functions`` once."""


class StoreFull(FeatureStoreError):
    """Redis reached ``maxmemory`` (with ``noeviction``): the write was refused, nothing stored."""


class CorruptValue(FeatureStoreError, ValueError):
    """A stored value cannot be read back (written around the Lua library's checks, or damaged).

    ``entity`` and ``feature`` name it; ``rule`` is ``value`` (a current value) or ``record`` (a
    history record). The Lua library refuses to store such values; this reports old or foreign
    data instead of failing with a decoder's own exception."""

    def __init__(self, entity: str, feature: str, detail: str, rule: str = "value") -> None:
        self.entity = entity
        self.feature = feature
        self.rule = rule
        self.detail = detail
        super().__init__(f"entity={entity} feature={feature} rule={rule}: {detail}")


class BatchReadError(FeatureStoreError):
    """Some values of a batch read are unreadable (:class:`CorruptValue`).

    ``results`` is what the read returns otherwise: every requested entity, with every readable
    feature (the unreadable ones absent); ``errors`` maps each affected entity id to the
    CorruptValue of its first unreadable feature."""

    def __init__(self, results: dict[str, dict[str, object]], errors: dict[str, CorruptValue]) -> None:
        self.results = results
        self.errors = errors
        first = next(iter(errors.values()))
        super().__init__(f"{len(errors)} of {len(results)} entities hold unreadable values; first: {first}")


class MissingDependency(FeatureStoreError, ImportError):
    """An optional dependency (an extra) is needed for this call."""


class BatchWriteError(FeatureStoreError):
    """Some entities of a batch write were not written, or may not have been; each entity is
    atomic, the batch is not.

    ``written`` lists the entities stored; ``errors`` maps each other entity to its error, split
    into ``refused`` (a rule or check said no: nothing of it was stored) and ``unknown`` (Redis
    did not answer in time, a node failed, the cluster was moving: it may or may not have been
    stored). ``write_ids`` maps every entity of the batch to the write id it was sent with: send
    the unknown ones again with the same ids (``write_ids=error.write_ids``) and none is stored
    twice.
    """

    def __init__(
        self, errors: dict[str, FeatureStoreError], written: list[str], write_ids: dict[str, str] | None = None
    ) -> None:
        self.errors = errors
        self.written = written
        self.write_ids = write_ids or {}
        self.unknown = [entity for entity, error in errors.items() if isinstance(error, StoreUnavailable)]
        self.refused = [entity for entity, error in errors.items() if not isinstance(error, StoreUnavailable)]
        first = next(iter(errors.items()))
        super().__init__(
            f"{len(written)} of {len(errors) + len(written)} entities written, {len(self.refused)} refused, "
            f"{len(self.unknown)} unknown (safe to send again with the same write ids); first: {first[0]}: {first[1]}"
        )


class IngestError(FeatureStoreError):
    """A load with ``on_error="raise"`` met a refused row; ``report`` says what was done until then
    (rows written before it stay written: each row is its own atomic write)."""

    def __init__(self, message: str, report: object) -> None:
        self.report = report
        super().__init__(message)


_REPLY = re.compile(r"^(FS[A-Z]+) (?:feature=(.*?) rule=(\S+) ?)?(.*?)(?: script: .*)?$", re.S)


def from_reply(message: str) -> FeatureStoreError | None:
    """The exception for an error reply of the Lua library, or None if it is not one of ours."""
    match = _REPLY.match(message)
    if not match:
        return None
    code, feature, rule, detail = match.groups()
    if code == "FSVALIDATION" and feature is not None:
        return ValidationError(feature, rule, detail)
    if code == "FSNOTFOUND" and feature is not None:
        return NotFound(feature, rule, detail)
    if code == "FSCORRUPT" and feature is not None:
        return CorruptValue("-", feature, detail, rule)
    if code == "FSSCHEMA":
        return SchemaError(detail)
    if code == "FSCONFLICT":
        return RegistryConflict(detail)
    return LibraryError(f"{code} {detail}".strip())


_CLUSTER_MOVING = (redis_errors.ClusterError, redis_errors.TryAgainError, redis_errors.AskError,
                   redis_errors.RedisClusterException)


def translate(exc: BaseException) -> FeatureStoreError:
    """The FeatureStoreError for an exception raised by redis-py (chained to it)."""
    error: FeatureStoreError
    if isinstance(exc, redis_errors.AuthenticationError):
        error = StoreUnavailable(f"Redis refused the credentials (username/password): {exc}")
    elif isinstance(exc, (redis_errors.ConnectionError, redis_errors.TimeoutError, DeadlinePassed)):
        error = _tls_error(exc) or StoreUnavailable(f"Redis is unreachable: {exc}")
    elif isinstance(exc, _CLUSTER_MOVING):  # redirects and refusals of a cluster in motion: try again
        error = StoreUnavailable(f"the cluster is moving ({type(exc).__name__}: {exc}); the call may be sent again")
    elif isinstance(exc, redis_errors.OutOfMemoryError):
        error = StoreFull(f"Redis is out of memory (maxmemory): the write was refused, nothing stored: {exc}")
    else:
        # A refusal may come wrapped in one of our codes (FSARG from a read that caught the error);
        # the typed codes (FSVALIDATION ...) quote user data, so they are never taken for one.
        ours = from_reply(str(exc))
        if ours is None and str(exc).startswith("WRONGTYPE"):  # a plain read (HMGET) of a foreign key
            ours = LibraryError(f"a key holds another kind of value than fsredis keeps there: it is not an fsredis key ({exc})")
        if ours is None or type(ours) is LibraryError:
            refused = permission_denied(str(exc), isinstance(exc, redis_errors.NoPermissionError))
            ours = refused or ours
        error = ours or FeatureStoreError(f"Redis replied: {exc}")
    error.__cause__ = exc
    return error


# What a refused command or key looks like: at top level a NOPERM reply (redis-py drops the prefix;
# Redis 7.0 says "this user has no ...", 7.2+/Valkey "User <name> has no ..."); inside a function
# or script "ACL failure in script: <the same>" (7.2+/Valkey) or, on 7.0, a sentence that names
# neither the command nor the key.
_REFUSED_COMMAND = re.compile(r"no permissions to run the '([^']+)' command", re.I)
_REFUSED_KEY = re.compile(r"no permissions to access (?:one of the keys|a key)|can't access at least one of the keys", re.I)
_REFUSED_IN_SCRIPT = re.compile(r"can't run this command or subcommand|^(?:ERR )?ACL failure in script")
_IN_FUNCTION = re.compile(r" script: (\w+), on @")
_LOADING = ("function", "script")


def permission_denied(message: str, noperm: bool = False) -> PermissionDenied | None:
    """The PermissionDenied for an ACL refusal (``noperm``: the reply was a NOPERM error), or
    None if ``message`` is not one. Refusing ``FUNCTION``/``SCRIPT`` (loading the library) gives a
    LibraryPermissionDenied that says how to install it; anything else names what was refused."""
    command = _REFUSED_COMMAND.search(message)
    if command:
        permission = f"command '{command.group(1)}'"
    elif _REFUSED_KEY.search(message):
        permission = "a key"
    elif _REFUSED_IN_SCRIPT.search(message) or noperm:
        permission = "a command"
    else:
        return None
    function = _IN_FUNCTION.search(message)
    name = function.group(1) if function else None
    inside = f" inside the library function {name}" if name else ""
    reply = message[: function.start()] if function else message
    if command and command.group(1).split("|")[0].lower() in _LOADING:
        return LibraryPermissionDenied(
            f"the Redis user may not install the fsredis library ({reply}), and the server lacks it "
            "or has another version: run `fsredis load-functions` once as an admin user (fs-admin in "
            "deploy/users.acl); with the evalsha transport after every server restart too",
            permission, name,
        )
    hint = " (the server's ACL LOG names it)" if permission == "a command" else ""
    return PermissionDenied(
        f"the Redis user's ACL refused {permission}{hint}{inside}: {reply}. "
        "deploy/users.acl lists what each fsredis role needs",
        permission, name,
    )


def _tls_error(exc: BaseException) -> TLSError | None:
    """A TLSError when a connection error comes from the TLS handshake, else None."""
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(chain) < 10:
        chain.append(link)
        link = link.__cause__ or link.__context__
    cause = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    text = str(exc)
    seen = " ".join(str(e) for e in chain)
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in seen:
        detail = getattr(cause, "verify_message", None) or text
        return TLSError(
            f"TLS: the server's certificate could not be verified ({detail}): check ssl_ca_certs "
            "(the CA that signed it), and that the certificate names the host connected to "
            "(ssl_check_hostname=False skips only the name check)"
        )
    if "CERTIFICATE_REQUIRED" in seen:
        return TLSError(f"TLS: the server requires a client certificate: set ssl_certfile and ssl_keyfile ({text})")
    if isinstance(cause, ssl.SSLEOFError) or "EOF occurred in violation of protocol" in seen:
        # TLS 1.3: a server that wants a client certificate may hang up before its alert is read.
        return TLSError(
            "TLS: the server closed the connection; if it does so at every connect, it requires a "
            f"client certificate (set ssl_certfile and ssl_keyfile) or refuses the one given ({text})"
        )
    if any(alert in seen for alert in ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN")):
        return TLSError(f"TLS: the server refused the client certificate (ssl_certfile): {text}")
    if "WRONG_VERSION_NUMBER" in seen or "handshake operation timed out" in seen:
        # A plain port answers a TLS hello with nothing (Redis waits for a command) or with plain text.
        return TLSError(f"TLS: the server did not answer with TLS: is this its TLS port (tls-port)? ({text})")
    if cause is not None:
        return TLSError(f"TLS handshake failed: {text}")
    return None
