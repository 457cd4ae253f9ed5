"""Role-checked, audited entry points for the actions outside the publish workflow.

The dashboard, the command line and the API call these instead of the engines directly, so the
role matrix (data/roles.toml) holds on every path and every action leaves an audit entry:

- :func:`retrain` (``retrain``): train and register a forecasting model; audited ``retrain``.
- :func:`replan_day` (``replan``): day-of re-planning after an event; audited ``replan``.
  :func:`replan_plan_json` gives the plan JSON to propose the result with, including the facts of
  the day the hard-rules gate accepts (docs/hard-rules.md, the exception for a started case).
- :func:`guarded_import` (``import_data``): run an import; replacing an existing hospital needs
  ``confirm_replace=True``; audited ``import_data``.
- :func:`patient_group_audit_for` (``view_patient_groups``) and :func:`fairness_allowed`
  (``view_fairness``): the fairness review's views.

The engines themselves (engine/forecast, engine/plan, engine/importer) stay role-free.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, TypeVar

import pandas as pd

from engine.governance.audit import append
from engine.governance.errors import WorkflowError
from engine.governance.roles import User, require

log = logging.getLogger(__name__)

T = TypeVar("T")


class ReplaceNotConfirmed(WorkflowError):
    """An import would replace an existing hospital and the replacement was not confirmed."""


def _signed_in(actor: Any, action: str) -> User:
    if not isinstance(actor, User):
        raise PermissionError("Sign in first: this action needs a signed-in user.")
    require(actor, action)
    return actor


def _ledger(ledger: Any) -> Any:
    """A Governance, Store, Engine or URL for the audit entry (None: the default store)."""
    return getattr(ledger, "engine", ledger)


def retrain(actor: User, hospital: Any, hospital_id: str, *, params: Any = None, registry: Any = None,
            progress: Callable[[float, str], None] | None = None, ledger: Any = None) -> Any:
    """Train, backtest and register a new current model (``engine.forecast.train_and_register``) if the
    actor may ``retrain``; one ``retrain`` audit entry names the new version, its data and its metrics."""
    actor = _signed_in(actor, "retrain")
    from engine.forecast import train_and_register

    h = getattr(hospital, "hospital", hospital)
    mv = train_and_register(h, hospital_id, params, registry, progress=progress)
    m = mv.meta or {}
    append(_ledger(ledger), hospital_id, "retrain", actor.name, actor.role, {
        "model_version": mv.version, "train_from": m.get("train_from"), "train_until": m.get("train_until"),
        "data_hash": m.get("data_hash"), "fit_seconds": m.get("fit_seconds"), "mae_p50": m.get("mae_p50"),
        "coverage_p80": m.get("coverage_p80"), "coverage_p95": m.get("coverage_p95"), "drift_state": m.get("drift_state")})
    log.info("hospital %s: model %s retrained by %s", hospital_id, mv.version, actor.name)
    return mv


def replan_day(actor: User, hospital: Any, forecasts: pd.DataFrame, current: pd.DataFrame, event: Any, now: Any,
               params: Any = None, *, hospital_id: str, ledger: Any = None) -> Any:
    """Day-of re-planning (``engine.plan.replan.replan``) if the actor may ``replan``; audited ``replan``
    (the event, what moved, the solver's answer). Publishing the result still goes through
    propose -> approve -> gates -> publish; propose it with :func:`replan_plan_json`."""
    actor = _signed_in(actor, "replan")
    from engine.plan.replan import replan

    h = getattr(hospital, "hospital", hospital)
    rr = replan(h, forecasts, current, event, now, params)
    pj = rr.result.to_json()
    changes = rr.changes
    append(_ledger(ledger), hospital_id, "replan", actor.name, actor.role, {
        "event": event.describe(), "event_kind": event.kind, "case_id": event.case_id, "room_id": event.room_id,
        "now": pd.Timestamp(now).isoformat(), "n_changes": int(len(changes)),
        "changes": changes.head(50).to_dict("records") if len(changes) else [],
        "solver": pj.get("solver"), "status": pj.get("status"), "mip_gap": pj.get("mip_gap"),
        "fallback_used": pj.get("fallback_used"), "n_scheduled": pj.get("n_scheduled"), "n_deferred": pj.get("n_deferred")})
    return rr


def replan_exceptions(current: pd.DataFrame, event: Any, now: Any) -> dict[str, dict[str, Any]]:
    """The facts of the day a re-plan's schedule may show (docs/hard-rules.md): a case that has started
    stays where it is even past its block or close plus the cap (H3/H9); an add-on is not in cases.csv
    and a cancelled case is left out (H1). ``{case_id: {"rules": [...], "why": "..."}}``."""
    now = pd.Timestamp(now)
    cur = current.copy()
    cur["date"] = pd.to_datetime(cur["date"])
    cur = cur[cur["date"] == now.normalize()]
    out: dict[str, dict[str, Any]] = {}
    started = cur[(cur["status"] == "scheduled") & (pd.to_datetime(cur["start"]) < now)]
    for cid in started["case_id"]:
        out[str(cid)] = {"rules": ["H3", "H9"], "why": f"case {cid} had started before {now:%H:%M}: a fact, not a plan"}
    if getattr(event, "kind", None) == "add_on":
        cid = str(event.add_on.get("case_id"))
        out[cid] = {"rules": ["H1"], "why": f"{cid} is an add-on that arrived today (not in cases.csv yet)"}
    if getattr(event, "kind", None) == "cancellation" and event.case_id:
        out[str(event.case_id)] = {"rules": ["H1"], "why": f"case {event.case_id} was cancelled today"}
    return out


def replan_plan_json(rr: Any, current: pd.DataFrame, now: Any) -> dict[str, Any]:
    """The plan JSON to propose a re-plan with: the result's JSON plus its accepted facts of the day."""
    return {**rr.result.to_json(), "replan_event": rr.event.describe(),
            "hard_rule_exceptions": replan_exceptions(current, rr.event, now)}


def guarded_import(actor: User, hospital_id: str, run: Callable[[], T], *, exists: bool, confirm_replace: bool = False,
                   ledger: Any = None, summary: Callable[[T], dict[str, Any]] | None = None, source: str = "") -> T:
    """Run ``run()`` (the import that writes hospital ``hospital_id``) if the actor may ``import_data``.

    When a hospital of that name ``exists``, the import replaces it: refused with
    :class:`ReplaceNotConfirmed` unless ``confirm_replace``. The check comes before ``run`` is
    called, so a refusal writes nothing. One ``import_data`` audit entry records who, what, and
    whether a hospital was replaced.
    """
    actor = _signed_in(actor, "import_data")
    if exists and not confirm_replace:
        raise ReplaceNotConfirmed(f"A hospital named {hospital_id!r} exists: importing under that name replaces its data. "
                                  "Confirm the replacement, or import under another name.")
    out = run()
    info = summary(out) if summary is not None else {}
    append(_ledger(ledger), hospital_id, "import_data", actor.name, actor.role, {
        "hospital_id": hospital_id, "replaced": bool(exists), "confirmed": bool(confirm_replace), "source": source or None,
        "summary": info})
    if exists:
        log.warning("hospital %s replaced by an import by %s", hospital_id, actor.name)
    return out


def fairness_allowed(actor: User | str) -> None:
    """PermissionError unless the role may read the fairness review (``view_fairness``)."""
    require(actor, "view_fairness")


def patient_group_audit_for(actor: User | str, hospital: Any, schedule: pd.DataFrame,
                            forecasts: pd.DataFrame | None = None) -> pd.DataFrame:
    """The fairness review's patient-group audit, for roles that may ``view_patient_groups`` only."""
    require(actor, "view_patient_groups")
    from engine.fairness.review import patient_group_audit

    return patient_group_audit(getattr(hospital, "hospital", hospital), schedule, forecasts)


def set_fairness_policy(actor: User, folder: Any, hospital_id: str, policy: dict[str, Any], *, note: str = "",
                        ledger: Any = None) -> Any:
    """Change the fairness policy (settings.toml ``[fairness]``) if the actor may ``set_fairness_policy``.

    The new section is validated as a whole first (an error names ``fairness.<key>``; nothing is
    written); the settings file in force is kept as ``settings_history/settings-<UTC time>.toml``
    beside it (the policy is versioned), then settings.toml is replaced in one move. One
    ``set_fairness_policy`` audit entry records the policy before and after. Returns the new
    :class:`engine.settings.FairnessPolicy`. TOML comments in settings.toml are not kept.
    """
    import datetime as dt
    import shutil
    import tomllib
    from pathlib import Path

    import tomli_w

    from engine.contract import SETTINGS_FILE
    from engine.errors import InputError
    from engine.io import atomic_write_file
    from engine.settings import parse_settings

    actor = _signed_in(actor, "set_fairness_policy")
    path = Path(folder) / SETTINGS_FILE
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    before = parse_settings(raw)[0]
    settings, problems = parse_settings({**raw, "fairness": dict(policy)})
    if problems:
        raise InputError(problems)
    text = tomli_w.dumps({**raw, "fairness": settings.fairness.model_dump(exclude_none=True)})
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    kept = path.parent / "settings_history" / f"settings-{stamp}.toml"
    # Audited before it takes effect: a change the log does not show never happens.
    append(_ledger(ledger), hospital_id, "set_fairness_policy", actor.name, actor.role, {
        "before": before.fairness.model_dump() if before else None, "before_stated": bool(before and before.fairness_stated),
        "after": settings.fairness.model_dump(), "kept_as": f"settings_history/{kept.name}", "note": note or None})
    kept.parent.mkdir(exist_ok=True)
    shutil.copy2(path, kept)
    atomic_write_file(path, lambda p: p.write_text(text, encoding="utf-8"))
    log.info("hospital %s: fairness policy changed by %s", hospital_id, actor.name)
    return settings.fairness
