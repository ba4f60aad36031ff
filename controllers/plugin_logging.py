"""Where the controller's words about a plugin go: the daemon's log and the plugin's own log."""

from __future__ import annotations

import logging

from mfx.runtimes.base import PluginLogRecord
from mfx.store.plugin_logs import PluginLogStore

log = logging.getLogger("mfx.controllers.plugin")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def say(name: str, level: str, message: str) -> None:
    """The controller's own message about a plugin: the daemon's log, and (through the
    daemon's ``PluginLogHandler``, which routes records carrying ``plugin``) the plugin's log."""
    log.log(_LEVELS.get(level, logging.INFO), "[%s] %s", name, message, extra={"plugin": name})


def append_plugin_log(store: PluginLogStore | None, record: PluginLogRecord) -> None:
    """A line the plugin wrote (or its runtime wrote about it), kept in its log."""
    if store is None:
        return
    stream = record.stream if record.stream in ("stdout", "stderr", "controller") else "stderr"
    fields = dict(record.fields)
    if stream != record.stream:
        fields["source"] = record.stream
    try:
        store.append(record.plugin, str(record.level), record.message, stream, fields or None)
    except Exception:
        log.debug("could not append a log record of %s", record.plugin, exc_info=True)
