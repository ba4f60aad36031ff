"""The daemon's log lines (``mfx serve --log-format text|json``) and a plugin's log records
keep what a message was logged with: its ``extra`` fields, in the order given, and its time."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import orjson

from mfx.logs import JsonFormatter, TextFormatter
from mfx.store.plugin_logs import PluginLogHandler, PluginLogStore


def record(extra: dict[str, object] | None = None) -> logging.LogRecord:
    made = logging.getLogger("mfx.test.formats").makeRecord(
        "mfx.test.formats", logging.INFO, __file__, 1, "plugin %s started", ("p1",), None, extra=extra)
    made.created = 1_800_000_000.25
    return made


def test_text_lines_end_with_the_extra_fields_in_the_order_given() -> None:
    line = TextFormatter().format(record({"plugin": "p1", "node": "vm", "attempt": 2}))
    assert line.endswith("mfx.test.formats: plugin p1 started plugin=p1 node=vm attempt=2")
    assert TextFormatter().format(record()).endswith("mfx.test.formats: plugin p1 started")


def test_json_lines_carry_the_extra_fields_beside_the_standard_ones() -> None:
    data = orjson.loads(JsonFormatter().format(record({"plugin": "p1", "attempt": 2})))
    assert data == {"time": "2027-01-15T08:00:00.250Z", "level": "info", "logger": "mfx.test.formats",
                    "message": "plugin p1 started", "plugin": "p1", "attempt": 2}
    assert list(orjson.loads(JsonFormatter().format(record()))) == ["time", "level", "logger", "message"]


def test_a_plugin_log_record_has_the_time_the_message_was_logged_and_its_other_fields(tmp_path: Path) -> None:
    store = PluginLogStore(tmp_path)
    PluginLogHandler(store).handle(record({"plugin": "p1", "attempt": 2}))
    [written] = store.read("p1")
    assert datetime.fromisoformat(written["time"].replace("Z", "+00:00")).timestamp() == 1_800_000_000.25
    assert written["fields"] == {"attempt": 2, "logger": "mfx.test.formats"}
    assert written["message"] == "plugin p1 started"
