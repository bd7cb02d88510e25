"""Structured log lines (`event=... key=value`), one per line, so journald and grep both read them."""

from __future__ import annotations

import logging
import sys
from typing import Any

LOGGER = logging.getLogger("natgw-ha")


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def fmt(event: str, **fields: Any) -> str:
    return " ".join(
        [f"event={_quote(event)}", *(f"{k}={_quote(v)}" for k, v in fields.items() if v is not None)]
    )


def info(event: str, **fields: Any) -> None:
    LOGGER.info(fmt(event, **fields))


def warning(event: str, **fields: Any) -> None:
    LOGGER.warning(fmt(event, **fields))


def error(event: str, **fields: Any) -> None:
    LOGGER.error(fmt(event, **fields))


def setup(level: int = logging.INFO) -> None:
    """Log to stderr with the level as a field; journald adds the timestamp and unit."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("level=%(levelname)s %(message)s"))
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level)
