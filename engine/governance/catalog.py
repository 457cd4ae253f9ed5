"""The rules catalog (data/rules/catalog.toml): validated, versioned by content hash, read by the optimizer."""
from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from pydantic import (BaseModel, ConfigDict, ValidationError, ValidationInfo, ValidatorFunctionWrapHandler,
                      field_validator, model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

import engine.config as config
from engine.errors import InputError
from engine.plan.params import PlanParams

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "data" / "rules" / "catalog.toml"

MODES = ("enforced", "monitored", "advisory")
SEVERITIES = ("critical", "high", "medium", "low")
KINDS = ("hard", "policy", "gate", "metric")
HARD_RULE_IDS = tuple(f"H{i}" for i in range(1, 11))
_RULE_KEYS = ("id", "name", "kind", "description", "owner", "severity", "mode", "override_role")
# The parameters the optimizer reads, and the values they may take.
_LIMITS = {"H3": ("overtime_cap_minutes", lambda x: x >= 0, "a number of minutes >= 0"),
           "FAIR-PRIME": ("max_gap_points", lambda x: 0 <= x <= 100, "within 0..100")}


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    kind: str
    description: str
    owner: str
    severity: str
    mode: str
    override_role: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def enforced(self) -> bool:
        return self.mode == "enforced"


@dataclass(frozen=True)
class Justification:
    code: str
    label: str
    requires_text: bool


@dataclass(frozen=True)
class Catalog:
    rules: dict[str, Rule]
    justifications: dict[str, Justification]
    rules_version: str
    catalog_version: str
    source: str

    def enforced_ids(self) -> list[str]:
        return [r.id for r in self.rules.values() if r.enforced]

    def rule(self, rule_id: str) -> Rule:
        if rule_id not in self.rules:
            raise KeyError(f"no rule {rule_id!r} in the catalog ({self.source})")
        return self.rules[rule_id]

    def param(self, rule_id: str, name: str, default: Any = None) -> Any:
        r = self.rules.get(rule_id)
        return r.params.get(name, default) if r else default

    def may_override(self, rule_id: str, role: str) -> bool:
        r = self.rule(rule_id)
        return r.override_role != "none" and r.override_role == role

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{k: getattr(r, k) for k in _RULE_KEYS} | {"params": r.params} for r in self.rules.values()],
                            columns=[*_RULE_KEYS, "params"])


def catalog_path() -> Path:
    return Path(os.environ.get("RULES_CATALOG") or DEFAULT_CATALOG)


class _RuleModel(BaseModel):
    """One ``[[rule]]``: texts, some from a list of choices (the roles from the context); a hard rule stays enforced."""

    model_config = ConfigDict(validate_default=True)
    id: str = ""
    name: str = ""
    kind: str = ""
    description: str = ""
    owner: str = ""
    severity: str = ""
    mode: str = ""
    override_role: str = ""
    params: dict[str, Any] = {}

    @field_validator(*_RULE_KEYS, mode="before")
    @classmethod
    def _text(cls, v: Any, info: ValidationInfo) -> str:
        roles, hard = (info.context or {}).get("roles"), info.data.get("kind") == "hard"
        choices = {"kind": KINDS, "severity": SEVERITIES, "mode": MODES,
                   "override_role": ("none", *roles) if roles else None}.get(info.field_name)
        if not isinstance(v, str) or not v.strip():
            raise ValueError("is required (a non-empty text)")
        if choices and v not in choices:
            raise ValueError(f"{v!r} must be one of {', '.join(choices)}")
        if hard and info.field_name == "mode" and v != "enforced":
            raise ValueError(f"a hard rule must be enforced, got {v!r}")
        if hard and info.field_name == "override_role" and v != "none":
            raise ValueError('a hard rule cannot be overridden: use "none"')
        return v

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, v: Any, info: ValidationInfo) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise ValueError("must be a table")
        key, ok, wanted = _LIMITS.get(info.data.get("id"), ("", None, ""))
        x = v.get(key)
        if key in v and not (isinstance(x, (int, float)) and not isinstance(x, bool) and ok(x)):
            config.fail([((key,), f"{x!r} must be {wanted}")])
        return v


class _JustificationModel(BaseModel):
    """One ``[[justification]]``: the code an override gives, and whether it needs a free text."""

    model_config = ConfigDict(validate_default=True)
    code: str = ""
    label: Any = None
    requires_text: bool = False

    @field_validator("code", "requires_text", mode="before")
    @classmethod
    def _check(cls, v: Any, info: ValidationInfo) -> Any:
        if info.field_name == "code" and (not isinstance(v, str) or not v):
            raise ValueError("is required")
        if info.field_name == "requires_text" and not isinstance(v, bool):
            raise ValueError("must be true or false")
        return v


class _CatalogFile(BaseModel):
    """data/rules/catalog.toml: rules with unique ids and no unknown keys, H1..H10 among them; justification codes."""

    model_config = ConfigDict(validate_default=True)
    rule: list[_RuleModel] = []
    justification: list[_JustificationModel] = []
    catalog_version: Any = ""

    @field_validator("rule", "justification", mode="before")
    @classmethod
    def _entries(cls, v: Any, info: ValidationInfo) -> list[Any]:
        if not isinstance(v, list) or not v:
            what = "entries" if info.field_name == "rule" else "codes"
            raise ValueError(f"the catalog needs [[{info.field_name}]] {what}")
        return v

    @model_validator(mode="wrap")
    @classmethod
    def _across(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> _CatalogFile:
        """Checks across rules (run even when entries are wrong); one error naming ``rule H3.mode``, ``rule[2].id``."""
        rules = data.get("rule") if isinstance(data, dict) else None
        rules = rules if isinstance(rules, list) else []
        ids = [r.get("id") if isinstance(r, dict) else None for r in rules]
        known = set(_RuleModel.model_fields)
        errors: list[tuple[str, tuple[Any, ...], str, Any]] = [
            ("config", ("rule", i, "id"), "duplicated id", r) for i, r in enumerate(ids) if r and r in ids[:i]]
        errors += [("config", ("rule", i), f"unknown key(s) {sorted(set(r) - known)}", None)
                   for i, r in enumerate(rules) if isinstance(r, dict) and set(r) - known]
        errors += [("config", (f"rule {h}",), "the hard rule is missing (docs/hard-rules.md)", None)
                   for h in HARD_RULE_IDS if rules and h not in ids]
        try:
            f = handler(data)
        except ValidationError as exc:
            errors = [(e["type"], e["loc"], e["msg"], e["input"]) for e in exc.errors()] + errors
        if errors:  # pydantic's ("rule", 3, "mode") -> the catalog's key; config.problems_of words each kind
            raise ValidationError.from_exception_data("catalog", [InitErrorDetails(
                type=PydanticCustomError(kind, "{m}", {"m": msg}), loc=_key(loc, data), input=value)
                for kind, loc, msg, value in errors])
        return f


def _key(loc: tuple[Any, ...], data: dict[str, Any]) -> tuple[Any, ...]:
    """``("rule", 3, "mode")`` -> ``("rule H3", "mode")``, or ``("rule[3]", "mode")`` when the rule has no id."""
    if len(loc) < 2 or loc[0] not in ("rule", "justification") or not isinstance(loc[1], int):
        return loc
    entry = data[loc[0]][loc[1]]
    name = entry.get("id" if loc[0] == "rule" else "code") if isinstance(entry, dict) else None
    return (f"{loc[0]} {name}" if isinstance(name, str) and name else f"{loc[0]}[{loc[1]}]", *loc[2:])


@lru_cache(maxsize=8)
def _load(path: str, mtime: float, role_names: tuple[str, ...]) -> Catalog:
    try:
        raw = Path(path).read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read the rules catalog: {exc}", file=path) from exc
    f = config.validate(_CatalogFile, data, path, roles=role_names)
    rules = {r.id: Rule(**r.model_dump(exclude={"params"}), params=dict(r.params)) for r in f.rule}
    justs = {j.code: Justification(j.code, str(j.code if j.label is None else j.label), j.requires_text)
             for j in f.justification}
    version = "rules-" + hashlib.sha256(raw).hexdigest()[:12]
    return Catalog(rules, justs, version, str(f.catalog_version), path)


def load_catalog(path: str | Path | None = None, roles: Any = None) -> Catalog:
    """The catalog in force (``RULES_CATALOG`` or data/rules/catalog.toml), validated.

    Raises InputError naming the key of every problem. ``rules_version`` is a hash of the file's
    bytes, so any edit gives a new version. Override roles are checked against data/roles.toml.
    """
    p = Path(path) if path else catalog_path()
    if roles is None:
        from engine.governance.roles import load_roles

        roles = load_roles()
    return _load(str(p), p.stat().st_mtime_ns if p.exists() else 0.0, tuple(roles.names()))


def plan_params_from_catalog(catalog: Catalog, base: PlanParams | None = None) -> PlanParams:
    """``base`` with the catalog's enforced rules applied (only to fields PlanParams has).

    The catalog only tightens: H3 ``overtime_cap_minutes`` -> ``overtime_cap_minutes``; BLOCK-ONLY
    enforced -> ``allow_open_time=False``; KEEP-DATE enforced -> ``allow_date_change=False``;
    FAIR-PRIME enforced -> ``fairness_max_gap_points``. A rule that is only monitored or advisory
    leaves the base value as it is.
    """
    base = base or PlanParams()
    have = {f.name for f in fields(PlanParams)}
    changes: dict[str, Any] = {}
    cap = catalog.param("H3", "overtime_cap_minutes")
    if cap is not None:
        changes["overtime_cap_minutes"] = float(cap)
    if "BLOCK-ONLY" in catalog.rules and catalog.rules["BLOCK-ONLY"].enforced:
        changes["allow_open_time"] = False
    if "KEEP-DATE" in catalog.rules and catalog.rules["KEEP-DATE"].enforced:
        changes["allow_date_change"] = False
    if "FAIR-PRIME" in catalog.rules and catalog.rules["FAIR-PRIME"].enforced:
        changes["fairness_max_gap_points"] = float(catalog.rules["FAIR-PRIME"].params.get("max_gap_points", 5.0))
    return base.with_(**{k: v for k, v in changes.items() if k in have})
