"""Timestamps the CLI writes into annotations to ask a controller for something once."""

from __future__ import annotations

from datetime import UTC, datetime


def request_stamp() -> str:
    """Now, in RFC 3339 with microseconds: two requests made in the same second still differ."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
