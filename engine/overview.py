"""Leadership overview: headline KPIs with trends from history, the trade-off frontier (cases
scheduled against P95 overtime, the rules schedule a point on it), and a plain-language list of
the coming week's biggest risks."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.hospital import Hospital
from engine.plan import PlanParams, plan
from engine.plan.planner import addon_reserve_minutes, needs_addon_reserve
from engine.timeutil import elapsed_minutes, hhmm_to_minutes
from engine.plan.views import pacu_occupancy
from engine.sim import compare_policies


def history_kpis(h: Hospital, freq: str = "W-SUN", by: str | None = None) -> pd.DataFrame:
    """Per period (and group: ``site`` or ``service_line``): prime-time utilization, overtime minutes,
    cancellation rate, add-on cases, on-time first-case starts, cases."""
    c = h.cases[h.cases["surgery_date"] < h.as_of().normalize()].copy()
    # Periods are labelled by their first day (weeks start on Monday with the default W-SUN).
    c["period"] = c["surgery_date"].dt.to_period(freq).dt.start_time
    rooms = h.rooms.set_index("room_id")
    c["site"] = c["room_id"].map(rooms["site"]).fillna(c.get("site"))
    done = c[(c["status"] == "completed") & c["wheels_in"].notna()].copy()
    ps, pe = h.settings.prime_window
    day = done["surgery_date"]
    a = np.maximum(done["wheels_in"], day + pd.to_timedelta(ps, unit="min"))
    b = np.minimum(done["wheels_out"], day + pd.to_timedelta(pe, unit="min"))
    done["prime_minutes"] = ((b - a).dt.total_seconds() / 60).clip(lower=0)
    tz = h.settings.timezone  # overtime past close is real elapsed time across a daylight-saving night
    close = done["room_id"].map(rooms["close_time"]).fillna("17:00").map(hhmm_to_minutes)
    # Overtime per room-day: the last wheels-out past the room's close.
    done["close_t"] = day + pd.to_timedelta(close, unit="min")
    rd = done.groupby(["surgery_date", "room_id"]).agg(last_out=("wheels_out", "max"), close_t=("close_t", "first"),
                                                        first_in=("wheels_in", "min"), first_sched=("scheduled_start", "min"),
                                                        site=("site", "first"), period=("period", "first"))
    rd["overtime"] = elapsed_minutes(rd["close_t"], rd["last_out"], tz).clip(lower=0)
    rd["on_time"] = ((rd["first_in"] - rd["first_sched"]).dt.total_seconds() / 60 <= 5).where(rd["first_sched"].notna())
    keys = ["period"] + ([by] if by else [])
    g_done = done.groupby(keys)
    out = pd.DataFrame({
        "prime_minutes": g_done["prime_minutes"].sum(),
        "cases": g_done.size(),
        "addon_cases": done[done["urgency"].isin(["urgent", "emergent"])].groupby(keys).size(),
    })
    elective = c[c["urgency"] == "elective"]
    ge = elective.groupby(keys)
    out["cancellation_rate"] = ge.apply(lambda d: float((d["status"] == "cancelled").mean()), include_groups=False)
    rdr = rd.reset_index()
    if by == "service_line":
        # Room-days belong to sites, not service lines: overtime per service line is each case's part past close.
        done["ot_case"] = elapsed_minutes(np.maximum(done["wheels_in"], done["close_t"]), done["wheels_out"], tz).clip(lower=0)
        out["overtime_minutes"] = done.groupby(keys)["ot_case"].sum()
        out["on_time_first_case"] = np.nan
    else:
        grd = rdr.groupby(keys)
        out["overtime_minutes"] = grd["overtime"].sum()
        out["on_time_first_case"] = grd["on_time"].mean()
    staff = h.staffing.set_index("date")["staffed_rooms"]
    avail = staff.groupby(staff.index.to_period(freq).start_time).sum() * (pe - ps)
    if by is None:
        out["prime_time_utilization"] = out["prime_minutes"] / avail.reindex(out.index).replace(0, np.nan)
    else:
        out["prime_time_utilization"] = np.nan
        out["prime_time_share"] = out["prime_minutes"] / out.groupby(level=0)["prime_minutes"].transform("sum")
    out["addon_cases"] = out["addon_cases"].fillna(0)
    return out.reset_index()


# Trade-off points of the frontier: the current plan's risk weights (overtime and service level per
# minute) times these factors, against a deferral's fixed cost.
FRONTIER_FACTORS = (0.25, 4.0, 16.0)
CURRENT, RULES = "current plan", "rules"


def frontier(h: Hospital, forecasts: pd.DataFrame, start, base: PlanParams | None = None,
             factors: tuple[float, ...] = FRONTIER_FACTORS, reps: int = 200, seed: int = 0,
             plans: dict | None = None, scenario: str = "normal", addon_forecast: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cases scheduled against P95 overtime: the current plan (``base``), the rules schedule and plans
    at other trade-offs between deferring a case and risking overtime, all simulated on the same
    random days (one ``compare_policies`` run, the rules schedule its baseline).

    A trade-off point multiplies the current plan's risk weights per minute (``w_overtime`` and the
    service-level weight, see ``kpis['service_level']``) by a factor and drops the soft floor that
    keeps the rules' case count: above 1 it may defer cases to cut overtime, below 1 it schedules
    more at more risk. ``plans`` may hold the ``current plan`` and ``rules`` PlanResults (the pages'
    cached plans), so the frontier shows the very schedules the verdict compares.

    Bases: cases scheduled and deferred are planned; utilization, mean and P95 overtime and PACU
    hold are simulated over ``reps`` days; ``p95_overtime_lo/hi`` is the chance band of a point's P95
    (90% bootstrap), ``p95_vs_rules_lo/hi`` the paired 95% interval of its P95 minus the rules'
    (the same random days); ``expected_overtime_minutes`` is the plan's own (planned mean)."""
    base = base or PlanParams()
    if base.solver == "rules":
        base = base.with_(solver=PlanParams().solver)
    plans = dict(plans or {})
    # Every optimizer point plans the same dates: one add-on reserve for all of them (none when
    # every plan is given).
    planning = CURRENT not in plans or bool(set(factors) - {1.0})
    reserve = addon_reserve_minutes(h, start, base.days) if planning and needs_addon_reserve(base) else None
    if CURRENT not in plans:
        plans[CURRENT] = plan(h, forecasts, start, base, addon_reserve=reserve)
    if RULES not in plans:
        plans[RULES] = plan(h, forecasts, start, base.with_(solver="rules"))
    sl = plans[CURRENT].kpis.get("service_level") or {}
    w_sl = base.w_service_level if base.w_service_level is not None else sl.get("w_service_level_per_minute")
    points = {RULES: (None, plans[RULES]), CURRENT: (1.0, plans[CURRENT])}
    for f in sorted(set(factors) - {1.0}):
        p = base.with_(w_overtime=base.w_overtime * f, keep_rules_count=False, label=f"risk x{f:g}",
                       w_service_level=None if w_sl is None else float(w_sl) * f)
        points[f"risk x{f:g}"] = (f, plan(h, forecasts, start, p, addon_reserve=reserve))
    cmp = compare_policies(h, {k: r.schedule for k, (_, r) in points.items()}, forecasts, scenario, reps, seed,
                           addon_forecast=addon_forecast, baseline=RULES)
    pd95 = cmp.paired[(cmp.paired["metric"] == "overtime_minutes") & (cmp.paired["statistic"] == "p95")].set_index("policy") \
        if len(cmp.paired) else pd.DataFrame(columns=["ci_lo", "ci_hi"])
    rows = []
    for name, (f, res) in points.items():
        pr = cmp.results[name].per_rep
        ot = pr["overtime_minutes"].to_numpy(dtype=float)
        lo, hi = _p95_interval(ot, seed)
        k = res.kpis
        rows.append({"point": name, "risk_factor": f, "cases_scheduled": int(k["n_scheduled"]),
                     "deferred_cases": int(k["n_deferred"]), "p95_overtime_minutes": float(np.percentile(ot, 95)),
                     "p95_overtime_lo": lo, "p95_overtime_hi": hi,
                     "p95_vs_rules_lo": float(pd95.at[name, "ci_lo"]) if name in pd95.index else 0.0,
                     "p95_vs_rules_hi": float(pd95.at[name, "ci_hi"]) if name in pd95.index else 0.0,
                     "mean_overtime_minutes": float(ot.mean()),
                     "mean_pacu_hold_minutes": float(pr["pacu_hold_minutes"].mean()),
                     "prime_time_utilization": float(pr["utilization"].mean()),
                     "expected_overtime_minutes": float(k["expected_overtime_minutes"]),
                     "solver": k["solver"], "fallback_used": res.banner is not None, "current_policy": name == CURRENT})
    return pd.DataFrame(rows)


def _p95_interval(values: np.ndarray, seed: int, n_boot: int = 400) -> tuple[float, float]:
    """A 90% bootstrap interval of the P95 of ``values``: how much the P95 of a few hundred simulated
    days moves by chance. Every frontier point is simulated on the same random days (common random
    numbers, one seed), so points differ by their schedules, but a P95 over 200 days still rests
    on its 10 worst days: a difference inside these intervals is not a trend."""
    if not len(values):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boot = np.percentile(rng.choice(values, size=(n_boot, len(values)), replace=True), 95, axis=1)
    return float(np.percentile(boot, 5)), float(np.percentile(boot, 95))


def week_risks(h: Hospital, forecasts: pd.DataFrame, start, days: int = 5, params: PlanParams | None = None,
               plans: dict | None = None) -> list[dict[str, Any]]:
    """Plain-language risks of the coming days from each day's plan: PACU binding, rooms likely to
    run past close, staffing below the block schedule, deferrals, high cancellation risk.

    ``plans`` (date -> PlanResult) are the plans to read, e.g. the very plans the Schedule page
    shows, so both pages give the same deferrals and P80 finishes; a day without one is planned
    here with ``params`` (default: the rules schedule, fast). Each risk names its basis."""
    params = params or PlanParams(solver="rules")
    plans = {pd.Timestamp(k).normalize(): v for k, v in (plans or {}).items()}
    start = pd.Timestamp(start).normalize()
    out = []
    st = h.staffing.set_index("date")
    for i in range(days):
        d = start + pd.Timedelta(days=i)
        if d.weekday() >= 5:
            continue
        res = plans.get(d) or plan(h, forecasts, d, params.with_(days=1))
        s = res.schedule
        label = f"{d:%A %d %b}"
        basis = f"{res.kpis['solver']} plan"
        sched = s[s["status"] == "scheduled"]
        if not len(s):
            continue
        beds = int(st["pacu_beds"].get(d, 0))
        curve = pacu_occupancy(s, d)
        if len(curve) and beds:
            bind = curve[curve["occupancy"] >= beds]
            # Full for at least 15 minutes: the cases whose recovery overlaps that window are at risk of a hold.
            if len(bind) >= 3:
                t0, t1 = bind["time"].min(), bind["time"].max() + pd.Timedelta(minutes=5)
                at_risk = int(((pd.to_datetime(sched["pacu_in"]) < t1) & (pd.to_datetime(sched["pacu_out"]) > t0)).sum())
                out.append({"date": d, "severity": 3, "risk": f"{label}: PACU beds bind {t0:%H:%M}-{t1:%H:%M}, "
                                                              f"{at_risk} cases at risk of a hold ({beds} beds)"})
        if len(sched):
            close = sched["room_id"].map(h.rooms.set_index("room_id")["close_time"]).map(hhmm_to_minutes)
            last = sched.assign(close=close).groupby("room_id").agg(end80=("end_p80", "max"), close=("close", "first"))
            past = ((pd.to_datetime(last["end80"]) - d).dt.total_seconds() / 60 - last["close"])
            for room, mins in past[past > 15].sort_values(ascending=False).head(3).items():
                out.append({"date": d, "severity": 2, "risk": f"{label}: {room} likely to run {mins:.0f} min past close "
                                                              f"(planned, its last case ending at P80; {basis})"})
        blocked_rooms = h.blocks[h.blocks["date"] == d]["room_id"].nunique()
        staffed = int(min(st["staffed_rooms"].get(d, 0), st["anesthesia_teams"].get(d, 0)))
        if staffed < blocked_rooms:
            out.append({"date": d, "severity": 3, "risk": f"{label}: {staffed} staffed rooms for {blocked_rooms} blocked rooms: "
                                                          f"{blocked_rooms - staffed} lists cannot run as blocked"})
        n_def = int((s["status"] == "deferred").sum())
        if n_def:
            out.append({"date": d, "severity": 2, "risk": f"{label}: {n_def} booked case{'s' if n_def != 1 else ''} "
                                                          f"{'do' if n_def != 1 else 'does'} not fit and would be deferred ({basis})"})
        f = forecasts.set_index("case_id")
        risky = [cid for cid in sched["case_id"] if cid in f.index and f.loc[cid, "cancel_prob"] >= 0.3]
        if risky:
            out.append({"date": d, "severity": 1, "risk": f"{label}: {len(risky)} cases with a day-of cancellation risk of 30% or more"})
    return sorted(out, key=lambda r: (-r["severity"], r["date"]))
