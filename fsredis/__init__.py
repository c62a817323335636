"""fsredis: a Redis-native feature store.

Features are written and read through Lua that runs inside Redis, so every write is atomic and
versioned with its lineage, each feature expires on its own TTL, and any version can be rolled
back — for the Python clients and for operators at ``redis-cli FCALL`` alike.
"""

__version__ = "0.1.0"

from fsredis.client import AsyncFeatureStore, FeatureStore  # noqa: E402
from fsredis.config import FeatureStoreConfig  # noqa: E402
from fsredis.errors import (  # noqa: E402
    BatchWriteError,
    FeatureStoreError,
    LibraryError,
    MissingDependency,
    NotFound,
    SchemaError,
    StoreFull,
    StoreUnavailable,
    ValidationError,
)

__all__ = [
    "AsyncFeatureStore",
    "BatchWriteError",
    "FeatureStore",
    "FeatureStoreConfig",
    "FeatureStoreError",
    "LibraryError",
    "MissingDependency",
    "NotFound",
    "SchemaError",
    "StoreFull",
    "StoreUnavailable",
    "ValidationError",
    "__version__",
]
