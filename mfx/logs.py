"""Daemon logging: human text or one JSON object per line (``--log-format json``)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def record_extras(record: logging.LogRecord) -> dict[str, Any]:
    """What the record was given with ``extra=``, in the order given (most records: nothing,
    found by one set difference instead of a loop over every attribute)."""
    attributes = vars(record)
    extra = attributes.keys() - _STANDARD
    if not extra:
        return {}
    return {k: v for k, v in attributes.items() if k in extra and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(record_extras(record))
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = record_extras(record)
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return text


def configure_logging(fmt: str = "text", level: str = "info") -> None:
    """Set up the root logger of a process that is the daemon (``mfx serve``) and nothing else.

    The root logger belongs to the process, not to one daemon, so only the command that owns
    the process calls this; a daemon run in-process leaves its embedder's logging alone."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Neither format shows where a record was logged from, nor which process or thread logged
    # it: the logging module is told not to find them (a walk up the stack for every record,
    # on the event loop). The logging documentation's "Optimization" section names these.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logMultiprocessing = False
    logging.logProcesses = False
    for noisy in ("uvicorn", "uvicorn.error", "httpx", "httpcore", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
