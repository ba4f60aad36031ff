"""Waiting for the Events of one object, synchronised on the API's watch of Events (no sleeps).

``wait_events(home, name, predicate)`` returns the object's events (oldest first) once
``predicate(events)`` holds; an Event written again (its count raised) replaces its earlier
copy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mfx.api.kinds import EVENT
from tests.plugin_fixtures import client

Events = list[dict[str, Any]]


def _about(event: dict[str, Any], name: str) -> bool:
    return (event.get("involvedObject") or {}).get("name") == name


def wait_events(home: Path, name: str, predicate: Callable[[Events], bool]) -> Events:
    with client(home) as c:
        page = c.list(EVENT)
        by_name = {e["metadata"]["name"]: e for e in page.get("items", []) if _about(e, name)}
        if predicate(list(by_name.values())):
            return list(by_name.values())
        rv = str(page["metadata"]["resourceVersion"])
        for change in c.watch(EVENT, resource_version=rv):
            event = change.get("object") or {}
            if change.get("type") not in ("ADDED", "MODIFIED") or not _about(event, name):
                continue
            by_name[event["metadata"]["name"]] = event
            if predicate(list(by_name.values())):
                return list(by_name.values())
    raise AssertionError("the watch of events ended")  # pragma: no cover


def reasons(events: Events, *wanted: str) -> list[tuple[str, str]]:
    """(reason, message) of the events with one of the ``wanted`` reasons."""
    return [(e["reason"], e["message"]) for e in events if e.get("reason") in wanted]
