"""Copies of nested dicts (parsed YAML or TOML) with one key set or removed, for bad-input tests."""
from __future__ import annotations

import copy
from typing import Any


def _parent(d: dict, keys: tuple) -> tuple[dict, dict]:
    d = copy.deepcopy(d)
    target = d
    for k in keys[:-1]:
        target = target[k]
    return d, target


def with_key(d: dict, value: Any, *keys) -> dict:
    """A copy of ``d`` with ``d[k1][k2]...[kn] = value``."""
    d, target = _parent(d, keys)
    target[keys[-1]] = value
    return d


def without_key(d: dict, *keys) -> dict:
    """A copy of ``d`` without ``d[k1][k2]...[kn]``."""
    d, target = _parent(d, keys)
    del target[keys[-1]]
    return d
