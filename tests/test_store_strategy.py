"""The object lifecycle rules decide every write from the sent and the stored object alone."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from mfx.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from mfx.store import strategy
from mfx.store.strategy import WriteAction

PM = "PluginManifest"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def sent(name: str = "a", **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": PM, "metadata": {"name": name}}
    obj.update(fields)
    return obj


def stored(rv: int = 7, **fields: Any) -> dict[str, Any]:
    """An object as a backend holds it after a create and one write."""
    write = strategy.create(PM, "a", sent(**fields), None)
    strategy.stamp_resource_version(write.obj, rv)
    return write.obj


def test_create_stamps_the_server_metadata_and_drops_what_a_client_may_not_set() -> None:
    obj = sent(spec={"x": 1})
    obj["metadata"].update(resourceVersion="99", deletionTimestamp="2020-01-01T00:00:00Z", finalizers=[])
    write = strategy.create(PM, "a", obj, None)
    assert write.action is WriteAction.ADD
    metadata = write.obj["metadata"]
    assert metadata["generation"] == 1 and RFC3339.match(metadata["creationTimestamp"])
    assert metadata["uid"] and "resourceVersion" not in metadata
    assert "deletionTimestamp" not in metadata and "finalizers" not in metadata
    assert "uid" not in obj["metadata"], "the sent object is not changed"


def test_create_of_an_existing_object_is_refused() -> None:
    with pytest.raises(AlreadyExistsError, match='pluginmanifests "a" already exists'):
        strategy.create(PM, "a", sent(), stored())


def test_update_keeps_server_metadata_and_status_and_bumps_generation_on_spec_changes_only() -> None:
    current = stored(spec={"x": 1}, status={"phase": "Ready"})
    labelled = sent(spec={"x": 1}, status={"phase": "Gone"})
    labelled["metadata"].update(labels={"l": "v"}, uid="forged", generation=40)
    write = strategy.update(PM, "a", labelled, current)
    assert write.action is WriteAction.MODIFY
    assert write.obj["status"] == {"phase": "Ready"}
    assert write.obj["metadata"]["uid"] == current["metadata"]["uid"]
    assert write.obj["metadata"]["generation"] == 1
    respecced = strategy.update(PM, "a", sent(spec={"x": 2}), current)
    assert respecced.obj["metadata"]["generation"] == 2


def test_an_update_that_changes_nothing_writes_nothing() -> None:
    current = stored(spec={"x": 1})
    write = strategy.update(PM, "a", copy.deepcopy(current), current)
    assert write.action is WriteAction.NOTHING and write.obj is current


def test_a_write_with_a_stale_resource_version_conflicts() -> None:
    obj = sent(spec={"x": 2})
    obj["metadata"]["resourceVersion"] = "6"
    with pytest.raises(ConflictError, match="the object has been modified"):
        strategy.update(PM, "a", obj, stored(rv=7))
    obj["metadata"]["resourceVersion"] = "seven"
    with pytest.raises(BadRequestError, match="metadata.resourceVersion"):
        strategy.update(PM, "a", obj, stored(rv=7))
    with pytest.raises(NotFoundError, match='pluginmanifests "a" not found'):
        strategy.update_status(PM, "a", sent(), None)


def test_an_update_from_a_base_is_rebased_again_when_its_store_retries_it() -> None:
    base = stored(7, spec={"x": 1})
    obj = copy.deepcopy(base)
    obj["spec"] = {"x": 2}

    def status_written(rv: int, count: int) -> dict[str, Any]:
        moved = copy.deepcopy(base)
        moved["status"] = {"restartCount": count}
        strategy.stamp_resource_version(moved, rv)
        return moved

    # A store retries a write (etcd's transaction lost a race) with the same object, which
    # the first try stamped: each try meets a newer status write, and each is rebased.
    first = strategy.update(PM, "a", obj, status_written(8, 1), owned=True, base=base)
    second = strategy.update(PM, "a", first.obj, status_written(9, 2), owned=True, base=base)
    assert second.action is WriteAction.MODIFY
    assert second.obj["spec"] == {"x": 2} and second.obj["status"] == {"restartCount": 2}
    relabelled = status_written(10, 2)
    relabelled["metadata"]["labels"] = {"by": "someone else"}
    with pytest.raises(ConflictError):
        strategy.update(PM, "a", second.obj, relabelled, owned=True, base=base)


def test_a_status_update_changes_only_the_status() -> None:
    current = stored(spec={"x": 1})
    write = strategy.update_status(PM, "a", sent(spec={"x": 9}, status={"phase": "Ready"}), current)
    assert write.action is WriteAction.MODIFY
    assert write.obj["spec"] == {"x": 1} and write.obj["status"] == {"phase": "Ready"}
    assert write.obj["metadata"] is not current["metadata"], "the stamp must not touch the stored object"
    unchanged = strategy.update_status(PM, "a", sent(), current)
    assert unchanged.action is WriteAction.NOTHING


def test_delete_with_finalizers_marks_once_and_removing_the_last_finalizer_removes() -> None:
    current = stored()
    current["metadata"]["finalizers"] = ["f"]
    marked = strategy.delete(PM, "a", None, current)
    assert marked.action is WriteAction.MODIFY
    assert RFC3339.match(marked.obj["metadata"]["deletionTimestamp"])
    assert marked.obj["metadata"]["generation"] == 2
    assert strategy.delete(PM, "a", None, marked.obj).action is WriteAction.NOTHING
    with pytest.raises(ValidationError, match="no new finalizers"):
        adding = sent()
        adding["metadata"]["finalizers"] = ["f", "g"]
        strategy.update(PM, "a", adding, marked.obj)
    assert strategy.update(PM, "a", sent(), marked.obj).action is WriteAction.REMOVE


def test_delete_without_finalizers_removes_and_checks_its_precondition() -> None:
    assert strategy.delete(PM, "a", None, stored()).action is WriteAction.REMOVE
    with pytest.raises(ConflictError, match=r"precondition \(3\) does not match the ResourceVersion in record \(7\)"):
        strategy.delete(PM, "a", 3, stored(rv=7))
