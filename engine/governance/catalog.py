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

from engine.errors import InputError, Problem
from engine.plan.params import PlanParams

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "data" / "rules" / "catalog.toml"

MODES = ("enforced", "monitored", "advisory")
SEVERITIES = ("critical", "high", "medium", "low")
KINDS = ("hard", "policy", "gate", "metric")
HARD_RULE_IDS = tuple(f"H{i}" for i in range(1, 11))
_RULE_KEYS = ("id", "name", "kind", "description", "owner", "severity", "mode", "override_role")


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


def _text(problems: list[Problem], file: str, key: str, v: Any, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(v, str) or not v.strip():
        problems.append(Problem(file, None, key, "is required (a non-empty text)"))
        return ""
    if choices and v not in choices:
        problems.append(Problem(file, None, key, f"{v!r} must be one of {', '.join(choices)}"))
    return v


@lru_cache(maxsize=8)
def _load(path: str, mtime: float, role_names: tuple[str, ...]) -> Catalog:
    try:
        raw = Path(path).read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read the rules catalog: {exc}", file=path) from exc
    problems: list[Problem] = []
    rules: dict[str, Rule] = {}
    items = data.get("rule")
    if not isinstance(items, list) or not items:
        raise InputError(Problem(path, None, "rule", "the catalog needs [[rule]] entries"))
    for i, r in enumerate(items):
        if not isinstance(r, dict):
            problems.append(Problem(path, None, f"rule[{i}]", "must be a table"))
            continue
        rid = r.get("id")
        label = f"rule[{i}]" if not isinstance(rid, str) or not rid else f"rule {rid}"
        vals = {
            "id": _text(problems, path, f"{label}.id", rid),
            "name": _text(problems, path, f"{label}.name", r.get("name")),
            "kind": _text(problems, path, f"{label}.kind", r.get("kind"), KINDS),
            "description": _text(problems, path, f"{label}.description", r.get("description")),
            "owner": _text(problems, path, f"{label}.owner", r.get("owner")),
            "severity": _text(problems, path, f"{label}.severity", r.get("severity"), SEVERITIES),
            "mode": _text(problems, path, f"{label}.mode", r.get("mode"), MODES),
            "override_role": _text(problems, path, f"{label}.override_role", r.get("override_role"),
                                   ("none", *role_names) if role_names else None),
        }
        unknown = sorted(set(r) - set(_RULE_KEYS) - {"params"})
        if unknown:
            problems.append(Problem(path, None, f"{label}", f"unknown key(s) {unknown}"))
        params = r.get("params", {})
        if not isinstance(params, dict):
            problems.append(Problem(path, None, f"{label}.params", "must be a table"))
            params = {}
        if vals["id"] in rules:
            problems.append(Problem(path, None, f"{label}.id", "duplicated id"))
        if vals["kind"] == "hard" and vals["mode"] and vals["mode"] != "enforced":
            problems.append(Problem(path, None, f"{label}.mode", f"a hard rule must be enforced, got {vals['mode']!r}"))
        if vals["kind"] == "hard" and vals["override_role"] not in ("", "none"):
            problems.append(Problem(path, None, f"{label}.override_role", "a hard rule cannot be overridden: use \"none\""))
        rules[vals["id"]] = Rule(**vals, params=dict(params))
    for hid in HARD_RULE_IDS:
        if hid not in rules:
            problems.append(Problem(path, None, f"rule {hid}", "the hard rule is missing (docs/hard-rules.md)"))
    cap = rules.get("H3").params.get("overtime_cap_minutes") if "H3" in rules else None
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, float)) or cap < 0):
        problems.append(Problem(path, None, "rule H3.params.overtime_cap_minutes", f"{cap!r} must be a number of minutes >= 0"))
    gap = rules.get("FAIR-PRIME").params.get("max_gap_points") if "FAIR-PRIME" in rules else None
    if gap is not None and (isinstance(gap, bool) or not isinstance(gap, (int, float)) or not 0 <= gap <= 100):
        problems.append(Problem(path, None, "rule FAIR-PRIME.params.max_gap_points", f"{gap!r} must be within 0..100"))
    justs: dict[str, Justification] = {}
    for i, j in enumerate(data.get("justification") or []):
        code = j.get("code") if isinstance(j, dict) else None
        key = f"justification[{i}]" if not code else f"justification {code}"
        if not isinstance(code, str) or not code:
            problems.append(Problem(path, None, f"{key}.code", "is required"))
            continue
        if not isinstance(j.get("requires_text", False), bool):
            problems.append(Problem(path, None, f"{key}.requires_text", "must be true or false"))
        justs[code] = Justification(code, str(j.get("label", code)), bool(j.get("requires_text", False)))
    if not justs:
        problems.append(Problem(path, None, "justification", "the catalog needs [[justification]] codes"))
    if problems:
        raise InputError(problems)
    version = "rules-" + hashlib.sha256(raw).hexdigest()[:12]
    return Catalog(rules, justs, version, str(data.get("catalog_version", "")), path)


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
