"""The rules of each kind that a schema cannot say: a plugin that depends on itself, an empty URL, ...

The checks look only at values of the right type, so they run even when the schema check
failed, and every problem of an object is reported at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mfx.api.config_checks import config_problems
from mfx.api.field_formats import duration_problem
from mfx.api.field_paths import join_index, join_key
from mfx.api.field_problems import FieldProblems
from mfx.api.objects import Obj, name_of
from mfx.api.units import parse_duration

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def _get(spec: dict[str, Any], steps: tuple[str, ...]) -> Any:
    value: Any = spec
    for part in steps:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


_BACKOFF_INITIAL = ("restartPolicy", "backoff", "initial")
_BACKOFF_MAX = ("restartPolicy", "backoff", "max")
_ALLOWED_PATHS = ("security", "allowedPaths")
_SELECTOR_EXPRESSIONS = ("nodeSelector", "matchExpressions")


def _check_plugin(obj: Obj, spec: dict[str, Any], errors: FieldProblems) -> None:
    name = name_of(obj)
    dependencies = spec.get("dependencies")
    if isinstance(dependencies, list):
        for i, dep in enumerate(dependencies):
            if isinstance(dep, dict) and name and dep.get("name") == name:
                errors.add(join_index("spec.dependencies", i) + ".name",
                           f'plugin "{name}" lists itself as a dependency: remove this entry')

    initial = _seconds(_get(spec, _BACKOFF_INITIAL))
    longest = _seconds(_get(spec, _BACKOFF_MAX))
    if initial is not None and longest is not None and longest < initial:
        errors.add("spec.restartPolicy.backoff.max",
                   f"must not be shorter than backoff.initial ({_get(spec, _BACKOFF_INITIAL)})")

    env = spec.get("env")
    if isinstance(env, dict):
        for key in env:
            if not ENV_NAME.fullmatch(key):
                errors.add(join_key("spec.env", key), f'"{key}" is not an environment variable name '
                           "(letters, digits and _, not starting with a digit)")

    paths = _get(spec, _ALLOWED_PATHS)
    if isinstance(paths, list):
        for i, entry in enumerate(paths):
            if isinstance(entry, dict) and isinstance(entry.get("path"), str) and not entry["path"].startswith("/"):
                errors.add(join_index("spec.security.allowedPaths", i) + ".path",
                           f'"{entry["path"]}" must be an absolute path (e.g. /music)')

    for error in config_problems(spec.get("configSchema"), spec.get("config")):
        errors.add(error.path, error.message)
    _check_node_selector(spec, errors)


def _check_node_selector(spec: dict[str, Any], errors: FieldProblems) -> None:
    """The rules of a Kubernetes LabelSelector requirement the schema cannot say: In and
    NotIn need values (an empty set would select nothing, or every node, silently), Exists
    and DoesNotExist take none."""
    expressions = _get(spec, _SELECTOR_EXPRESSIONS)
    if not isinstance(expressions, list):
        return
    for i, entry in enumerate(expressions):
        if not isinstance(entry, dict):
            continue
        operator, values = entry.get("operator"), entry.get("values")
        path = join_index("spec.nodeSelector.matchExpressions", i) + ".values"
        if operator in ("In", "NotIn") and isinstance(values, list | None) and not values:
            errors.add(path, f"must list at least one value when operator is {operator} "
                             '(e.g. values: ["kitchen"]); to test only that the key is there use Exists')
        elif operator in ("Exists", "DoesNotExist") and isinstance(values, list) and values:
            errors.add(path, f"must be empty when operator is {operator}: it tests the key alone; "
                             "to match values use In or NotIn")


def _seconds(value: Any) -> float | None:
    """A valid duration in seconds, or None (an invalid one is reported by its format)."""
    if not isinstance(value, str) or duration_problem(value) is not None:
        return None
    return parse_duration(value)


def _check_sink(obj: Obj, spec: dict[str, Any], errors: FieldProblems) -> None:
    device = spec.get("device")
    if isinstance(device, str) and not device.strip():
        errors.add("spec.device", 'must not be empty (e.g. "default" or "hw:0,0")')
    _check_node_selector(spec, errors)


def _check_gitsource(obj: Obj, spec: dict[str, Any], errors: FieldProblems) -> None:
    url = spec.get("url")
    if isinstance(url, str) and not url.strip():
        errors.add("spec.url", "must not be empty: give a repository URL or a local path")
    ref = spec.get("ref")
    if isinstance(ref, dict):
        given = [k for k in ("branch", "tag", "commit") if ref.get(k) not in (None, "")]
        if len(given) != 1:
            got = "none" if not given else " and ".join(given)
            errors.add("spec.ref", f"set exactly one of branch, tag or commit (got {got})")
    depends = spec.get("dependsOn")
    name = name_of(obj)
    if isinstance(depends, list):
        for i, entry in enumerate(depends):
            if isinstance(entry, dict) and name and entry.get("name") == name:
                errors.add(join_index("spec.dependsOn", i) + ".name",
                           f'GitSource "{name}" depends on itself: remove this entry')


KIND_CHECKS: dict[str, Callable[[Obj, dict[str, Any], FieldProblems], None]] = {
    "PluginManifest": _check_plugin,
    "AudioSink": _check_sink,
    "GitSource": _check_gitsource,
    "Node": lambda obj, spec, errors: None,
    "Lease": lambda obj, spec, errors: None,
}
