"""Canary rollout with a control group (issue 19, Deliver 3).

The product's schedule is enabled for chosen rooms, service lines or sites (the **canary**); every
other case keeps the rules-based block schedule (the **control** group). One canary per hospital may
be active at a time. Its record (scope, go-live date, state ``active``/``stopped``, who and when) is
a row of ``gov_canaries`` in the store's database, a table of this module's own MetaData created on
first use like the governance tables; starting and stopping it each append an audit entry
(``canary_start`` / ``canary_stop``) in the same transaction as the row change.

Outcomes, per weekday and group, come from the hospital's records (completed cases):

- ``overtime_minutes``: the minutes of each completed case (wheels-in to wheels-out) past its room's
  close time, summed over the group's cases (one definition for rooms, sites and service lines);
- ``pacu_hold_minutes``: an estimate (the records carry no PACU times): patients reach PACU at
  wheels-out, stay the hospital's ``pacu_minutes``, and wait first-come first-served for one of the
  day's ``pacu_beds`` (staffing.csv), the estimate of engine/pilot/monitor.py, over the whole day's
  patients; the waits of the group's patients are summed;
- ``cases_done``: completed cases of the group.

The **difference-in-differences** estimate compares the daily gap canary minus control after
go-live with the same gap over the ``pre_weeks`` weeks before it: ``(mean post gap) - (mean pre
gap)``, with a Welch t interval (days are independent samples; the per-day difference removes
what both groups share that day: the day's case mix, a PACU crunch, a holiday). Negative overtime
or PACU-hold estimates and positive cases-done estimates favour the canary. It assumes parallel
trends: the pre-period gap is reported per week so a drift before go-live can be seen.

:func:`canary_plan` makes a day's schedule under the canary: the rules schedule for every case,
then the optimizer re-plans the canary's cases with every control case locked where the rules put
it. A stopped (or absent) canary plans the rules schedule for all.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from engine.errors import InputError, Problem
from engine.hospital import Hospital
from engine.timeutil import hhmm_to_minutes

SCOPE_KINDS = ("rooms", "service_lines", "sites")
METRICS = ("overtime_minutes", "pacu_hold_minutes", "cases_done")
LOWER_IS_BETTER = {"overtime_minutes", "pacu_hold_minutes"}

_MD = sa.MetaData()
CANARIES = sa.Table(
    "gov_canaries",
    _MD,
    sa.Column("canary_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("hospital_id", sa.String(200), nullable=False, index=True),
    sa.Column("scope_kind", sa.String(20), nullable=False),  # rooms | service_lines | sites
    sa.Column("scope_json", sa.Text, nullable=False),  # JSON list of room ids / service lines / sites
    sa.Column("go_live", sa.Date, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # active | stopped
    sa.Column("started_by", sa.String(200), nullable=False),
    sa.Column("started_role", sa.String(40), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("stopped_by", sa.String(200)),
    sa.Column("stopped_at", sa.DateTime),
    sa.Column("stop_reason", sa.Text),
    sa.Column("start_entry_id", sa.Integer),  # the audit entries of the start and the stop
    sa.Column("stop_entry_id", sa.Integer),
    sa.Column("note", sa.Text),
)


def _engine(store_or_url: Any) -> tuple[sa.Engine, bool]:
    from engine.pilot.store import engine_with

    return engine_with(_MD, store_or_url)


@dataclass(frozen=True)
class CanaryScope:
    """Which part of the hospital runs on the product: ``kind`` (rooms, service_lines or sites) and its ``values``."""

    kind: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in SCOPE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(SCOPE_KINDS)}, got {self.kind!r}")
        vals = tuple(dict.fromkeys(str(v).strip() for v in self.values if str(v).strip()))
        if not vals:
            raise ValueError(f"values must name at least one of the hospital's {self.kind.replace('_', ' ')}")
        object.__setattr__(self, "values", vals)

    def known(self, h: Hospital) -> list[str]:
        if self.kind == "rooms":
            return sorted(h.rooms["room_id"].astype(str))
        if self.kind == "sites":
            return sorted(set(h.rooms["site"].dropna().astype(str)) - {""}) if "site" in h.rooms.columns else []
        return sorted(set(h.surgeons["service_line"].dropna().astype(str)) | set(h.settings.service_lines))

    def check(self, h: Hospital) -> None:
        """InputError naming the unknown values (and the known ones) when the scope is not in ``h``."""
        known = self.known(h)
        bad = [v for v in self.values if v not in known]
        if bad:
            raise InputError([Problem("command line", None, f"--{self.kind.replace('_', '-')}",
                                      f"unknown {self.kind.replace('_', ' ')} {', '.join(map(repr, bad))}; "
                                      f"this hospital has: {', '.join(known) or 'none'}")])
        if len(set(known) - set(self.values)) == 0:
            raise InputError([Problem("command line", None, f"--{self.kind.replace('_', '-')}",
                                      f"the canary covers every one of the hospital's {self.kind.replace('_', ' ')}: "
                                      "no control group is left to compare it with")])

    def mask(self, h: Hospital, cases: pd.DataFrame) -> pd.Series:
        """True for the cases in the canary (rooms and sites by the case's room, service lines by the case's line)."""
        if self.kind == "service_lines":
            return cases["service_line"].astype(str).isin(self.values)
        if self.kind == "rooms":
            rooms = set(self.values)
        else:
            rooms = set(h.rooms.loc[h.rooms["site"].astype(str).isin(self.values), "room_id"].astype(str))
        return cases["room_id"].astype(str).isin(rooms)

    def label(self) -> str:
        return f"{self.kind.replace('_', ' ')} {', '.join(self.values)}"


@dataclass(frozen=True)
class DidParams:
    """The canary report: ``pre_weeks`` weeks of weekdays before go-live; ``level`` of the intervals."""

    pre_weeks: int = 8
    level: float = 0.95

    def __post_init__(self) -> None:
        if not 1 <= self.pre_weeks <= 104:
            raise ValueError(f"pre_weeks must be within 1..104, got {self.pre_weeks!r}")
        if not 0.5 <= self.level < 1:
            raise ValueError(f"level must be within 0.5..1, got {self.level!r}")


@dataclass(frozen=True)
class Canary:
    canary_id: int
    hospital_id: str
    scope: CanaryScope
    go_live: pd.Timestamp
    state: str
    started_by: str
    started_role: str
    started_at: datetime
    stopped_by: str | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    start_entry_id: int | None = None
    stop_entry_id: int | None = None
    note: str | None = None

    @property
    def active(self) -> bool:
        return self.state == "active"

    def to_dict(self) -> dict[str, Any]:
        return {"canary_id": self.canary_id, "hospital_id": self.hospital_id, "scope_kind": self.scope.kind,
                "scope": list(self.scope.values), "go_live": f"{self.go_live:%Y-%m-%d}", "state": self.state,
                "started_by": self.started_by, "started_role": self.started_role,
                "started_at": self.started_at.isoformat(timespec="seconds") if self.started_at else None,
                "stopped_by": self.stopped_by,
                "stopped_at": self.stopped_at.isoformat(timespec="seconds") if self.stopped_at else None,
                "stop_reason": self.stop_reason, "start_entry_id": self.start_entry_id,
                "stop_entry_id": self.stop_entry_id, "note": self.note}


def _row(r: sa.Row) -> Canary:
    return Canary(int(r.canary_id), r.hospital_id, CanaryScope(r.scope_kind, tuple(json.loads(r.scope_json))),
                  pd.Timestamp(r.go_live), r.state, r.started_by, r.started_role, r.started_at, r.stopped_by,
                  r.stopped_at, r.stop_reason, r.start_entry_id, r.stop_entry_id, r.note)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def canaries(store_or_url: Any, hospital_id: str) -> list[Canary]:
    """Every canary of the hospital, newest first."""
    eng, owned = _engine(store_or_url)
    try:
        with eng.connect() as conn:
            rows = conn.execute(sa.select(CANARIES).where(CANARIES.c.hospital_id == hospital_id)
                                .order_by(CANARIES.c.canary_id.desc())).all()
        return [_row(r) for r in rows]
    finally:
        if owned:
            eng.dispose()


def active_canary(store_or_url: Any, hospital_id: str) -> Canary | None:
    return next((c for c in canaries(store_or_url, hospital_id) if c.active), None)


def _commit(eng: sa.Engine, owned: bool, tx: Any) -> Canary:
    """Run ``tx`` (returning a canary id) in a retried transaction and read the canary back."""
    from engine.governance.audit_store import run_tx

    try:
        cid = run_tx(eng, tx)
        with eng.connect() as conn:
            return _row(conn.execute(sa.select(CANARIES).where(CANARIES.c.canary_id == cid)).one())
    finally:
        if owned:
            eng.dispose()


def start_canary(store_or_url: Any, hospital_id: str, h: Hospital, scope: CanaryScope, go_live: Any, user: Any,
                 note: str = "") -> Canary:
    """Record an active canary (role: may publish), audited as ``canary_start``; refused while one is active."""
    from engine.governance.audit import append_entry
    from engine.governance.canonical import input_data_hash
    from engine.governance.errors import WorkflowError
    from engine.pilot.record import require_pilot

    require_pilot(user, "canary_start")
    scope.check(h)
    day = pd.Timestamp(go_live).normalize()
    eng, owned = _engine(store_or_url)

    def tx(conn: sa.Connection) -> int:
        cur = conn.execute(sa.select(CANARIES).where(CANARIES.c.hospital_id == hospital_id, CANARIES.c.state == "active")
                           .with_for_update()).first()
        if cur is not None:
            raise WorkflowError(f"canary {cur.canary_id} ({_row(cur).scope.label()}) is already active for {hospital_id}: "
                                "stop it first")
        cid = conn.execute(CANARIES.insert().values(
            hospital_id=hospital_id, scope_kind=scope.kind, scope_json=json.dumps(list(scope.values)), go_live=day.date(),
            state="active", started_by=user.name, started_role=user.role, started_at=_now(), note=note or None,
        )).inserted_primary_key[0]
        e = append_entry(conn, hospital_id, "canary_start", user.name, user.role,
                         {"canary_id": int(cid), "scope_kind": scope.kind, "scope": list(scope.values),
                          "go_live": f"{day:%Y-%m-%d}", "input_data_hash": input_data_hash(h), "note": note,
                          "control": "every other case keeps the rules-based block schedule"})
        conn.execute(CANARIES.update().where(CANARIES.c.canary_id == cid).values(start_entry_id=e.entry_id))
        return int(cid)

    return _commit(eng, owned, tx)


def stop_canary(store_or_url: Any, hospital_id: str, user: Any, reason: str) -> Canary:
    """The one-click stop (role: may roll back): the canary's cases return to the rules schedule from now on;
    audited as ``canary_stop`` with the reason. WorkflowError when no canary is active."""
    from engine.governance.audit import append_entry
    from engine.governance.audit_store import Retry
    from engine.governance.errors import WorkflowError
    from engine.pilot.record import require_pilot

    require_pilot(user, "canary_stop")
    if not str(reason or "").strip():
        raise ValueError("reason: say why the canary is stopped (it goes to the audit log)")
    eng, owned = _engine(store_or_url)

    def tx(conn: sa.Connection) -> int:
        cur = conn.execute(sa.select(CANARIES).where(CANARIES.c.hospital_id == hospital_id, CANARIES.c.state == "active")
                           .with_for_update()).first()
        if cur is None:
            raise WorkflowError(f"no canary is active for {hospital_id}: nothing to stop")
        c = _row(cur)
        e = append_entry(conn, hospital_id, "canary_stop", user.name, user.role,
                         {"canary_id": c.canary_id, "scope_kind": c.scope.kind, "scope": list(c.scope.values),
                          "go_live": f"{c.go_live:%Y-%m-%d}", "reason": reason.strip(),
                          "returns_to": "the rules-based block schedule for every case"})
        res = conn.execute(CANARIES.update().where(CANARIES.c.canary_id == c.canary_id, CANARIES.c.state == "active")
                           .values(state="stopped", stopped_by=user.name, stopped_at=_now(), stop_reason=reason.strip(),
                                   stop_entry_id=e.entry_id))
        if res.rowcount != 1:
            raise Retry()
        return c.canary_id

    return _commit(eng, owned, tx)


# ------------------------------------------------------------------ outcomes and the estimate


def daily_outcomes(h: Hospital, scope: CanaryScope, start: Any = None, end: Any = None) -> pd.DataFrame:
    """One row per weekday with completed cases and per group (``canary``/``control``): date, group and
    :data:`METRICS`, from the records (see the module docstring for each definition)."""
    from engine.pilot.monitor import pacu_holds  # the one PACU-hold estimate (planned-vs-actual)

    c = h.cases[(h.cases["status"] == "completed") & h.cases["wheels_in"].notna() & h.cases["wheels_out"].notna()]
    if start is not None:
        c = c[c["surgery_date"] >= pd.Timestamp(start)]
    if end is not None:
        c = c[c["surgery_date"] <= pd.Timestamp(end)]
    c = c[c["surgery_date"].dt.day_of_week < 5]
    cols = ["date", "group", *METRICS]
    if not len(c):
        return pd.DataFrame(columns=cols)
    close = h.rooms.set_index("room_id")["close_time"].map(hhmm_to_minutes)
    day0 = c["surgery_date"]
    w_in = (c["wheels_in"] - day0).dt.total_seconds() / 60
    w_out = (c["wheels_out"] - day0).dt.total_seconds() / 60
    cl = c["room_id"].map(close).fillna(np.inf)
    over = (w_out - np.maximum(w_in, cl)).clip(lower=0).fillna(0.0)
    beds = h.staffing.set_index("date")["pacu_beds"] if "pacu_beds" in h.staffing.columns else pd.Series(dtype=float)
    hold = pd.Series(0.0, index=c.index)
    for d, g in c.groupby("surgery_date"):
        n = int(beds.get(d, np.nan)) if pd.notna(beds.get(d, np.nan)) else max(1, len(g))
        hold.loc[g.index] = pacu_holds(w_out.loc[g.index].to_numpy(float), float(h.settings.pacu_minutes), n)
    frame = pd.DataFrame({"date": day0, "group": np.where(scope.mask(h, c), "canary", "control"),
                          "overtime_minutes": over, "pacu_hold_minutes": hold, "cases_done": 1.0})
    out = frame.groupby(["date", "group"], as_index=False)[list(METRICS)].sum()
    # a day where one group ran nothing still counts for it (zeros), so the gap is defined every day
    full = pd.MultiIndex.from_product([sorted(out["date"].unique()), ["canary", "control"]], names=["date", "group"])
    return out.set_index(["date", "group"]).reindex(full, fill_value=0.0).reset_index()[cols]


def _welch(a: np.ndarray, b: np.ndarray, level: float) -> tuple[float, float, float, float]:
    """(mean(a) - mean(b), low, high, standard error) by Welch's t interval."""
    from scipy import stats

    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    est, se = float(a.mean() - b.mean()), math.sqrt(va + vb)
    if se == 0:
        return est, est, est, 0.0
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(stats.t.ppf((1 + level) / 2, df)) * se
    return est, est - half, est + half, se


def did(outcomes: pd.DataFrame, go_live: Any, params: DidParams | None = None, end: Any = None) -> dict[str, Any]:
    """Difference-in-differences of each metric (canary minus control, after minus before ``go_live``).

    ``outcomes`` is :func:`daily_outcomes`' frame. The pre-period is the ``params.pre_weeks`` weeks
    before go-live, the post-period go-live to ``end`` (default: the last day with outcomes).
    ValueError when either period has fewer than 2 days.
    """
    params = params or DidParams()
    go = pd.Timestamp(go_live).normalize()
    wide = outcomes.pivot_table(index="date", columns="group", values=list(METRICS), aggfunc="sum").sort_index()
    gap = pd.DataFrame({m: wide[(m, "canary")] - wide[(m, "control")] for m in METRICS}) if len(wide) else pd.DataFrame(columns=METRICS)
    pre = gap[(gap.index < go) & (gap.index >= go - pd.Timedelta(weeks=params.pre_weeks))]
    post = gap[gap.index >= go]
    if end is not None:
        post = post[post.index <= pd.Timestamp(end)]
    if len(pre) < 2 or len(post) < 2:
        raise ValueError(f"go_live: the estimate needs at least 2 weekdays with completed cases before and after "
                         f"{go:%Y-%m-%d} (found {len(pre)} in the {params.pre_weeks} weeks before, {len(post)} from it on)")
    est: dict[str, Any] = {}
    for m in METRICS:
        d, lo, hi, se = _welch(post[m].to_numpy(float), pre[m].to_numpy(float), params.level)
        favours = "canary" if (d < 0 if m in LOWER_IS_BETTER else d > 0) else "control" if d != 0 else "neither"
        clear = lo > 0 or hi < 0
        est[m] = {"did": d, "ci_lo": lo, "ci_hi": hi, "se": se, "level": params.level,
                  "pre_gap_mean": float(pre[m].mean()), "post_gap_mean": float(post[m].mean()),
                  "favours": favours if clear else "neither (the interval contains 0)"}
    weekly = pre.groupby(pre.index.to_period("W")).mean()
    return {"go_live": f"{go:%Y-%m-%d}", "n_pre_days": int(len(pre)), "n_post_days": int(len(post)),
            "pre_from": f"{pre.index.min():%Y-%m-%d}", "post_to": f"{post.index.max():%Y-%m-%d}", "estimates": est,
            "pre_weekly_gap": [{"week": str(w), **{m: float(r[m]) for m in METRICS}} for w, r in weekly.iterrows()]}


def canary_report(h: Hospital, canary: Canary, params: DidParams | None = None) -> dict[str, Any]:
    """The canary's record, its groups' daily outcomes and the difference-in-differences estimates."""
    params = params or DidParams()
    end = pd.Timestamp(canary.stopped_at).normalize() if canary.stopped_at is not None else None
    start = canary.go_live - pd.Timedelta(weeks=params.pre_weeks)
    out = daily_outcomes(h, canary.scope, start, end)
    est = did(out, canary.go_live, params, end)
    lines = []
    for m, e in est["estimates"].items():
        lines.append(f"{m}: {e['did']:+.1f} a day [{e['ci_lo']:+.1f}, {e['ci_hi']:+.1f}] -> favours {e['favours']}")
    n_canary = int(canary.scope.mask(h, h.cases[h.cases["status"] == "completed"]).sum())
    return {"canary": canary.to_dict(), "params": {"pre_weeks": params.pre_weeks, "level": params.level}, **est,
            "n_canary_cases": n_canary, "daily": _records(out), "summary": lines}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    d = df.copy()
    d["date"] = pd.to_datetime(d["date"]).dt.strftime("%Y-%m-%d")
    return d.to_dict(orient="records")


# ------------------------------------------------------------------ the day's schedule under a canary


@dataclass
class CanaryPlan:
    """A day's schedule: ``source`` is ``rules`` (no active canary) or ``canary`` (optimizer for the canary's cases)."""

    schedule: pd.DataFrame
    source: str
    canary_id: int | None = None
    n_canary_cases: int = 0
    notes: list[str] = field(default_factory=list)
    result: Any = None


def canary_plan(h: Hospital, forecasts: pd.DataFrame, day: Any, canary: Canary | None, params: Any = None) -> CanaryPlan:
    """The day's schedule under ``canary`` (see the module docstring); the rules schedule when it is None or stopped.

    The canary's cases are those the rules schedule puts in its rooms or sites, or of its service
    lines. When the optimizer cannot keep the control cases where they are (locks that cannot hold,
    a solver failure) it falls back to the rules, and the note says so.
    """
    from engine.governance.fallback import rules_schedule
    from engine.plan import PlanParams, plan

    day = pd.Timestamp(day).normalize()
    rules = rules_schedule(h, day, 1, forecasts=forecasts)
    if canary is None or not canary.active or day < canary.go_live:
        why = "no canary is active" if canary is None or not canary.active else f"the canary goes live on {canary.go_live:%Y-%m-%d}"
        return CanaryPlan(rules.schedule, "rules", None if canary is None else canary.canary_id, 0, [f"rules schedule: {why}"], rules)
    s = rules.schedule
    sched = s[s["status"] == "scheduled"]
    in_canary = canary.scope.mask(h, sched)
    locks = sched.loc[~in_canary, ["case_id", "date", "room_id", "start"]]
    p = params or PlanParams(days=1)
    res = plan(h, forecasts, day, p, locks=locks.reset_index(drop=True))
    notes = [f"optimizer for {int(in_canary.sum())} canary case(s) ({canary.scope.label()}); "
             f"{len(locks)} control case(s) locked where the rules put them"]
    if res.banner is not None:
        notes.append(f"the optimizer fell back to the rules: {res.banner}")
    return CanaryPlan(res.schedule, "canary", canary.canary_id, int(in_canary.sum()), notes, res)
