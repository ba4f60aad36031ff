"""Kubernetes' rules for names, label and annotation keys, and label values."""

from __future__ import annotations

import re
from typing import Any

# Anchored with \Z: "$" would also match before a trailing newline, and "name\n" is no name.
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")


def dns1123_subdomain_problem(name: str) -> str | None:
    """Why ``name`` is not a valid object name, or None (Kubernetes' DNS-1123 subdomain)."""
    if not name:
        return "must not be empty"
    if len(name) > 253:
        return f"must be at most 253 characters (it has {len(name)})"
    if not DNS1123_SUBDOMAIN.fullmatch(name):
        return (f'"{name}" is not a valid name: use lowercase letters, digits, "-" and ".", '
                "starting and ending with a letter or digit (e.g. codec-flac)")
    return None


def qualified_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label or annotation key (``[prefix/]name``), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return f'"{key}": the prefix before "/" must not be empty'
    if prefix:
        if len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix):
            return f'"{key}": the prefix "{prefix}" must be a DNS subdomain (e.g. example.com)'
    if not name:
        return f'"{key}": the name part must not be empty'
    if len(name) > 63:
        return f'"{key}": the name part must be at most 63 characters'
    if not QUALIFIED_NAME.fullmatch(name):
        return (f'"{key}" is not a valid key: use letters, digits, "-", "_" and ".", starting and '
                'ending with a letter or digit, optionally prefixed by a DNS subdomain and "/"')
    return None


def label_value_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid label value, or None (the empty value is valid)."""
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > 63:
        return f"label value must be at most 63 characters (it has {len(value)})"
    if not LABEL_VALUE.fullmatch(value):
        return (f'"{value}" is not a valid label value: use letters, digits, "-", "_" and ".", '
                "starting and ending with a letter or digit, or leave it empty")
    return None
