"""``python -m engine drill|canary|incident`` (issue 19), registered by engine/pilotcli.py's add_pilot_parsers."""
from __future__ import annotations

from typing import Any, Callable


def add_rollout_parsers(sub: Any, add: Callable[..., Any]) -> None:
    """Register drill, canary and incident; ``add(name, fn, text)`` gives each the pilot commands' common options."""
