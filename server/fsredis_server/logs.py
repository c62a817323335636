"""Structured logs: one JSON object per line on stdout, with the request id bound per request."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(level: str = "info") -> None:
    """JSON lines with ISO UTC timestamps; ``structlog.contextvars`` fields (the request id) merged in."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )


def logger(**bound: Any) -> Any:
    """A logger that takes its configuration on first use (so it may be made at import time)."""
    return structlog.get_logger("fsredis.server", **bound)
