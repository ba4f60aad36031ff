"""``config_problems`` without importing jsonschema until a manifest has a ``configSchema``.

jsonschema and its reference resolver take about a fifth of the CLI's start-up, and most
manifests never need them: every ``mfx apply`` would pay for them before its first request.
"""

from __future__ import annotations

from typing import Any

from mfx.errors import FieldError


def config_problems(config_schema: Any, config: Any) -> list[FieldError]:
    """See ``mfx.api.config_schema.config_problems``."""
    if not isinstance(config_schema, dict):
        return []
    from mfx.api.config_schema import config_problems as problems

    return problems(config_schema, config)
