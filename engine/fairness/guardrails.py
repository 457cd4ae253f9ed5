"""The guardrail policy: attributes the models may never use (data/policy/guardrails.toml)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from engine.config import read_toml, validate

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "data" / "policy" / "guardrails.toml"


@dataclass(frozen=True)
class Guardrails:
    forbidden: frozenset[str]
    audit_only: tuple[str, ...]
    uses: str
    refuses: str
    source: str


class _GuardrailsFile(BaseModel):
    """data/policy/guardrails.toml as written."""

    model_config = ConfigDict(extra="forbid")

    forbidden_attributes: list[str]
    audit_only: list[str] = []
    uses: str = ""
    refuses: str = ""

    @field_validator("forbidden_attributes", "audit_only", mode="before")
    @classmethod
    def _columns(cls, v: Any) -> list[str]:
        if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
            raise ValueError("must be a list of column names")
        return [x.strip() for x in v]


def policy_path() -> Path:
    return Path(os.environ.get("GUARDRAILS_FILE") or DEFAULT_POLICY)


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Guardrails:
    f = validate(_GuardrailsFile, read_toml(path), path)
    return Guardrails(frozenset(f.forbidden_attributes), tuple(f.audit_only), f.uses.strip(), f.refuses.strip(), path)


def load_guardrails() -> Guardrails:
    """The policy in force (``GUARDRAILS_FILE`` or data/policy/guardrails.toml), re-read when it changes."""
    p = policy_path()
    return _load(str(p), p.stat().st_mtime if p.exists() else 0.0)
