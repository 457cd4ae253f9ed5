"""Safety gates before publication: each says, in plain words, what it checked, what failed and what to
inspect next.

Gates (catalog rule in brackets): the schedule itself against every hard rule of
docs/hard-rules.md, checked by the independent checker :mod:`engine.checker` [G-HARD-RULES,
always blocking, whatever the catalog says], feeds fresh [G-FEEDS], forecast drift [G-DRIFT], model artefact
current and the one the schedule was built with [G-MODEL], input data unchanged since the proposal
[G-INPUT], override rate [G-OVERRIDE], solver result [G-SOLVER], quarantined rows [G-QUARANTINE],
service-line codes known [G-SERVICE-LINES], observed outcomes of the last monitored days within their
thresholds [G-OUTCOMES: ``python -m engine monitor`` keeps them, engine/pilot/monitor.py]. A gate whose catalog rule is enforced blocks
publication when it fails; a monitored one is reported only (``blocking=False``).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from engine.checker import RULES as HARD_RULES
from engine.checker import Violation, check_schedule
from engine.feeds import FreshnessParams, feed_freshness
from engine.governance.canonical import input_data_hash
from engine.governance.catalog import Catalog
from engine.hospital import Hospital, QualityReport

GATES = ("hard_rules", "feeds", "drift", "model", "input_data", "override_rate", "solver", "quarantine", "service_lines",
         "outcomes")
GATE_RULES = {"hard_rules": "G-HARD-RULES", "feeds": "G-FEEDS", "drift": "G-DRIFT", "model": "G-MODEL", "input_data": "G-INPUT",
              "override_rate": "G-OVERRIDE", "solver": "G-SOLVER", "quarantine": "G-QUARANTINE",
              "service_lines": "G-SERVICE-LINES", "outcomes": "G-OUTCOMES"}
FEEDS = ("cases", "blocks", "staffing")
ALWAYS_BLOCKING = frozenset({"hard_rules"})  # a schedule that breaks a hard rule is never published
# What each gate looks at, stated with its result (the page and the audit show it).
CHECKS = {
    "hard_rules": "the version's exported times against every hard rule H1-H10 of docs/hard-rules.md "
                  "(independent checker engine/checker/)",
    "feeds": "the newest record of the cases, blocks and staffing feeds against the freshness limits",
    "drift": "the drift state recorded with the forecasting model in force",
    "model": "the model artefact's age, data hash and hospital, and that it is the model the version was planned with",
    "input_data": "the hash of the hospital data now against the hash recorded when the version was proposed",
    "override_rate": "the share of the version's cases changed by hand since its recommendation",
    "solver": "how the version's schedule was made: solver, termination status, MIP gap, fallback, hand edits",
    "quarantine": "the share of case rows set aside at import",
    "service_lines": "every case's service-line code against the hospital's service lines",
    "outcomes": "what happened on the last monitored days against the plans in force (python -m engine monitor): "
                "overtime per room-day, start delays, P80 coverage of actual durations, PACU holds",
}


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    message: str
    inspect_next: str = ""
    blocking: bool = True
    rule_id: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    checked: str = ""  # what the gate looked at, in words (CHECKS)

    @property
    def withholds(self) -> bool:
        """True when this result stops publication."""
        return not self.passed and self.blocking

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateParams:
    """Gate thresholds (units in names). ``enforced``: the gates that block when they fail."""

    required_feeds: tuple[str, ...] = FEEDS
    drift_blocking_states: tuple[str, ...] = ("stop",)
    max_model_age_days: float = 30.0
    require_model: bool = False
    max_override_rate: float = 0.2
    max_gap: float = 0.05
    max_quarantine_share: float = 0.02
    enforced: frozenset[str] = frozenset(GATES)
    allow_open_time: bool = True  # H6: False when the catalog enforces BLOCK-ONLY
    # G-OUTCOMES: observed outcomes over the last ``outcome_window_days`` monitored days
    outcome_window_days: int = 5
    max_overtime_minutes_per_room_day: float = 60.0
    max_start_delay_minutes: float = 45.0
    min_coverage_p80: float = 0.6
    max_pacu_hold_minutes_per_case: float = 20.0

    def __post_init__(self) -> None:
        bad = set(self.required_feeds) - set(FEEDS)
        if bad:
            raise ValueError(f"required_feeds must be among {', '.join(FEEDS)}, got {sorted(bad)}")
        if self.max_model_age_days < 0:
            raise ValueError(f"max_model_age_days must be >= 0, got {self.max_model_age_days!r}")
        if self.outcome_window_days < 1:
            raise ValueError(f"outcome_window_days must be >= 1, got {self.outcome_window_days!r}")
        for name in ("max_overtime_minutes_per_room_day", "max_start_delay_minutes", "max_pacu_hold_minutes_per_case"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("max_override_rate", "max_gap", "max_quarantine_share", "min_coverage_p80"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be within 0..1, got {v!r}")
        bad = set(self.enforced) - set(GATES)
        if bad:
            raise ValueError(f"enforced must be among {', '.join(GATES)}, got {sorted(bad)}")

    @classmethod
    def from_catalog(cls, catalog: Catalog, **overrides: Any) -> "GateParams":
        """Thresholds and blocking modes from the catalog's G-* rules; keyword arguments win."""
        p = catalog.param
        kw: dict[str, Any] = {
            "required_feeds": tuple(p("G-FEEDS", "required_feeds", FEEDS)),
            "drift_blocking_states": tuple(p("G-DRIFT", "blocking_states", ("stop",))),
            "max_model_age_days": float(p("G-MODEL", "max_age_days", 30.0)),
            "max_override_rate": float(p("G-OVERRIDE", "max_rate", 0.2)),
            "max_gap": float(p("G-SOLVER", "max_gap", 0.05)),
            "max_quarantine_share": float(p("G-QUARANTINE", "max_share", 0.02)),
            "enforced": frozenset(g for g, rid in GATE_RULES.items() if rid not in catalog.rules or catalog.rules[rid].enforced),
            "allow_open_time": not ("BLOCK-ONLY" in catalog.rules and catalog.rules["BLOCK-ONLY"].enforced),
            "outcome_window_days": int(p("G-OUTCOMES", "window_days", cls.outcome_window_days)),
            "max_overtime_minutes_per_room_day": float(p("G-OUTCOMES", "max_overtime_minutes_per_room_day", cls.max_overtime_minutes_per_room_day)),
            "max_start_delay_minutes": float(p("G-OUTCOMES", "max_start_delay_minutes", cls.max_start_delay_minutes)),
            "min_coverage_p80": float(p("G-OUTCOMES", "min_coverage_p80", cls.min_coverage_p80)),
            "max_pacu_hold_minutes_per_case": float(p("G-OUTCOMES", "max_pacu_hold_minutes_per_case", cls.max_pacu_hold_minutes_per_case)),
        }
        kw.update(overrides)
        return cls(**kw)


# ------------------------------------------------------------------ individual gates

_FEED_HELP = {
    "cases": "Check the case feed from the scheduling system (cases.csv): did the last nightly extract arrive, "
             "and does it hold recent bookings and completed cases? Re-import it, then re-plan.",
    "blocks": "Check the block-schedule export (blocks.csv): the next weeks' block release may not have been loaded. "
              "Load it, then re-plan.",
    "staffing": "Check the staffing feed (staffing.csv) from the rostering system: the coming days' staffed rooms, "
                "anesthesia teams and PACU beds are missing. Load it, then re-plan.",
}


def hard_rule_exceptions(plan_json: dict[str, Any] | None) -> dict[str, set[str]]:
    """{case_id: rules} a version records as facts, not plan (docs/hard-rules.md, the day-of exception).

    A day-of re-plan records a started case that now runs past its limits (H3/H9), an add-on that
    is not in cases.csv (H1) and a cancelled case left out (H1) under ``plan_json["hard_rule_exceptions"]``
    as ``{case_id: {"rules": [...], "why": "..."}}``; nothing else is excepted.
    """
    raw = (plan_json or {}).get("hard_rule_exceptions") or {}
    return {str(c): set(v.get("rules", [])) for c, v in raw.items() if isinstance(v, dict)}


def _excepted(v: Violation, exceptions: dict[str, set[str]]) -> bool:
    return bool(v.case_ids) and all(v.rule in exceptions.get(c, set()) for c in v.case_ids)


def gate_hard_rules(h: Hospital, schedule: pd.DataFrame | None, version: Any = None, params: GateParams | None = None,
                    plan_json: dict[str, Any] | None = None) -> GateResult:
    """The schedule itself against every hard rule (H1-H10), by the independent checker.

    The horizon, plan date and locks come from ``version`` when given (its override locks must hold,
    H10); open time is allowed unless the catalog enforces BLOCK-ONLY or the plan was made without it.
    """
    params = params or GateParams()
    plan_json = plan_json if plan_json is not None else (getattr(version, "plan", None) or {})
    if schedule is None:
        return GateResult("hard_rules", False, "No schedule was given, so the hard rules could not be checked.",
                          "Run the gates on a schedule version (check_gates), never on a plan summary alone.",
                          details={"checked": False})
    horizon = getattr(version, "horizon", None)
    locks = getattr(version, "locks", None)
    allow_open = params.allow_open_time and bool(plan_json.get("allow_open_time", True))
    violations = check_schedule(h, schedule, horizon_dates=horizon, locked=locks if locks is not None and len(locks) else None,
                                allow_open_time=allow_open, plan_date=horizon[0] if horizon else None)
    exceptions = hard_rule_exceptions(plan_json)
    accepted = [v for v in violations if _excepted(v, exceptions)]
    broken = [v for v in violations if not _excepted(v, exceptions)]
    status = schedule["status"].astype(str) if len(schedule) else pd.Series(dtype=str)
    n_sched, n_def = int((status == "scheduled").sum()), int((status == "deferred").sum())
    if horizon:
        span = f"{horizon[0]:%Y-%m-%d}" + (f"..{horizon[-1]:%Y-%m-%d}" if len(horizon) > 1 else "")
    else:
        span = "its dates"
    what = (f"{n_sched} scheduled and {n_def} deferred cases of {span} checked against the hard rules "
            f"H1-H10 (docs/hard-rules.md)" + (", with the version's override locks" if locks is not None and len(locks) else ""))
    details = {"checked": True, "rules": list(HARD_RULES), "n_scheduled": n_sched, "n_deferred": n_def,
               "violations": [{"rule": v.rule, "case_ids": list(v.case_ids), "message": str(v)} for v in broken],
               "accepted_exceptions": [{"rule": v.rule, "case_ids": list(v.case_ids), "message": str(v),
                                        "why": "; ".join(sorted({(plan_json.get("hard_rule_exceptions") or {}).get(c, {}).get("why", "")
                                                                 for c in v.case_ids}))} for v in accepted],
               "rules_broken": sorted({v.rule for v in broken}, key=lambda r: int(r[1:]))}
    facts = f" {len(accepted)} finding(s) are facts of the day, not plan (a started case), and are accepted." if accepted else ""
    if broken:
        shown = "; ".join(str(v) for v in broken[:5]) + (f"; ... and {len(broken) - 5} more" if len(broken) > 5 else "")
        return GateResult("hard_rules", False,
                          f"The schedule breaks {len(broken)} hard rule finding(s) ({', '.join(details['rules_broken'])}): "
                          f"{shown}. ({what}.){facts}",
                          "Fix the cases named (override them again, or re-plan with the overrides as locks) and run "
                          "the gates on the new version; a schedule that breaks a hard rule is never published.",
                          details=details)
    return GateResult("hard_rules", True, f"No hard rule is broken: {what}.{facts}", details=details)


def _feed_key(name: str) -> str:
    return next((f for f in FEEDS if str(name).startswith(f)), str(name))


def gate_feeds(h: Hospital, params: GateParams, freshness: FreshnessParams | None = None) -> GateResult:
    fr = feed_freshness(h, freshness)
    as_of = h.as_of()
    bad, good, details = [], [], {}
    for r in fr.itertuples():
        key = _feed_key(r.feed)
        details[key] = {"newest_record": r.newest_record, "days": r.days, "threshold_days": r.threshold_days, "status": r.status}
        if key not in params.required_feeds:
            continue
        newest = "no records at all" if pd.isna(r.newest_record) else f"{pd.Timestamp(r.newest_record):%Y-%m-%d %H:%M}".replace(" 00:00", "")
        if r.status == "ok":
            good.append(f"{key} {r.days:g} {'days old' if r.measure == 'age' else 'days ahead'}")
        elif r.measure == "age":
            age = "has no records at all" if r.days is None else (
                f"is stale: its newest record ({newest}) is {r.days:g} days older than the as-of date {as_of:%Y-%m-%d}")
            bad.append((key, f"The {key} feed {age} (allowed: {r.threshold_days:g} days)."))
        else:
            reach = "has no records at all" if r.days is None else (
                f"reaches only {r.days:g} days ahead of {as_of:%Y-%m-%d} (last date {newest})")
            bad.append((key, f"The {key} feed {reach}; planning needs at least {r.threshold_days:g} days ahead."))
    if bad:
        return GateResult("feeds", False, " ".join(m for _, m in bad), " ".join(_FEED_HELP[k] for k, _ in bad),
                          details={"stale": [k for k, _ in bad], "feeds": details})
    return GateResult("feeds", True, "All required feeds are current: " + ", ".join(good) + ".", details={"feeds": details})


def _meta(model: Any) -> dict[str, Any] | None:
    if model is None:
        return None
    return dict(model) if isinstance(model, dict) else dict(getattr(model, "meta", {}) or {})


def gate_drift(model: Any, params: GateParams) -> GateResult:
    meta = _meta(model)
    if meta is None:
        return GateResult("drift", True, "No forecasting model is in use (booked durations): drift does not apply.")
    state = meta.get("drift_state", "n/a")
    version = meta.get("version", getattr(model, "version", "?"))
    shifted: list[str] = []
    if hasattr(model, "artefact"):
        try:
            d = model.artefact("drift.csv")
            if len(d) and "state" in d.columns:
                shifted = [f"{q} (PSI {p:.2f})" for q, p in zip(d.loc[d["state"] == "stop", "quantity"], d.loc[d["state"] == "stop", "psi"])]
        except Exception:  # a damaged artefact must not hide the gate's answer
            shifted = []
    where = f" in the drift report of model {version}" + (f" ({getattr(model, 'path', '')}/drift.csv)" if getattr(model, "path", None) else "")
    if state in params.drift_blocking_states:
        what = f": {', '.join(shifted)}" if shifted else ""
        return GateResult("drift", False,
                          f"Forecast drift for model {version} is in the {state} state: recent cases no longer look like the "
                          f"data the model learned from{what}.",
                          f"Open the quantities marked {state}{where}; check whether a feed or coding change caused the shift, "
                          "then retrain the model before publishing an optimizer schedule (the rules-based schedule stays available).",
                          details={"drift_state": state, "shifted": shifted})
    note = " (moderate shift: watch it)" if state == "warn" else ""
    return GateResult("drift", True, f"Forecast drift for model {version} is {state}{note}.", details={"drift_state": state})


def gate_model(model: Any, params: GateParams, as_of: pd.Timestamp, version: Any = None,
               hospital_id: str | None = None) -> GateResult:
    meta = _meta(model)
    if meta is None:
        if params.require_model:
            return GateResult("model", False, "No forecasting model is registered for this hospital.",
                              "Train one (Forecasts page or `python -m engine train`), or publish the rules-based schedule.")
        return GateResult("model", True, "No forecasting model is in use: durations come from bookings (rules-based).")
    mv = meta.get("version", getattr(model, "version", "?"))
    problems, details = [], {"model_version": mv}
    train_until = meta.get("train_until")
    age = None
    if train_until is None:
        problems.append(f"model {mv} does not record the end of its training window (train_until)")
    else:
        age = (pd.Timestamp(as_of).normalize() - pd.Timestamp(str(train_until)).normalize()).days
        details["age_days"] = age
        if age > params.max_model_age_days:
            problems.append(f"model {mv} was trained on data up to {pd.Timestamp(str(train_until)):%Y-%m-%d}, {age} days before "
                            f"the as-of date {pd.Timestamp(as_of):%Y-%m-%d} (allowed: {params.max_model_age_days:g} days)")
    dh = meta.get("data_hash")
    if not dh:
        problems.append(f"model {mv} carries no data hash, so the data it was trained on cannot be checked")
    if hospital_id and meta.get("hospital_id") and meta["hospital_id"] != hospital_id:
        problems.append(f"model {mv} belongs to hospital {meta['hospital_id']}, not {hospital_id}")
    if version is not None and getattr(version, "model_version", None):
        if version.model_version != mv:
            problems.append(f"the schedule was proposed with model {version.model_version}, but the model in force is {mv}")
        elif getattr(version, "model_data_hash", None) and dh and version.model_data_hash != dh:
            problems.append(f"model {mv}'s data hash is {dh}, but the schedule was proposed with data hash "
                            f"{version.model_data_hash}: the artefact was replaced")
    if problems:
        return GateResult("model", False, "The forecasting model artefact cannot be trusted: " + "; ".join(problems) + ".",
                          "Retrain the model on current history (Forecasts page or `python -m engine train`) and re-plan; "
                          "until then roll back to the rules-based schedule, which uses booked durations. "
                          "If the artefact was replaced, check var/models/<hospital>/current.json and who changed it.",
                          details=details)
    return GateResult("model", True, f"Model {mv} is current ({age} days since its training data ended).", details=details)


def gate_input_data(h: Hospital, version: Any) -> GateResult:
    if version is None or not getattr(version, "data_hash", None):
        return GateResult("input_data", True, "No proposal data hash to compare (not checked).")
    now = input_data_hash(h)
    if now != version.data_hash:
        return GateResult("input_data", False,
                          f"The hospital data changed since version {version.version_id} was proposed (data hash "
                          f"{version.data_hash} then, {now} now): the schedule may miss new bookings, cancellations or "
                          "staffing changes.",
                          "Re-plan on the current data and compare the new proposal with this one before publishing.",
                          details={"proposed_hash": version.data_hash, "current_hash": now})
    return GateResult("input_data", True, f"The hospital data is the data version {version.version_id} was planned on.")


def gate_override_rate(rate: float | None, params: GateParams, breakdown: pd.DataFrame | None = None,
                       n_cases: int | None = None, n_overridden: int | None = None) -> GateResult:
    if rate is None:
        return GateResult("override_rate", True, "No overrides to measure.")
    counts = f" ({n_overridden} of {n_cases} cases)" if n_cases is not None and n_overridden is not None else ""
    if rate > params.max_override_rate:
        top = ""
        if breakdown is not None and len(breakdown):
            parts = []
            for col in ("code", "service_line"):
                if col in breakdown.columns:
                    g = breakdown.groupby(col)["case_id"].nunique().sort_values(ascending=False)
                    parts.append(f"most by {col.replace('_', ' ')} {g.index[0]} ({g.iloc[0]})")
            top = "; " + ", ".join(parts) if parts else ""
        return GateResult("override_rate", False,
                          f"{rate:.0%} of the cases in this schedule{counts} were changed by hand, above the "
                          f"{params.max_override_rate:.0%} threshold{top}.",
                          "Review the override log by service line and justification code: many overrides usually mean the "
                          "block schedule or the duration forecasts for that service need attention; re-plan with the "
                          "overrides as locks, or escalate to leadership.",
                          details={"rate": rate})
    return GateResult("override_rate", True, f"{rate:.0%} of the cases{counts} were changed by hand (threshold "
                                             f"{params.max_override_rate:.0%}).", details={"rate": rate})


def gate_solver(plan_json: dict[str, Any] | None, params: GateParams, version: Any = None) -> GateResult:
    """How the schedule was made. For a hand-edited version the solver's result belongs to the plan it was
    edited from: the gate says so and never claims that the edited schedule is optimal."""
    edited = bool((plan_json or {}).get("edited")) or getattr(version, "source", None) == "override"
    r = _gate_solver_result(plan_json, params)
    if not edited:
        return r
    n = (plan_json or {}).get("n_overrides")
    base = (plan_json or {}).get("edited_from_version") or getattr(version, "parent_id", None)
    by_hand = (f"This version was edited by hand ({n} override(s)" if n else "This version was edited by hand (overrides") + (
        f" on top of version {base})" if base else ")")
    details = {**r.details, "edited": True, "edited_from_version": base}
    if r.passed:
        made = "rules-based block schedule" if (plan_json or {}).get("solver") == "rules" else f"{(plan_json or {}).get('solver')} solver's result"
        return GateResult("solver", True, f"{by_hand}. The {made} applies to the plan it was edited from, not to this "
                                          "schedule, so no optimality is claimed for it; the edited schedule itself is "
                                          "checked by the hard_rules gate.", details=details)
    return GateResult("solver", False, f"{by_hand}, and the plan it was edited from failed this gate: {r.message}",
                      r.inspect_next, details=details)


def _gate_solver_result(plan_json: dict[str, Any] | None, params: GateParams) -> GateResult:
    if not plan_json:
        return GateResult("solver", False, "No plan result is recorded for this schedule, so how it was made cannot be checked.",
                          "Re-plan, or roll back to the rules-based schedule.")
    solver, status = plan_json.get("solver"), plan_json.get("status")
    gap = plan_json.get("mip_gap")
    if plan_json.get("fallback_used"):
        why = plan_json.get("fallback_reason") or "the optimizer gave no usable schedule"
        return GateResult("solver", False, f"The optimizer did not produce this schedule: {why}",
                          "Read the plan's diagnosis and solver status; give the solver more time or a shorter horizon and "
                          "re-plan. To go ahead on the rules-based block schedule deliberately, use rollback to rules.",
                          details={"status": status, "solver": solver})
    if status == "rules" or solver == "rules":
        return GateResult("solver", True, "Rules-based block schedule, chosen deliberately (no solver involved).")
    if status not in ("optimal", "time_limit"):
        return GateResult("solver", False, f"The {solver} solver ended with status {status!r}.",
                          "Read the plan's diagnosis; re-plan or roll back to the rules-based schedule.", details={"status": status})
    if gap is None and status != "optimal":
        return GateResult("solver", False, f"The {solver} solver stopped at its time limit without reporting a gap.",
                          "Give the solver more time (time limit) or a shorter horizon and re-plan.", details={"status": status})
    if gap is not None and gap > params.max_gap:
        return GateResult("solver", False,
                          f"The {solver} solver stopped with a gap of {gap:.1%}, above the tolerance of {params.max_gap:.0%}: "
                          "a better schedule may exist.",
                          "Give the solver more time (time limit) or a shorter horizon and re-plan.",
                          details={"status": status, "mip_gap": gap})
    return GateResult("solver", True, f"The {solver} solver finished ({status}, gap {0 if gap is None else gap:.1%}).",
                      details={"status": status, "mip_gap": gap})


def gate_quarantine(quality: QualityReport | None, params: GateParams) -> GateResult:
    if quality is None:
        return GateResult("quarantine", True, "No import quality report given (not checked).")
    f = quality.files.get("cases.csv")
    rows = f.n_rows if f else 0
    n = f.n_quarantined if f else quality.n_quarantined
    share = n / rows if rows else 0.0
    q = quality.quarantine
    common = ""
    if len(q):
        top = q.groupby(["column"])["row"].nunique().sort_values(ascending=False)
        common = f"; most problems in column {top.index[0]!r} ({top.iloc[0]} rows)"
    if quality.rejected or share > params.max_quarantine_share:
        what = ("the import rejected a file" if quality.rejected else
                f"{n} of {rows} case rows ({share:.1%}) were quarantined at import, above the {params.max_quarantine_share:.0%} limit")
        return GateResult("quarantine", False, f"Too much input was set aside: {what}{common}. Those cases are missing from the plan.",
                          "Open the quarantine list (Data page: file, row, column, reason) and fix the source extract or the "
                          "import mapping, then reload and re-plan.", details={"n_quarantined": n, "rows": rows, "share": share})
    return GateResult("quarantine", True, f"{n} of {rows} case rows quarantined ({share:.1%}, limit {params.max_quarantine_share:.0%}).",
                      details={"n_quarantined": n, "rows": rows, "share": share})


_UNKNOWN_LINE = re.compile(r"unknown service line '([^']*)'")


def gate_service_lines(h: Hospital, quality: QualityReport | None, schedule: pd.DataFrame | None) -> GateResult:
    known = set(h.surgeons["service_line"].dropna())
    known |= set(h.settings.service_lines)
    bad: dict[str, list[str]] = {}
    if quality is not None and len(quality.quarantine):
        q = quality.quarantine
        for r in q[q["column"] == "service_line"].itertuples():
            m = _UNKNOWN_LINE.search(str(r.reason))
            bad.setdefault(m.group(1) if m else "?", []).append(str(r.case_id))
    for frame in (h.cases[h.cases["status"] == "booked"], schedule):
        if frame is None or not len(frame):
            continue
        for code, g in frame[~frame["service_line"].isin(list(known))].groupby("service_line"):
            bad.setdefault(str(code), []).extend(g["case_id"].astype(str))
    if bad:
        n = len({c for ids in bad.values() for c in ids})
        codes = ", ".join(f"{code!r} ({len(set(ids))} cases, e.g. {sorted(set(ids))[0]})" for code, ids in sorted(bad.items()))
        return GateResult("service_lines", False,
                          f"{n} cases carry service-line codes that are not in this hospital's catalog of service lines "
                          f"(surgeons.csv): {codes}. They cannot be placed in their blocks, or were left out of the plan.",
                          "Check the specialty-code mapping of the import (data/mappings/*.yaml) or the source system's "
                          f"service-line codes; known lines: {', '.join(sorted(known))}. Relabel, reload and re-plan.",
                          details={"unknown": {k: sorted(set(v)) for k, v in bad.items()}})
    return GateResult("service_lines", True, f"All cases carry one of the hospital's {len(known)} service lines.")


def gate_outcomes(outcomes: dict[str, Any] | None, params: GateParams) -> GateResult:
    """Observed outcomes (:func:`engine.pilot.monitor.summarize_outcomes` of the last monitored days) against
    the G-OUTCOMES thresholds; None (nothing monitored yet) passes and says so."""
    if not outcomes:
        return GateResult("outcomes", True, "No monitored day has run on a published schedule yet: run `python -m engine "
                                            "monitor` after each published day.")
    span = (f"the last {outcomes['n_days']} monitored day(s), {outcomes['days'][0]} to {outcomes['days'][-1]}"
            if outcomes["n_days"] > 1 else f"the monitored day {outcomes['days'][0]}")
    checks = [  # (value, threshold, breached, words)
        (outcomes.get("overtime_minutes_per_room_day"), params.max_overtime_minutes_per_room_day, lambda v, t: v > t,
         "overtime of {v:.0f} min per room-day, above the {t:.0f} min limit"),
        (outcomes.get("start_delay_mean_minutes"), params.max_start_delay_minutes, lambda v, t: v > t,
         "cases starting {v:.0f} min after their planned start on average, above the {t:.0f} min limit"),
        (outcomes.get("coverage_p80"), params.min_coverage_p80, lambda v, t: v < t,
         "only {v:.0%} of actual durations within the plans' P80, below the {t:.0%} floor"),
        (outcomes.get("pacu_hold_minutes_per_case"), params.max_pacu_hold_minutes_per_case, lambda v, t: v > t,
         "PACU holds of {v:.0f} min per case (estimated), above the {t:.0f} min limit"),
    ]
    broke = [w.format(v=v, t=t) for v, t, bad, w in checks if v is not None and bad(v, t)]
    details = {k: outcomes.get(k) for k in ("days", "overtime_minutes_per_room_day", "start_delay_mean_minutes",
                                            "coverage_p80", "pacu_hold_minutes_per_case", "override_rate")}
    if broke:
        return GateResult("outcomes", False, f"What happened on {span} breaks the outcome limits: " + "; ".join(broke) + ".",
                          "Open 'Planned against actual' on the Pilot & rollout page: find the rooms and service lines behind "
                          "the gap. Low P80 coverage means the duration forecasts no longer fit (retrain, check drift); "
                          "late starts and overtime mean the plan is too tight (review turnovers and block lengths). "
                          "Publish again once a monitored day is back within the limits, or change the G-OUTCOMES "
                          "thresholds through the rules catalog.", details=details)
    return GateResult("outcomes", True, f"What happened on {span} is within the outcome limits.", details=details)


# ------------------------------------------------------------------ all gates


def evaluate_gates(
    hospital: Hospital,
    *,
    plan_json: dict[str, Any] | None = None,
    model: Any = None,
    quality: QualityReport | None = None,
    override_rate: float | None = None,
    override_breakdown: pd.DataFrame | None = None,
    version: Any = None,
    schedule: pd.DataFrame | None = None,
    params: GateParams | None = None,
    catalog: Catalog | None = None,
    as_of: pd.Timestamp | str | None = None,
    freshness: FreshnessParams | None = None,
    hospital_id: str | None = None,
    outcomes: dict[str, Any] | None = None,
) -> list[GateResult]:
    """Every gate, in a fixed order, with plain-language messages.

    ``version`` (a :class:`engine.governance.ScheduleVersion`) supplies the plan result, schedule and
    the hashes recorded at proposal when ``plan_json``/``schedule`` are not given. ``model`` is the
    registry's ModelVersion (or its meta dict), None when durations come from bookings. Thresholds
    come from ``params``, else from the catalog's G-* rules, else the defaults. ``outcomes`` are the observed
    outcomes of the last monitored days (:func:`engine.pilot.monitor.latest_outcomes`; None: none kept).
    """
    if params is None:
        params = GateParams.from_catalog(catalog) if catalog is not None else GateParams()
    as_of_ts = pd.Timestamp(as_of) if as_of is not None else hospital.as_of()
    if plan_json is None and version is not None:
        plan_json = version.plan
    if schedule is None and version is not None:
        schedule = version.schedule
    n_cases = n_over = None
    if override_breakdown is not None and schedule is not None:
        n_cases, n_over = len(schedule), int(override_breakdown["case_id"].nunique()) if len(override_breakdown) else 0
    results = [
        gate_hard_rules(hospital, schedule, version, params, plan_json),
        gate_feeds(hospital, params, freshness),
        gate_drift(model, params),
        gate_model(model, params, as_of_ts, version, hospital_id),
        gate_input_data(hospital, version),
        gate_override_rate(override_rate, params, override_breakdown, n_cases, n_over),
        gate_solver(plan_json, params, version),
        gate_quarantine(quality, params),
        gate_service_lines(hospital, quality, schedule),
        gate_outcomes(outcomes, params),
    ]
    out = []
    for r in results:
        blocking = r.gate in params.enforced or r.gate in ALWAYS_BLOCKING
        msg = r.message if blocking or r.passed else f"(monitored, not blocking) {r.message}"
        out.append(GateResult(r.gate, r.passed, msg, r.inspect_next, blocking, GATE_RULES[r.gate], r.details, CHECKS[r.gate]))
    return out


def withheld(results: list[GateResult]) -> list[GateResult]:
    """The results that stop publication."""
    return [r for r in results if r.withholds]
