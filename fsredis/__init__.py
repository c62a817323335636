"""fsredis: a Redis-native feature store.

Features are written and read through Lua that runs inside Redis, so every write is atomic and
versioned with its lineage, each feature expires on its own TTL, and any version can be rolled
back — for the Python clients and for operators at ``redis-cli FCALL`` alike.
"""

__version__ = "0.2.0"

from fsredis.client import AsyncFeatureStore, FeatureStore  # noqa: E402
from fsredis.commands import WriteResult  # noqa: E402
from fsredis.compute import Transform  # noqa: E402
from fsredis.config import FeatureStoreConfig  # noqa: E402
from fsredis.errors import (  # noqa: E402
    BatchReadError,
    BatchWriteError,
    CorruptValue,
    FeatureStoreError,
    IngestError,
    LibraryError,
    MissingDependency,
    NotFound,
    NotReplicated,
    PermissionDenied,
    RegistryConflict,
    SchemaError,
    StoreClosed,
    StoreFull,
    StoreUnavailable,
    TLSError,
    TransformError,
    ValidationError,
)
from fsredis.ingest import IngestProgress, IngestReport  # noqa: E402
from fsredis.migrate import MigrationReport  # noqa: E402
from fsredis.schema import FeatureDefinition, Registry  # noqa: E402

__all__ = [
    "AsyncFeatureStore",
    "BatchReadError",
    "BatchWriteError",
    "CorruptValue",
    "FeatureDefinition",
    "FeatureStore",
    "FeatureStoreConfig",
    "FeatureStoreError",
    "IngestError",
    "IngestProgress",
    "IngestReport",
    "LibraryError",
    "MigrationReport",
    "MissingDependency",
    "NotFound",
    "NotReplicated",
    "PermissionDenied",
    "Registry",
    "RegistryConflict",
    "SchemaError",
    "StoreClosed",
    "StoreFull",
    "StoreUnavailable",
    "TLSError",
    "Transform",
    "TransformError",
    "ValidationError",
    "WriteResult",
    "__version__",
]
