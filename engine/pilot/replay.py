"""Retrospective replay (issue 19): "had we used it last month...".

Each past day is planned as of the day before (its elective cases, completed or cancelled, treated as
booked; forecasts from a model trained once on data before the first replayed day, so nothing after a
day is seen when it is planned) by the optimizer and by the rules, and the hospital's real schedule is
kept as ``actual``. All three are then run on what happened (``engine.sim.replay_week``): actual
durations, patient and booking cancellations and the day's real add-ons; only what history cannot say
(turnovers, PACU stays and another schedule's knock-on delays) is drawn, ``reps`` times on common
random numbers. ``observed`` adds what the hospital's own records say for the real schedule (overtime
from wheels-out against close, cases done), a check on the simulated ``actual``.

The report gives each policy's metrics as ``{mean, total}`` over the days and the paired day-by-day
differences optimized minus rules with t intervals (``paired``), and each of optimized and rules minus
``actual`` the same way (``paired_vs_actual``).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.hospital import Hospital
from engine.timeutil import elapsed_minutes, hhmm_to_minutes

log = logging.getLogger(__name__)

POLICY_NAMES = {"optimized": "optimized", "rules": "rules", "as_booked": "actual"}
# metric in the report -> how it is formed from the simulation's per-replication columns
REPORT_METRICS = ("overtime_minutes", "pacu_hold_minutes", "cases_done", "utilization", "late_finish_share",
                  "end_delay_minutes")
LOWER_IS_BETTER = {"overtime_minutes", "pacu_hold_minutes", "late_finish_share", "end_delay_minutes"}


@dataclass(frozen=True)
class ReplayParams:
    """Replay settings. ``days``: replayed days (days with elective history, weekends skipped);
    ``reps``: draws of what history cannot say, per day; ``iterations``: CatBoost iterations of the one
    leak-free training; ``time_limit_s``: the optimizer's limit per day; ``level``: interval level."""

    days: int = 20
    reps: int = 30
    seed: int = 0
    iterations: int = 150
    time_limit_s: float = 20.0
    level: float = 0.95

    def __post_init__(self) -> None:
        for name, lo in (("days", 1), ("reps", 1), ("iterations", 10)):
            if int(getattr(self, name)) < lo:
                raise ValueError(f"{name} must be >= {lo}, got {getattr(self, name)}")
        if self.days > 120:
            raise ValueError(f"days must be <= 120, got {self.days}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0, got {self.time_limit_s}")
        if not 0.5 < self.level < 1:
            raise ValueError(f"level must be within (0.5, 1), got {self.level}")


@dataclass
class ReplayReport:
    dates: list[pd.Timestamp]
    per_day: pd.DataFrame  # date, policy, metric columns (one row per day and policy)
    paired: pd.DataFrame  # metric, diff, ci_lo, ci_hi, better_days, worse_days, n_days
    observed: pd.DataFrame  # date, overtime_minutes, cases_done (from the hospital's records)
    model: dict[str, Any]
    params: ReplayParams
    fallback_days: list[str] = field(default_factory=list)  # days the optimizer's schedule was the rules' own
    seconds: float = 0.0

    def policy_summary(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for pol, g in self.per_day.groupby("policy", sort=False):
            out[str(pol)] = {m: {"mean": _f(g[m].mean()), "total": _f(g[m].sum())} for m in REPORT_METRICS}
        return out

    def verdict(self) -> str:
        """One sentence on overtime and cases: where the interval excludes zero, and which way."""
        p = self.paired.set_index("metric")
        parts = []
        for m, word in (("overtime_minutes", "overtime"), ("cases_done", "cases done"), ("pacu_hold_minutes", "PACU holds")):
            if m not in p.index:
                continue
            r = p.loc[m]
            if not (np.isfinite(r["ci_lo"]) and np.isfinite(r["ci_hi"])):  # one day: no paired interval
                parts.append(f"{r['diff']:+.1f} a day on {word} (one day gives no interval: replay more days to judge)")
            elif r["ci_lo"] > 0 or r["ci_hi"] < 0:
                better = (r["diff"] < 0) == (m in LOWER_IS_BETTER)
                parts.append(f"{'better' if better else 'worse'} on {word} ({r['diff']:+.1f} a day, "
                             f"{self.params.level:.0%} interval {r['ci_lo']:+.1f} to {r['ci_hi']:+.1f})")
            else:
                parts.append(f"not distinguishable from the rules on {word} (interval {r['ci_lo']:+.1f} to {r['ci_hi']:+.1f})")
        return f"Over {len(self.dates)} replayed days the optimizer was " + "; ".join(parts) + "."

    def to_json(self) -> dict[str, Any]:
        obs = self.observed
        return {
            "from": f"{self.dates[0]:%Y-%m-%d}", "to": f"{self.dates[-1]:%Y-%m-%d}", "n_days": len(self.dates),
            "dates": [f"{d:%Y-%m-%d}" for d in self.dates],
            "policies": self.policy_summary(),
            "paired": _paired_json(self.paired, "rules", self.params.level),
            # each policy against what really happened (the real schedule run the same way), same days
            "paired_vs_actual": {pol: _paired_json(paired_over_days(self.per_day, pol, "actual", self.params.level), "actual",
                                                   self.params.level) for pol in ("optimized", "rules")},
            "observed": {m: {"mean": _f(obs[m].mean()), "total": _f(obs[m].sum())} for m in ("overtime_minutes", "cases_done")},
            "per_day": [{k: (f"{v:%Y-%m-%d}" if isinstance(v, pd.Timestamp) else _f(v) if isinstance(v, (float, np.floating)) else v)
                         for k, v in rec.items()} for rec in self.per_day.to_dict("records")],
            "model": self.model, "params": asdict(self.params), "optimizer_fallback_days": self.fallback_days,
            "verdict": self.verdict(), "seconds": round(self.seconds, 1),
            "method": ("each day planned as of the day before with forecasts trained before the first day; run on the "
                       "day's actual durations, cancellations and add-ons; turnovers and PACU stays drawn "
                       f"{self.params.reps} times (common random numbers); intervals are t intervals over days"),
        }


def _paired_json(paired: pd.DataFrame, baseline: str, level: float) -> dict[str, dict[str, Any]]:
    return {r.metric: {"baseline": baseline, "diff_mean": _f(r.diff), "ci_lo": _f(r.ci_lo), "ci_hi": _f(r.ci_hi),
                       "level": level, "better_days": int(r.better_days), "worse_days": int(r.worse_days),
                       "n_days": int(r.n_days)} for r in paired.itertuples()}


def _f(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def replay_dates(hospital: Hospital, start, n: int) -> list[pd.Timestamp]:
    """The first ``n`` weekdays from ``start`` with elective history, all before the hospital's as-of date."""
    start = pd.Timestamp(start).normalize()
    as_of = hospital.as_of()
    if start >= as_of:
        raise InputError(f"--from {start:%Y-%m-%d} is not in the past (the hospital is as of {as_of:%Y-%m-%d})",
                         file="command line")
    c = hospital.cases
    el = c[(c["urgency"].fillna("elective") == "elective") & c["status"].isin(["completed", "cancelled"])]
    have = sorted(d for d in pd.to_datetime(el["surgery_date"]).dt.normalize().unique()
                  if start <= d < as_of and pd.Timestamp(d).weekday() < 5)
    if len(have) < n:
        raise InputError(f"only {len(have)} weekdays with elective history from {start:%Y-%m-%d} to {as_of:%Y-%m-%d}; "
                         f"--days {n} needs {n} (choose an earlier --from or fewer days)", file="command line")
    return [pd.Timestamp(d) for d in have[:n]]


def weekdays_from(start, n: int) -> list[pd.Timestamp]:
    """The first ``n`` weekdays (Monday to Friday) from ``start`` on."""
    d, out = pd.Timestamp(start).normalize(), []
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += pd.Timedelta(days=1)
    return out


def same_schedule(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """True when two schedules place every case alike (room, start, status): the optimizer returned the rules'."""
    cols = ["case_id", "room_id", "start", "status"]
    x = a[cols].astype(str).sort_values("case_id").reset_index(drop=True)
    y = b[cols].astype(str).sort_values("case_id").reset_index(drop=True)
    return x.equals(y)


def observed_day(hospital: Hospital, day: pd.Timestamp) -> dict[str, float]:
    """What the records say for ``day``: overtime (each room's last wheels-out past its close, the real
    elapsed minutes in the hospital's time zone across a daylight-saving night) and cases done."""
    c = hospital.cases
    done = c[(c["surgery_date"] == day) & (c["status"] == "completed") & c["wheels_out"].notna()]
    last = done.groupby("room_id")["wheels_out"].max()
    close = hospital.rooms.set_index("room_id")["close_time"].map(hhmm_to_minutes).reindex(last.index)
    close_t = pd.Timestamp(day).normalize() + pd.to_timedelta(close, unit="min")
    over = elapsed_minutes(close_t, last, hospital.settings.timezone).clip(lower=0).fillna(0.0)
    return {"overtime_minutes": float(over.sum()), "cases_done": float(len(done))}


def train_before(hospital: Hospital, first_day: pd.Timestamp, iterations: int):
    """One leak-free forecaster: trained on cases before ``first_day`` only (few iterations, no tuning;
    the hospital's time zone and declared extra features, as ``train_and_register`` would take)."""
    from engine.forecast import ForecastParams, Forecaster
    from engine.forecast.registry import hospital_params

    params = hospital_params(hospital, ForecastParams(iterations=iterations, cancel_iterations=max(10, iterations // 2),
                                                      tune=False))
    t0 = time.perf_counter()
    fc = Forecaster(params).fit(hospital.cases, train_until=first_day, rooms=hospital.rooms)
    hist = hospital.cases[hospital.cases["surgery_date"] < first_day]
    return fc, {"trained_until": f"{first_day:%Y-%m-%d}", "iterations": iterations, "n_train_cases": int(len(hist)),
                "fit_seconds": round(time.perf_counter() - t0, 1), "leak_free": True}


def _day_metrics(per_rep: pd.DataFrame) -> dict[str, float]:
    m = per_rep.mean(numeric_only=True)
    return {"overtime_minutes": float(m["overtime_minutes"]), "pacu_hold_minutes": float(m["pacu_hold_minutes"]),
            "cases_done": float(m["elective_cases_run"] + m["addon_cases_run"]), "utilization": float(m["utilization"]),
            "late_finish_share": float(1 - m["on_time_rate"]) if pd.notna(m.get("on_time_rate")) else float("nan"),
            "end_delay_minutes": float(m["end_delay_minutes"])}


def paired_over_days(per_day: pd.DataFrame, policy: str = "optimized", baseline: str = "rules",
                     level: float = 0.95) -> pd.DataFrame:
    """Day-by-day differences ``policy - baseline`` per metric with a t interval over the days."""
    from scipy import stats

    a = per_day[per_day["policy"] == policy].set_index("date")
    b = per_day[per_day["policy"] == baseline].set_index("date")
    rows = []
    for m in REPORT_METRICS:
        d = (a[m] - b[m]).dropna().to_numpy(float)
        k = len(d)
        if not k:
            continue
        half = stats.t.ppf((1 + level) / 2, k - 1) * d.std(ddof=1) / math.sqrt(k) if k > 1 else float("nan")
        better = (d < 0) if m in LOWER_IS_BETTER else (d > 0)
        worse = (d > 0) if m in LOWER_IS_BETTER else (d < 0)
        rows.append({"metric": m, "diff": d.mean(), "ci_lo": d.mean() - half, "ci_hi": d.mean() + half,
                     "better_days": int(better.sum()), "worse_days": int(worse.sum()), "n_days": k})
    return pd.DataFrame(rows, columns=["metric", "diff", "ci_lo", "ci_hi", "better_days", "worse_days", "n_days"])


def replay(hospital: Hospital, start, params: ReplayParams | None = None, forecaster=None,
           progress: Callable[[float, str], None] | None = None) -> ReplayReport:
    """Replay ``params.days`` past weekdays from ``start`` (see the module docstring).

    ``forecaster`` (already trained on data before the first day) skips the training; else one is
    trained here on cases before the first replayed day.
    """
    from engine.plan import PlanParams
    from engine.sim import replay_week

    p = params or ReplayParams()
    step = progress or (lambda f, t: None)
    t0 = time.perf_counter()
    dates = replay_dates(hospital, start, p.days)
    if forecaster is None:
        step(0.0, f"training the forecasts on cases before {dates[0]:%Y-%m-%d}")
        forecaster, model = train_before(hospital, dates[0], p.iterations)
    else:
        model = {"trained_until": None, "given": True}
    plan_params = PlanParams(days=1, solver="highs", time_limit_s=p.time_limit_s)
    rows, obs, fallback = [], [], []
    for i, d in enumerate(dates):
        step((i + 0.5) / (len(dates) + 1), f"replaying {d:%Y-%m-%d} ({i + 1}/{len(dates)})")
        rep = replay_week(hospital, d, forecaster, days=1, reps=p.reps, seed=p.seed, plan_params=plan_params,
                          policies=tuple(POLICY_NAMES))
        if same_schedule(rep.schedules["optimized"], rep.schedules["rules"]):
            fallback.append(f"{d:%Y-%m-%d}")
        for pol, res in rep.comparison.results.items():
            rows.append({"date": d, "policy": POLICY_NAMES[pol], **_day_metrics(res.per_rep)})
        obs.append({"date": d, **observed_day(hospital, d)})
    per_day = pd.DataFrame(rows)
    step(1.0, "done")
    return ReplayReport(dates, per_day, paired_over_days(per_day, level=p.level), pd.DataFrame(obs), model, p,
                        fallback, time.perf_counter() - t0)


def audited_replay(store_or_url: Any, hospital_id: str, hospital: Hospital, start, params: ReplayParams | None = None,
                   actor: tuple[str, str] | None = None, forecaster=None,
                   progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    """:func:`replay` and its audit entry (kind ``replay``: data hash, model, parameters, actor, the paired
    results); the report's JSON with ``audit_seq``. The key is checked before the work."""
    from engine.governance.audit import audit_key
    from engine.pilot.record import record

    audit_key()
    p = params or ReplayParams()
    out = replay(hospital, start, p, forecaster=forecaster, progress=progress).to_json()
    model = out["model"]
    out["audit_seq"] = record(store_or_url, hospital_id, "replay", hospital=hospital, actor=actor,
                              model_version=(f"trained before {model['trained_until']} ({p.iterations} iterations)"
                                             if model.get("trained_until") else "given by the caller"),
                              params=p, summary={"command": "replay", "from": out["from"], "to": out["to"],
                                                 "n_days": out["n_days"], "paired": out["paired"],
                                                 "optimizer_fallback_days": out["optimizer_fallback_days"]}).seq
    return out
