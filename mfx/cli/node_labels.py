"""``mfx serve --node-name/--node-labels``: checked before the daemon starts, as the kubelet does."""

from __future__ import annotations

import click

from mfx.api.names import dns1123_subdomain_problem, label_value_problem, qualified_key_problem


def parse_node_labels(text: str) -> dict[str, str]:
    """``room=kitchen,floor=ground`` as a dict; a bad entry is a usage error naming it."""
    labels: dict[str, str] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        key, equals, value = entry.partition("=")
        if not equals:
            raise click.BadParameter(f'"{entry}" is not KEY=VALUE (e.g. room=kitchen)', param_hint="--node-labels")
        problem = qualified_key_problem(key.strip()) or label_value_problem(value.strip())
        if problem is not None:
            raise click.BadParameter(f"{entry}: {problem}", param_hint="--node-labels")
        labels[key.strip()] = value.strip()
    return labels


def check_node_name(name: str | None) -> str | None:
    if name is not None:
        problem = dns1123_subdomain_problem(name)
        if problem is not None:
            raise click.BadParameter(f"{problem} (e.g. kitchen or player-1)", param_hint="--node-name")
    return name
