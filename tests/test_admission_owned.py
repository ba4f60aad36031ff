"""Admission of an object the caller hands over (the bulk apply's): the same checks and
defaults as ``admit``, in place."""

from __future__ import annotations

import pytest

from mfx.api.objects import Obj
from mfx.errors import FieldError, ValidationError
from mfx.server.admission import Admission


def _manifest() -> Obj:
    return {"apiVersion": "mfx.musicfox.io/v1alpha1", "kind": "PluginManifest", "metadata": {"name": "p"},
            "spec": {"version": "1.0.0", "type": "rpc", "entryPoint": "python -m p"}}


def test_it_defaults_the_object_itself_as_admit_defaults_a_copy() -> None:
    admission = Admission()
    obj = _manifest()
    assert admission.admit_owned(obj, values_checked=True) is obj
    assert obj == admission.admit(_manifest())
    assert obj["spec"]["healthCheck"]


def test_it_refuses_what_admit_refuses() -> None:
    obj = _manifest()
    obj["spec"]["timeoutSecondz"] = 3
    with pytest.raises(ValidationError) as refused:
        Admission().admit_owned(obj, values_checked=True)
    assert [e.path for e in refused.value.errors] == ["spec.timeoutSecondz"]


def test_values_json_cannot_store_are_checked_unless_the_caller_did() -> None:
    obj = _manifest()
    obj["metadata"]["labels"] = {"big": 2**70}
    with pytest.raises(ValidationError) as refused:
        Admission().admit_owned(obj)
    assert "metadata.labels.big" in [e.path for e in refused.value.errors]


class _Policy(Admission):
    def admit(self, obj: Obj) -> Obj:
        raise ValidationError([FieldError(path="metadata.name", message="not here")])


def test_an_admission_with_a_policy_of_its_own_is_asked_through_it() -> None:
    with pytest.raises(ValidationError, match="not here"):
        _Policy().admit_owned(_manifest(), values_checked=True)
