"""Events through the API: cluster-scoped objects' events, shown in the "default" namespace as
in Kubernetes; what a reported or patched Event must hold; the columns ``kubectl get events``
shows."""

from __future__ import annotations

from typing import Any

from mfx.api.json_values import json_type_phrase
from mfx.api.kinds import EVENT, KindInfo
from mfx.api.objects import Obj, parse_time
from mfx.errors import ErrorList, FieldError
from mfx.store.base import EventRecord

# Events about cluster-scoped objects live in this namespace, as in Kubernetes.
EVENT_NAMESPACE = "default"

EVENT_COLUMNS: list[dict[str, Any]] = [
    {"name": "Last Seen", "type": "date", "jsonPath": ".lastTimestamp", "description": "When it last happened."},
    {"name": "Type", "type": "string", "jsonPath": ".type", "description": "Normal or Warning."},
    {"name": "Reason", "type": "string", "jsonPath": ".reason", "description": "Why it happened."},
    {"name": "Object", "type": "string", "jsonPath": ".involvedObject.ref",
     "description": "The object it is about (kind/name)."},
    {"name": "Count", "type": "integer", "jsonPath": ".count", "description": "How many times.", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": ".message", "description": "What happened."},
]


_EVENT_STRINGS = ("message", "reportingComponent", "reportingInstance", "action")
_EVENT_TIMES = ("firstTimestamp", "lastTimestamp", "eventTime")


def event_problems(event: Obj) -> list[FieldError]:
    """What in a written Event has a type its readers (the recorder, the tables) cannot use."""
    problems: list[FieldError] = []

    def problem(path: str, message: str) -> None:
        problems.append(FieldError(path=path, message=message))

    involved = event.get("involvedObject")
    if not isinstance(involved, dict):
        problem("involvedObject", f"expected an object naming the object (kind, name), got {json_type_phrase(involved)}")
    else:
        for key, value in involved.items():
            if not isinstance(value, str):
                problem(f"involvedObject.{key}", f"expected a string, got {json_type_phrase(value)}")
        for key in ("kind", "name"):
            if not involved.get(key):
                problem(f"involvedObject.{key}", "required: the kind and name of the object the event is about")
    if not isinstance(event.get("reason"), str) or not event["reason"]:
        problem("reason", "required: a short CamelCase reason, e.g. Started")
    if event.get("type", "Normal") not in ("Normal", "Warning"):
        problem("type", f'must be "Normal" or "Warning", not {event.get("type")!r}')
    count = event.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        problem("count", f"expected a whole number of 1 or more, got {count!r}")
    for key in _EVENT_STRINGS:
        if not isinstance(event.get(key, ""), str):
            problem(key, f"expected a string, got {json_type_phrase(event[key])}")
    for key in _EVENT_TIMES:
        value = event.get(key)
        if value is not None and not is_rfc3339(value):
            problem(key, f"expected an RFC 3339 time such as 2026-01-02T15:04:05Z, got {value!r}")
    source = event.get("source", {})
    if not isinstance(source, dict) or not all(isinstance(v, str) for v in source.values()):
        problem("source", "expected an object of strings (component, host)")
    return problems


def is_rfc3339(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_time(value)
    except ValueError:
        return False
    return True


def present(kind: KindInfo, obj: Obj) -> Obj:
    """An object as the API shows it: events carry their namespace."""
    if kind is not EVENT or obj.get("metadata", {}).get("namespace"):
        return obj
    return {**obj, "metadata": {**obj.get("metadata", {}), "namespace": EVENT_NAMESPACE}}


def with_event_cells(event: Obj) -> Obj:
    involved = event.get("involvedObject") or {}
    ref = f'{str(involved.get("kind", "")).lower()}/{involved.get("name", "")}'
    return {**event, "involvedObject": {**involved, "ref": ref},
            "lastTimestamp": event.get("lastTimestamp") or event.get("metadata", {}).get("creationTimestamp")}


def event_record(body: dict[str, Any]) -> EventRecord:
    """The event a client reports (POST), for the store's recorder; 422 if it names no object."""
    involved = body.get("involvedObject")
    involved = involved if isinstance(involved, dict) else {}
    errors = ErrorList()
    for key in ("kind", "name"):
        if not isinstance(involved.get(key), str) or not involved[key]:
            errors.add(f"involvedObject.{key}", "required: the kind and name of the object the event is about")
    event_type = body.get("type") or "Normal"
    if event_type not in ("Normal", "Warning"):
        errors.add("type", f'must be "Normal" or "Warning", not {event_type!r}')
    if not isinstance(body.get("reason"), str) or not body["reason"]:
        errors.add("reason", "required: a short CamelCase reason, e.g. Started")
    errors.raise_if_any(kind="Event")
    source = body.get("source")
    source = source if isinstance(source, dict) else {}
    return EventRecord(
        involved_kind=involved["kind"], involved_name=involved["name"],
        involved_uid=str(involved.get("uid") or ""), involved_api_version=str(involved.get("apiVersion") or ""),
        type=event_type, reason=body["reason"], message=str(body.get("message") or ""),
        source=str(source.get("component") or body.get("reportingComponent") or "mfx"),
    )
