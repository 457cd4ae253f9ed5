"""Roles and permissions (data/roles.toml), enforced in the engine, and masking of patient data."""
from __future__ import annotations

import re
import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from pydantic import BaseModel, Field, ValidationInfo, field_validator

import engine.config as config
from engine.errors import InputError

DEFAULT_ROLES = Path(__file__).resolve().parents[2] / "data" / "roles.toml"
# The roles the workflow's separation of duties needs (docs/architecture.md, governance).
REQUIRED_ROLES = ("coordinator", "leadership", "governance", "viewer")


@dataclass(frozen=True)
class User:
    """A signed-in person. Any identity provider (local file, OIDC) produces this."""

    name: str
    role: str
    display_name: str = ""


@dataclass(frozen=True)
class Role:
    name: str
    label: str
    clinical: bool
    description: str
    can: frozenset[str]


@dataclass(frozen=True)
class Roles:
    roles: dict[str, Role]
    actions: dict[str, str]
    mask: str
    masked_columns: frozenset[str]
    masked_prefixes: tuple[str, ...]
    free_text_columns: frozenset[str]
    source: str

    def names(self) -> list[str]:
        return list(self.roles)

    def can(self, role: str, action: str) -> bool:
        r = self.roles.get(role)
        return bool(r and action in r.can)

    def who_can(self, action: str) -> list[str]:
        return [n for n, r in self.roles.items() if action in r.can]

    def matrix(self) -> pd.DataFrame:
        """Actions x roles, True where allowed: the permissions table for documentation and pages."""
        return pd.DataFrame({n: [a in r.can for a in self.actions] for n, r in self.roles.items()},
                            index=pd.Index(list(self.actions), name="action"))

    def is_masked(self, column: str) -> bool:
        c = column.lower()
        return c in self.masked_columns or any(c.startswith(p) for p in self.masked_prefixes)


def roles_path() -> Path:
    return Path(os.environ.get("OR_ROLES_FILE") or DEFAULT_ROLES)


class _RoleModel(BaseModel):
    """``[roles.<name>]``; keys other than these are ignored."""

    label: str | None = None
    clinical: bool = False
    description: str = ""
    can: list[str] = Field(default=None, validate_default=True)

    @field_validator("label", "description", mode="before")
    @classmethod
    def _text(cls, v: Any) -> str:
        return str(v)

    @field_validator("clinical", mode="before")
    @classmethod
    def _clinical(cls, v: Any) -> bool:
        if not isinstance(v, bool):
            raise ValueError("must be true or false")
        return v

    @field_validator("can", mode="before")
    @classmethod
    def _can(cls, v: Any) -> list[str]:
        if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
            raise ValueError("must be a list of action names")
        return v


class _MaskingModel(BaseModel):
    """``[masking]``: the columns (and column prefixes) a non-clinical role sees masked."""

    mask: str = "•••"
    identifier_columns: list[str] = []
    attribute_columns: list[str] = []
    free_text_columns: list[str] = []
    prefixes: list[str] = []

    @field_validator("mask", mode="before")
    @classmethod
    def _mask(cls, v: Any) -> str:
        return str(v)


class _RolesFile(BaseModel):
    """data/roles.toml: every role names only listed actions; the four working roles exist."""

    actions: dict[str, str] = Field(default=None, validate_default=True)
    roles: dict[str, _RoleModel] = {}
    masking: _MaskingModel = _MaskingModel()

    @field_validator("actions", mode="before")
    @classmethod
    def _actions(cls, v: Any) -> dict[str, str]:
        if not isinstance(v, dict) or not v:
            raise ValueError("must be a table of action = description")
        return {k: str(d) for k, d in v.items()}

    @field_validator("roles", "masking", mode="before")
    @classmethod
    def _empty(cls, v: Any) -> Any:
        return v or {}

    @field_validator("roles")
    @classmethod
    def _known(cls, roles: dict[str, _RoleModel], info: ValidationInfo) -> dict[str, _RoleModel]:
        actions = info.data.get("actions") or {}
        problems: list[tuple[tuple[str, ...], str]] = []
        for name, r in roles.items():
            unknown = sorted(set(r.can) - set(actions))
            if unknown and actions:
                problems.append(((name, "can"), f"unknown action(s) {unknown}; known: {sorted(actions)}"))
        problems += [((req,), "this role is required") for req in REQUIRED_ROLES if req not in roles]
        if problems:
            config.fail(problems)
        return roles


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Roles:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read the roles file: {exc}", file=path) from exc
    f = config.validate(_RolesFile, data, path)
    m = f.masking
    cols = {c.lower() for c in m.identifier_columns + m.attribute_columns + m.free_text_columns}
    roles = {n: Role(n, r.label if r.label is not None else n, r.clinical, r.description, frozenset(r.can))
             for n, r in f.roles.items()}
    return Roles(roles, f.actions, m.mask, frozenset(cols), tuple(p.lower() for p in m.prefixes),
                 frozenset(c.lower() for c in m.free_text_columns), path)


def load_roles(path: str | Path | None = None) -> Roles:
    """The roles in force (``OR_ROLES_FILE`` or data/roles.toml), re-read when the file changes."""
    p = Path(path) if path else roles_path()
    return _load(str(p), p.stat().st_mtime if p.exists() else 0.0)


def _role_of(who: User | str) -> str:
    return who.role if isinstance(who, User) else str(who)


def require(who: User | str, action: str, roles: Roles | None = None) -> None:
    """Raise PermissionError, in plain words, unless the role (or user's role) may do ``action``."""
    roles = roles or load_roles()
    if action not in roles.actions:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(roles.actions)}")
    role = _role_of(who)
    if role not in roles.roles:
        raise PermissionError(f"Unknown role {role!r}: nobody without a known role may {roles.actions[action]}.")
    if not roles.can(role, action):
        allowed = roles.who_can(action)
        who_txt = f"{who.name} ({role})" if isinstance(who, User) else f"The {role} role"
        need = " or ".join(roles.roles[a].label for a in allowed) if allowed else "no role"
        raise PermissionError(f"{who_txt} may not {roles.actions[action]}: this needs {need}.")


def can(who: User | str, action: str, roles: Roles | None = None) -> bool:
    roles = roles or load_roles()
    return roles.can(_role_of(who), action)


def is_clinical(who: User | str, roles: Roles | None = None) -> bool:
    roles = roles or load_roles()
    return roles.can(_role_of(who), "view_patient_details")


def mask_for_role(df: pd.DataFrame, who: User | str, roles: Roles | None = None) -> pd.DataFrame:
    """A copy with patient identifiers, attributes and free text replaced by the mask for non-clinical roles.

    Clinical roles get the frame unchanged (a copy); an unknown role raises PermissionError.
    """
    roles = roles or load_roles()
    role = _role_of(who)
    if role not in roles.roles:
        raise PermissionError(f"Unknown role {role!r}: no data is shown.")
    out = df.copy()
    if is_clinical(role, roles):
        return out
    for col in out.columns:
        if roles.is_masked(str(col)):
            out[col] = pd.Series([roles.mask] * len(out), index=out.index, dtype=object)
    return out


def mask_payload(obj: Any, who: User | str, roles: Roles | None = None) -> Any:
    """Mask free-text and patient keys inside nested audit payloads for non-clinical roles."""
    roles = roles or load_roles()
    if is_clinical(who, roles):
        return obj
    if isinstance(obj, dict):
        return {k: (roles.mask if roles.is_masked(str(k)) and v not in (None, "") else mask_payload(v, who, roles))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask_payload(v, who, roles) for v in obj]
    return obj


# Patient attributes as they appear inside generated sentences (forecast reasons).
_PATIENT_PHRASES = re.compile(
    r"(ASA (?:class )?(?:\d|unknown)|patient age \d+|age unknown|BMI (?:\d+|unknown)|admission type: [\w -]+|"
    r"anesthesia type: [\w -]+)", re.IGNORECASE)


def mask_text_for_role(text: Any, who: User | str, roles: Roles | None = None) -> Any:
    """Replace patient attributes named inside a sentence (e.g. a forecast reason) for non-clinical roles."""
    roles = roles or load_roles()
    if not isinstance(text, str) or is_clinical(who, roles):
        return text
    return _PATIENT_PHRASES.sub("a patient factor", text)


def mask_reasons_for_role(df: pd.DataFrame, who: User | str, roles: Roles | None = None) -> pd.DataFrame:
    """mask_for_role, plus patient attributes inside reason columns (reason, reasons, reason_1..n)."""
    roles = roles or load_roles()
    out = mask_for_role(df, who, roles)
    if is_clinical(who, roles):
        return out
    for col in out.columns:
        if str(col).startswith("reason"):
            out[col] = out[col].map(lambda t: mask_text_for_role(t, who, roles))
    return out
