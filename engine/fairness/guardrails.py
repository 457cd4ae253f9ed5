"""The guardrail policy: attributes the models may never use (data/policy/guardrails.toml)."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.errors import InputError

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "data" / "policy" / "guardrails.toml"


@dataclass(frozen=True)
class Guardrails:
    forbidden: frozenset[str]
    audit_only: tuple[str, ...]
    uses: str
    refuses: str
    source: str


def policy_path() -> Path:
    return Path(os.environ.get("GUARDRAILS_FILE") or DEFAULT_POLICY)


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Guardrails:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read the guardrail policy: {exc}", file=path) from exc
    forbidden = data.get("forbidden_attributes")
    if not isinstance(forbidden, list) or not all(isinstance(x, str) for x in forbidden):
        raise InputError("forbidden_attributes must be a list of column names", file=path)
    return Guardrails(frozenset(forbidden), tuple(data.get("audit_only", [])), str(data.get("uses", "")).strip(),
                      str(data.get("refuses", "")).strip(), path)


def load_guardrails() -> Guardrails:
    """The policy in force (``GUARDRAILS_FILE`` or data/policy/guardrails.toml), re-read when it changes."""
    p = policy_path()
    return _load(str(p), p.stat().st_mtime if p.exists() else 0.0)
