"""Routes a daemon's log records about a plugin into that daemon's plugin logs, and only its.

The controllers log their messages about a plugin with ``extra={"plugin": name}`` on their own
module loggers; a ``PluginLogHandler`` copies such records into the plugin's log. Loggers are
process-wide, so a handler on them alone would hand a record to every daemon in the process
(two daemons run in one test process, or an embedder runs one beside its own code). Each
daemon therefore marks its own tasks with a context variable, and its handler accepts only
records logged in a context that carries its mark.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from mfx.store.plugin_logs import PluginLogHandler, PluginLogStore

# The loggers whose records may be about a plugin: every mfx logger (the controllers' among them).
PLUGIN_RECORD_LOGGERS: tuple[str, ...] = ("mfx",)


class DaemonMark:
    """Identifies one daemon's tasks: the value its context variable holds while it runs."""


# A context variable, not a global: each task (and each thread it starts through anyio)
# sees the mark of the daemon that started it, and code outside every daemon sees none.
_running_daemon: ContextVar[DaemonMark | None] = ContextVar("mfx_running_daemon", default=None)


class _OwnRecords(logging.Filter):
    """Passes the records logged inside the daemon that ``mark`` identifies."""

    def __init__(self, mark: DaemonMark) -> None:
        super().__init__()
        self.mark = mark

    def filter(self, record: logging.LogRecord) -> bool:
        return _running_daemon.get() is self.mark


@contextmanager
def plugin_records_routed_to(store: PluginLogStore,
                             loggers: Sequence[str] = PLUGIN_RECORD_LOGGERS) -> Iterator[DaemonMark]:
    """While entered, records about a plugin logged by this context (and the tasks it starts)
    on ``loggers`` land in ``store``; on exit the handler is gone from every logger."""
    mark = DaemonMark()
    handler = PluginLogHandler(store)
    handler.addFilter(_OwnRecords(mark))
    token = _running_daemon.set(mark)
    attached = [logging.getLogger(name) for name in loggers]
    for logger in attached:
        logger.addHandler(handler)
    try:
        yield mark
    finally:
        for logger in attached:
            logger.removeHandler(handler)
        _running_daemon.reset(token)
