"""What a plugin's events say about a change is what changed: an upgrade only when the
version did, a config change as a config update, a restart for another spec change with the
fields named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mfx.server.services import default_services
from tests.daemon_harness import ThreadDaemon
from tests.event_fixtures import reasons, wait_events
from tests.plugin_fixtures import apply, condition, manifest, plugin_root, wait_for, wait_ready


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    root = plugin_root(tmp_path, "changing")
    with ThreadDaemon(home, services=default_services(), plugin_paths=[root]).running():
        yield home


def converged_on(generation: int) -> Any:
    def check(obj: dict[str, Any] | None) -> bool:
        return (obj is not None and obj["metadata"]["generation"] == generation
                and obj["status"].get("observedGeneration") == generation
                and condition(obj, "Ready").get("status") == "True" and not condition(obj, "Reconciling"))
    return check


CHANGES = ("Upgraded", "Replaced", "ConfigUpdated")


def changes_once(home: Path, count: int) -> list[tuple[str, str]]:
    """The change events of "changing", once there are ``count`` of them."""
    return reasons(wait_events(home, "changing", lambda es: len(reasons(es, *CHANGES)) >= count), *CHANGES)


def test_events_name_the_change_and_say_upgraded_only_for_a_new_version(home: Path) -> None:
    apply(home, manifest("changing", level=1))
    wait_ready(home, "changing")

    apply(home, manifest("changing", level=2))  # config only: applied in place
    wait_for(home, "changing", converged_on(2))
    assert changes_once(home, 1) == [("ConfigUpdated", "config applied without a restart")]

    with_env = manifest("changing", level=3)
    with_env["spec"]["env"] = {"MODE": "loud"}  # the environment needs a new instance
    apply(home, with_env)
    wait_for(home, "changing", converged_on(3))
    replaced = [m for m in changes_once(home, 2) if m[0] != "ConfigUpdated"]
    assert replaced == [("Replaced", "replaced the 1.0.0 instance: spec.env changed; config updated")]

    upgraded = manifest("changing", version="1.1.0", level=3)
    upgraded["spec"]["env"] = {"MODE": "loud"}
    apply(home, upgraded)
    wait_for(home, "changing", converged_on(4))
    changes = changes_once(home, 3)
    assert ("Upgraded", "upgraded from 1.0.0 to 1.1.0") in changes
    assert not any("upgraded from 1.0.0 to 1.0.0" in m for _, m in changes)
