"""Running simulations: replications, policy comparisons, sweeps, historical replay (the *Runner*).

Replications are cut into blocks (``SimParams.chunk_reps``); each block is a pure function of
(instance, first replication, last replication), so a run gives identical numbers in-process and
on a Dask cluster (``scheduler_address``), and a policy comparison on one seed is paired: every
schedule meets the same random days.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from engine.errors import InputError
from engine.hospital import Hospital
from engine.sim import metrics as M
from engine.sim.draws import make_draws
from engine.contract import SCHEDULE_COLUMNS
from engine.sim.instance import Actuals, SimInstance, addon_model, build_instance, service_lines
from engine.timeutil import hhmm_to_minutes
from engine.sim.params import SimParams
from engine.sim.rng import rep_keys
from engine.sim.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)

POLICIES = ("optimized", "rules", "as_booked")


@dataclass
class SimResult:
    """Per-replication metrics, their summaries and the same per service line."""

    per_rep: pd.DataFrame
    summary: dict[str, dict[str, float | None]]
    by_service_line: pd.DataFrame  # service_line, metric, mean, p5, p50, p95, worst5_mean
    per_rep_by_service_line: dict[str, pd.DataFrame]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {m: self.summary[m] for m in M.CONTRACT_METRICS}
        out.update({m: self.summary[m] for m in M.EXTRA_METRICS})
        by: dict[str, Any] = {}
        for r in self.by_service_line.itertuples(index=False):
            by.setdefault(r.service_line, {})[r.metric] = {k: _num(getattr(r, k)) for k in ("mean", "p5", "p50", "p95", "worst5_mean")}
        out["by_service_line"] = by
        out.update(self.meta)
        return out


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


# ----------------------------------------------------------------------------- one block


def run_block(inst: SimInstance, seed: int, start: int, stop: int) -> dict[str, Any]:
    """Replications ``start..stop-1`` of every day: summed metrics per replication (and per line)."""
    if inst.params.engine == "simpy":
        from engine.sim.model import run_day
    else:
        from engine.sim.vector import run_day
    keys = rep_keys(seed, start, stop)
    n, G = stop - start, len(inst.service_lines)
    sums = {k: np.zeros(n) for k in M.SUMS}
    g = {k: np.zeros((n, G)) for k in M.SL_SUMS}
    bump = inst.params.addon_policy == "bump"
    for day in inst.days:
        d = make_draws(inst, day, keys)
        o = run_day(day, d, bump, inst.params.early_start_minutes)
        s, gs = M.day_sums(inst, day, d, o)
        for k in sums:
            sums[k] += s[k]
        for k in g:
            g[k] += gs[k]
    return {"start": start, "sums": sums, "by_sl": g}


def _blocks(reps: int, chunk: int) -> list[tuple[int, int]]:
    return [(a, min(reps, a + chunk)) for a in range(0, reps, chunk)]


def _run_tasks(tasks: list[tuple[SimInstance, int, int, int]], scheduler_address: str | None,
               timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Run (instance, seed, start, stop) blocks in-process, or on a Dask cluster when given its address."""
    if not scheduler_address:
        return [run_block(*t) for t in tasks]
    from distributed import Client

    try:
        client = Client(scheduler_address, timeout=timeout_s)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler_address!r}: {exc}", file="--scheduler") from exc
    with client:
        scattered: dict[int, Any] = {}
        futures = []
        for inst, seed, a, b in tasks:
            if id(inst) not in scattered:
                scattered[id(inst)] = client.scatter(inst, broadcast=True)
            futures.append(client.submit(run_block, scattered[id(inst)], seed, a, b, pure=False))
        try:
            return client.gather(futures)
        except ModuleNotFoundError as exc:
            raise RuntimeError(f"the Dask workers at {scheduler_address} cannot import this code ({exc}): start them "
                               "with the repository on PYTHONPATH (same version as the client)") from exc


def _assemble(inst: SimInstance, parts: list[dict[str, Any]], meta: dict[str, Any]) -> SimResult:
    parts = sorted(parts, key=lambda p: p["start"])
    sums = {k: np.concatenate([p["sums"][k] for p in parts]) for k in M.SUMS}
    g = {k: np.concatenate([p["by_sl"][k] for p in parts]) for k in M.SL_SUMS}
    per_rep = M.finish(sums)
    per_rep.insert(0, "rep", np.arange(len(per_rep)))
    sl_frames = M.finish_by_sl(g, inst.service_lines, sums["prime_avail"])
    rows = []
    for sl, df in sl_frames.items():
        for m in df.columns:
            rows.append({"service_line": sl, "metric": m, **M.describe(df[m], m in M.LOWER_IS_WORSE)})
    by = pd.DataFrame(rows, columns=["service_line", "metric", "mean", "p5", "p50", "p95", "worst5_mean"])
    return SimResult(per_rep, M.summarize(per_rep), by, sl_frames, meta)


# ----------------------------------------------------------------------------- public API


def _check_run(reps: int, seed: int) -> None:
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps <= 0:
        raise ValueError(f"reps must be an integer > 0, got {reps!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def _scenario(s: Scenario | str) -> Scenario:
    return s if isinstance(s, Scenario) else load_scenario(s)


def simulate(
    hospital: Hospital,
    schedule: pd.DataFrame,
    forecasts: pd.DataFrame,
    scenario: Scenario | str = "normal",
    reps: int = 1000,
    seed: int = 0,
    addon_forecast: pd.DataFrame | None = None,
    params: SimParams | None = None,
    actuals: Actuals | None = None,
    scheduler_address: str | None = None,
    instance: SimInstance | None = None,
) -> SimResult:
    """Simulate ``schedule`` ``reps`` times under ``scenario``; the same seed gives the same days.

    ``forecasts``: case_id, p50, p80, p95, cancel_prob for the scheduled cases.
    ``addon_forecast``: ``engine.forecast.forecast_addons`` output for the schedule's dates
    (computed from the hospital when None; an empty frame means no add-ons).
    ``actuals``: historical replay (durations, cancellations and add-ons that happened).
    """
    _check_run(reps, seed)
    params = params or SimParams()
    t0 = time.perf_counter()
    inst = instance or build_instance(hospital, schedule, forecasts, _scenario(scenario), addon_forecast, params, actuals)
    parts = _run_tasks([(inst, seed, a, b) for a, b in _blocks(reps, params.chunk_reps)], scheduler_address,
                       params.dask_timeout_s)
    meta = _meta(inst, reps, seed, time.perf_counter() - t0, scheduler_address)
    return _assemble(inst, parts, meta)


def _meta(inst: SimInstance, reps: int, seed: int, seconds: float, address: str | None) -> dict[str, Any]:
    return {
        "reps": int(reps), "seed": int(seed), "scenario": inst.scenario.name, "scenario_knobs": inst.scenario.to_dict()["knobs"],
        "engine": inst.params.engine, "addon_policy": inst.params.addon_policy,
        "dates": [f"{d.date:%Y-%m-%d}" for d in inst.days], "n_scheduled": inst.n_scheduled, "n_deferred": inst.n_deferred,
        "rooms_running": {f"{d.date:%Y-%m-%d}": int((~d.is_reserve).sum()) for d in inst.days},
        "reserve_rooms": {f"{d.date:%Y-%m-%d}": int(d.is_reserve.sum()) for d in inst.days},
        "pacu_beds": {f"{d.date:%Y-%m-%d}": int(d.pacu_beds) for d in inst.days},
        "notes": list(inst.notes), "seconds": round(seconds, 3), "dask": bool(address),
    }


# ----------------------------------------------------------------------------- policies


@dataclass
class PolicyComparison:
    """Several schedules simulated on the same random days, and their paired differences."""

    results: dict[str, SimResult]
    paired: pd.DataFrame  # policy, baseline, metric, statistic, policy_value, baseline_value, diff, ci_lo, ci_hi, better_share

    def table(self, statistic: str = "mean") -> pd.DataFrame:
        return pd.DataFrame({name: {m: r.summary[m][statistic] for m in M.CONTRACT_METRICS + M.EXTRA_METRICS}
                             for name, r in self.results.items()})


def paired_differences(a: pd.DataFrame, b: pd.DataFrame, metrics: Iterable[str], n_boot: int = 2000,
                       level: float = 0.95, random_state: int = 0) -> pd.DataFrame:
    """Paired differences a - b per metric: mean (t interval), P95 and worst-5% mean (paired bootstrap)."""
    rng = np.random.default_rng(random_state)
    n = len(a)
    idx = rng.integers(0, n, size=(n_boot, n))
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    rows = []
    for m in metrics:
        x, y = a[m].to_numpy(dtype=float), b[m].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if not len(x):
            continue
        dlt = x - y
        k = len(dlt)
        se = dlt.std(ddof=1) / math.sqrt(k) if k > 1 else float("nan")
        t = stats.t.ppf((1 + level) / 2, k - 1) if k > 1 else float("nan")
        lower_worse = m in M.LOWER_IS_WORSE
        better = (dlt > 0) if lower_worse else (dlt < 0)
        rows.append({"metric": m, "statistic": "mean", "policy_value": x.mean(), "baseline_value": y.mean(),
                     "diff": dlt.mean(), "ci_lo": dlt.mean() - t * se, "ci_hi": dlt.mean() + t * se,
                     "better_share": float(better.mean()), "worse_share": float(((dlt < 0) if lower_worse else (dlt > 0)).mean())})
        ii = idx if k == n else rng.integers(0, k, size=(n_boot, k))
        for stat in ("p95", "worst5_mean"):
            f = _stat_fn(stat, lower_worse)
            boots = f(x[ii]) - f(y[ii])
            rows.append({"metric": m, "statistic": stat, "policy_value": float(f(x[None])[0]), "baseline_value": float(f(y[None])[0]),
                         "diff": float(f(x[None])[0] - f(y[None])[0]), "ci_lo": float(np.percentile(boots, lo_q)),
                         "ci_hi": float(np.percentile(boots, hi_q)), "better_share": None, "worse_share": None})
    return pd.DataFrame(rows)


def _stat_fn(stat: str, lower_is_worse: bool):
    if stat == "p95":
        return lambda v: np.percentile(v, 95, axis=-1)

    def worst(v: np.ndarray) -> np.ndarray:
        k = max(1, math.ceil(0.05 * v.shape[-1]))
        s = np.sort(v, axis=-1)
        return (s[..., :k] if lower_is_worse else s[..., -k:]).mean(axis=-1)

    return worst


def _shared_addons(hospital: Hospital, schedules: dict[str, pd.DataFrame], params: SimParams):
    """The historical add-on pool, the same for every schedule compared: built once, as of the first date."""
    dates = pd.to_datetime(pd.concat([s["date"] for s in schedules.values()])).dropna()
    first = min(dates.min().normalize(), hospital.as_of()) if len(dates) else hospital.as_of()
    return addon_model(hospital, first, service_lines(hospital), params)


def compare_policies(
    hospital: Hospital,
    schedules: dict[str, pd.DataFrame],
    forecasts: pd.DataFrame,
    scenario: Scenario | str = "normal",
    reps: int = 1000,
    seed: int = 0,
    addon_forecast: pd.DataFrame | None = None,
    params: SimParams | None = None,
    baseline: str | None = None,
    actuals: Actuals | None = None,
    scheduler_address: str | None = None,
) -> PolicyComparison:
    """Simulate every schedule with the same seed (common random numbers) and pair them up.

    ``baseline`` (default: ``rules`` when present, else the last schedule) is subtracted:
    ``diff = policy - baseline`` per replication, so a negative overtime difference means the
    policy has less overtime on the same random days.
    """
    _check_run(reps, seed)
    if not schedules:
        raise ValueError("schedules must name at least one schedule")
    sc = _scenario(scenario)
    if addon_forecast is None and actuals is None:
        from engine.forecast import forecast_addons

        dates = sorted(set(pd.to_datetime(pd.concat([s["date"] for s in schedules.values()])).dt.normalize().dropna()))
        addon_forecast = forecast_addons(hospital.cases, dates, as_of=min(min(dates), hospital.as_of()))
    params = params or SimParams()
    addons = _shared_addons(hospital, schedules, params)
    results: dict[str, SimResult] = {}
    for name, s in schedules.items():
        inst = build_instance(hospital, s, forecasts, sc, addon_forecast, params, actuals, addons)
        results[name] = simulate(hospital, s, forecasts, sc, reps, seed, params=inst.params,
                                 scheduler_address=scheduler_address, instance=inst)
    base = baseline or ("rules" if "rules" in results else list(results)[-1])
    frames = []
    for name, r in results.items():
        if name == base:
            continue
        pdiff = paired_differences(r.per_rep, results[base].per_rep, M.CONTRACT_METRICS + M.EXTRA_METRICS)
        pdiff.insert(0, "baseline", base)
        pdiff.insert(0, "policy", name)
        frames.append(pdiff)
    paired = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return PolicyComparison(results, paired)


def as_booked_schedule(hospital: Hospital, forecasts: pd.DataFrame, start_date, days: int = 1,
                       cases: pd.DataFrame | None = None) -> pd.DataFrame:
    """The booked cases at their booked room and ``scheduled_start`` (contract schedule form).

    Where ``scheduled_start`` is missing the room's list is sequenced the coordinators' way:
    booking order, back to back by ``booked_minutes`` plus turnover from the room's open time.
    ``end_p50``/``end_p80`` use the forecasts; ``planned_end`` (an added column) is the
    coordinators' own promise, start + booked minutes, and is what reliability is measured against.
    """
    start = pd.Timestamp(start_date).normalize()
    dates = [start + pd.Timedelta(days=i) for i in range(days)]
    src = hospital.cases if cases is None else cases
    b = src[(src["status"] == "booked") & src["surgery_date"].isin(dates)].copy()
    f = forecasts.drop_duplicates("case_id").set_index("case_id")
    missing = sorted(set(b["case_id"]) - set(f.index))
    if missing:
        raise InputError(f"no forecast for {len(missing)} booked cases, e.g. {missing[:3]}", file="forecasts")
    turn = hospital.settings.turnover_minutes
    pacu = hospital.settings.pacu_minutes
    opens = hospital.rooms.set_index("room_id")["open_time"].map(hhmm_to_minutes).to_dict()
    rows = []
    for (d, room), g in b.groupby([b["surgery_date"], b["room_id"].fillna("")], sort=True):
        g = g.assign(_o=g["scheduled_start"].fillna(g["booked_at"]).fillna(pd.Timestamp.max)).sort_values(["_o", "case_id"])
        cursor = None
        for c in g.itertuples():
            if not room:
                rows.append({"case_id": c.case_id, "surgeon_id": c.surgeon_id, "service_line": c.service_line, "date": d,
                             "room_id": np.nan, "status": "deferred", "reason": "booked without a room"})
                continue
            booked = float(c.booked_minutes) if pd.notna(c.booked_minutes) else float(f.at[c.case_id, "p50"])
            if pd.notna(c.scheduled_start):
                st = pd.Timestamp(c.scheduled_start)
            else:
                st = cursor if cursor is not None else d + pd.Timedelta(minutes=opens.get(room, 450.0))
            cursor = st + pd.Timedelta(minutes=booked + turn)
            p50, p80 = float(f.at[c.case_id, "p50"]), float(max(f.at[c.case_id, "p80"], f.at[c.case_id, "p50"]))
            e50 = st + pd.Timedelta(minutes=p50)
            rows.append({"case_id": c.case_id, "surgeon_id": c.surgeon_id, "service_line": c.service_line, "date": d,
                         "room_id": room, "status": "scheduled", "start": st, "end_p50": e50,
                         "end_p80": st + pd.Timedelta(minutes=p80), "pacu_in": e50, "pacu_out": e50 + pd.Timedelta(minutes=pacu),
                         "reason": f"as booked: {room} at {st:%H:%M}, {booked:.0f} booked minutes",
                         "planned_end": st + pd.Timedelta(minutes=booked)})
    out = pd.DataFrame(rows, columns=SCHEDULE_COLUMNS + ["planned_end"])
    for col in ("start", "end_p50", "end_p80", "pacu_in", "pacu_out", "planned_end", "date"):
        out[col] = pd.to_datetime(out[col])
    return out


def policy_schedules(hospital: Hospital, forecasts: pd.DataFrame, start_date, days: int = 1,
                     plan_params=None, policies: Sequence[str] = POLICIES) -> dict[str, pd.DataFrame]:
    """The schedules compared: ``optimized`` (HiGHS plan), ``rules`` (block rules), ``as_booked``.

    Each planned schedule carries its plan's JSON summary in ``DataFrame.attrs['plan']``
    (solver used, fallback banner), since a HiGHS plan may fall back to rules.
    """
    from engine.plan import PlanParams, plan

    base = plan_params or PlanParams(days=days)
    base = base.with_(days=days)
    out: dict[str, pd.DataFrame] = {}
    for name in policies:
        if name == "as_booked":
            out[name] = as_booked_schedule(hospital, forecasts, start_date, days)
            continue
        if name not in ("optimized", "rules"):
            raise ValueError(f"policies must be among {', '.join(POLICIES)}, got {name!r}")
        res = plan(hospital, forecasts, start_date, base.with_(solver="highs" if name == "optimized" else "rules"))
        sched = res.schedule.copy()
        sched.attrs["plan"] = res.to_json()
        if res.banner:
            log.warning("%s plan fell back: %s", name, res.banner)
        out[name] = sched
    return out


# ----------------------------------------------------------------------------- sweeps


@dataclass
class SweepResult:
    table: pd.DataFrame  # policy, scenario, variant, metric, mean, p5, p50, p95, worst5_mean
    results: dict[tuple[str, str, str], SimResult]
    seconds: float


def run_sweep(
    hospital: Hospital,
    schedules: dict[str, pd.DataFrame],
    forecasts: pd.DataFrame,
    scenarios: Sequence[Scenario | str] = ("normal",),
    reps: int = 1000,
    seed: int = 0,
    knobs: Sequence[dict[str, Any]] | None = None,
    addon_forecast: pd.DataFrame | None = None,
    params: SimParams | None = None,
    scheduler_address: str | None = None,
) -> SweepResult:
    """Schedules x scenarios x knob variants x replications, in-process or on a Dask cluster.

    ``knobs`` is a list of knob overrides applied to every scenario (``[{}]``: the scenarios as
    they are); a variant's label is its overrides, e.g. ``duration_inflation=0.1``. All blocks of
    all variants are submitted at once, so a cluster works on them in parallel; the numbers are
    identical to an in-process run with the same seed.
    """
    _check_run(reps, seed)
    params = params or SimParams()
    t0 = time.perf_counter()
    knobs = list(knobs) if knobs else [{}]
    scs = [_scenario(s) for s in scenarios]
    if addon_forecast is None:
        from engine.forecast import forecast_addons

        dates = sorted(set(pd.to_datetime(pd.concat([s["date"] for s in schedules.values()])).dt.normalize().dropna()))
        addon_forecast = forecast_addons(hospital.cases, dates, as_of=min(min(dates), hospital.as_of()))
    insts: dict[tuple[str, str, str], SimInstance] = {}
    addons = _shared_addons(hospital, schedules, params)
    for pol, sched in schedules.items():
        for sc in scs:
            for kv in knobs:
                label = ",".join(f"{k}={v}" for k, v in sorted(kv.items())) or "base"
                inst = build_instance(hospital, sched, forecasts, sc.with_(**kv) if kv else sc, addon_forecast, params,
                                      addons=addons)
                insts[(pol, sc.name, label)] = inst
    tasks, owners = [], []
    for key, inst in insts.items():
        for a, b in _blocks(reps, params.chunk_reps):
            tasks.append((inst, seed, a, b))
            owners.append(key)
    parts = _run_tasks(tasks, scheduler_address, params.dask_timeout_s)
    grouped: dict[tuple[str, str, str], list] = {}
    for key, part in zip(owners, parts):
        grouped.setdefault(key, []).append(part)
    results, rows = {}, []
    seconds = time.perf_counter() - t0
    for key, inst in insts.items():
        r = _assemble(inst, grouped[key], _meta(inst, reps, seed, seconds, scheduler_address))
        results[key] = r
        for m in M.CONTRACT_METRICS + M.EXTRA_METRICS:
            rows.append({"policy": key[0], "scenario": key[1], "variant": key[2], "metric": m, **r.summary[m]})
    return SweepResult(pd.DataFrame(rows), results, seconds)


# ----------------------------------------------------------------------------- historical replay

SYSTEM_CANCEL_REASONS = ("ran out of time", "no staff")


def booked_minutes_forecasts(cases: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Forecasts from booked minutes alone (no model): P50 = booked; P80/P95 from the history's
    ratio of actual to booked minutes; cancel_prob = the historical elective cancellation rate."""
    done = history[(history["status"] == "completed") & history["booked_minutes"].notna() & history["wheels_in"].notna()]
    ratio = ((done["wheels_out"] - done["wheels_in"]).dt.total_seconds() / 60 / done["booked_minutes"]).to_numpy()
    r50, r80, r95 = np.percentile(ratio, [50, 80, 95]) if len(ratio) else (1.0, 1.25, 1.5)
    el = history[history["urgency"].fillna("elective") == "elective"]
    el = el[el["status"].isin(["completed", "cancelled"])]
    rate = float((el["status"] == "cancelled").mean()) if len(el) else 0.05
    b = cases["booked_minutes"].astype(float).to_numpy()
    # P50 is the booking itself; the spread above it is the history's (P80, P95 over P50 of actual/booked).
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(), "p50": b, "p80": b * max(r80 / r50, 1.0),
                         "p95": b * max(r95 / r50, 1.0), "cancel_prob": rate})


def replay_actuals(hospital: Hospital, dates: list[pd.Timestamp]) -> Actuals:
    """What happened on ``dates``: durations, patient/booking cancellations and the add-ons."""
    c = hospital.cases
    wk = c[c["surgery_date"].isin(dates)]
    done = wk[(wk["status"] == "completed") & wk["wheels_in"].notna()]
    durations = dict(zip(done["case_id"], (done["wheels_out"] - done["wheels_in"]).dt.total_seconds() / 60))
    patient = (wk["status"] == "cancelled") & ~wk["cancellation_reason"].isin(SYSTEM_CANCEL_REASONS)
    cancelled = set(wk.loc[patient, "case_id"])
    showed = set(wk.loc[wk["status"].isin(["completed", "cancelled"]) & ~patient, "case_id"])
    first_open = min(hhmm_to_minutes(t) for t in hospital.rooms["open_time"])
    add = done[done["urgency"].isin(["urgent", "emergent"])]
    posted = ((add["booked_at"] - add["surgery_date"]).dt.total_seconds() / 60).to_numpy(dtype=float)
    addons = pd.DataFrame({
        "date": add["surgery_date"].to_numpy(), "service_line": add["service_line"].to_numpy(),
        "arrival_min": np.where(np.isfinite(posted), np.maximum(posted, first_open), first_open),
        "duration": ((add["wheels_out"] - add["wheels_in"]).dt.total_seconds() / 60).to_numpy(dtype=float),
        "required_equipment": add["required_equipment"].to_numpy(), "case_id": add["case_id"].to_numpy(),
    })
    return Actuals(durations=durations, cancelled=cancelled, addons=addons, showed=showed)


@dataclass
class Replay:
    comparison: PolicyComparison
    schedules: dict[str, pd.DataFrame]
    forecasts: pd.DataFrame
    actuals: Actuals
    dates: list[pd.Timestamp]


def replay_week(
    hospital: Hospital,
    week_start,
    forecaster=None,
    days: int = 7,
    scenario: Scenario | str = "normal",
    reps: int = 200,
    seed: int = 0,
    params: SimParams | None = None,
    plan_params=None,
    policies: Sequence[str] = POLICIES,
) -> Replay:
    """Replay a past week: its elective cases re-planned by each policy, run on what happened.

    The week's elective cases (completed or cancelled) are treated as booked as of
    ``week_start``; forecasts come from ``forecaster`` (it should be trained on data before
    ``week_start``; ``predict`` only sees history before it) or, when None, from booked minutes.
    Each policy plans them; the simulation then uses the ACTUAL durations, patient/booking
    cancellations and add-ons of the week. Cases cancelled by the day itself (ran out of time,
    no staff) have no actual duration and are drawn from their forecast; turnovers, PACU stays,
    late starts and downtime are drawn (history cannot say how another schedule would have gone).
    """
    start = pd.Timestamp(week_start).normalize()
    dates = [start + pd.Timedelta(days=i) for i in range(days)]
    if start >= hospital.as_of():
        raise InputError(f"week_start {start:%Y-%m-%d} is not in the past (as of {hospital.as_of():%Y-%m-%d})",
                         file="command line")
    c = hospital.cases
    history = c[c["surgery_date"] < start]
    wk = c[c["surgery_date"].isin(dates) & (c["urgency"].fillna("elective") == "elective")
           & c["status"].isin(["completed", "cancelled"])].copy()
    wk["status"] = "booked"
    for col in ("wheels_in", "wheels_out", "procedure_start", "procedure_end"):
        wk[col] = pd.NaT
    wk["cancellation_reason"] = np.nan
    h2 = dataclasses.replace(hospital, cases=pd.concat([history, wk], ignore_index=True),
                             settings=hospital.settings.with_updates(as_of=start.date()))
    if forecaster is not None:
        forecasts = forecaster.predict(wk, history, as_of=start)[["case_id", "p50", "p80", "p95", "cancel_prob"]]
    else:
        forecasts = booked_minutes_forecasts(wk, history)
    schedules = {}
    for name in policies:
        if name == "as_booked":
            schedules[name] = as_booked_schedule(h2, forecasts, start, days)
        else:
            schedules.update(policy_schedules(h2, forecasts, start, days, plan_params, policies=(name,)))
    actuals = replay_actuals(hospital, dates)
    cmp_ = compare_policies(h2, schedules, forecasts, scenario, reps, seed, pd.DataFrame(columns=["date", "service_line", "expected_cases"]),
                            params, actuals=actuals)
    return Replay(cmp_, schedules, forecasts, actuals, dates)
