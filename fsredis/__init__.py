"""fsredis: a Redis-native feature store.

Features are written and read through Lua that runs inside Redis, so every write is atomic and
versioned with its lineage, each feature expires on its own TTL, and any version can be rolled
back — for the Python clients and for operators at ``redis-cli FCALL`` alike.
"""

__version__ = "0.1.0"

from fsredis.client import AsyncFeatureStore, FeatureStore  # noqa: E402
from fsredis.compute import Transform  # noqa: E402
from fsredis.config import FeatureStoreConfig  # noqa: E402
from fsredis.errors import (  # noqa: E402
    BatchReadError,
    BatchWriteError,
    CorruptValue,
    FeatureStoreError,
    LibraryError,
    MissingDependency,
    NotFound,
    PermissionDenied,
    RegistryConflict,
    SchemaError,
    StoreFull,
    StoreUnavailable,
    TLSError,
    TransformError,
    ValidationError,
)
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
    "LibraryError",
    "MissingDependency",
    "NotFound",
    "PermissionDenied",
    "Registry",
    "RegistryConflict",
    "SchemaError",
    "StoreFull",
    "StoreUnavailable",
    "TLSError",
    "Transform",
    "TransformError",
    "ValidationError",
    "__version__",
]
