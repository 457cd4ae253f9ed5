"""Running simulations: replications, policy comparisons, sweeps, historical replay (the *Runner*).

Replications are cut into blocks (``SimParams.chunk_reps``); each block is a pure function of
(instance, first replication, last replication), so a run gives identical numbers in-process and
on a Dask cluster (``scheduler_address``), and a policy comparison on one seed is paired: every
schedule meets the same random days.
"""
from __future__ import annotations

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
from engine.sim.instance import Actuals, SimInstance, addon_model, build_instance, service_lines
from engine.timeutil import hhmm_to_minutes, room_minutes
from engine.sim.params import SimParams
from engine.sim.rng import rep_keys
from engine.sim.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)


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


def schedule_dates(schedules: dict[str, pd.DataFrame]) -> list[pd.Timestamp]:
    """The dates the schedules cover, sorted."""
    frames = [s["date"] for s in schedules.values()]
    return sorted(set(pd.to_datetime(pd.concat(frames)).dt.normalize().dropna())) if frames else []


def _addon_input(hospital: Hospital, schedules: dict[str, pd.DataFrame], addon_forecast: pd.DataFrame | None) -> pd.DataFrame:
    """The caller's add-on forecast, or (for a caller that has none) the one made for the schedules'
    dates by :func:`engine.forecast.addon_forecast_for`, once per run and shared by every schedule."""
    if addon_forecast is not None:
        return addon_forecast
    from engine.forecast import addon_forecast_for

    return addon_forecast_for(hospital, schedule_dates(schedules))


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
    ``addon_forecast``: the add-on forecast for the schedule's dates, made once by the caller
    (``engine.forecast.addon_forecast_for``; made here only when None; an empty frame means no add-ons).
    ``actuals``: historical replay (durations, cancellations and add-ons that happened).
    """
    _check_run(reps, seed)
    params = params or SimParams()
    t0 = time.perf_counter()
    if instance is None:
        addon_forecast = _addon_input(hospital, {"": schedule}, addon_forecast)
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
    dates = schedule_dates(schedules)
    first = min(dates[0], hospital.as_of()) if dates else hospital.as_of()
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
    addon_forecast = _addon_input(hospital, schedules, addon_forecast)
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
    addon_forecast = _addon_input(hospital, schedules, addon_forecast)
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


def replay_actuals(hospital: Hospital, dates: list[pd.Timestamp]) -> Actuals:
    """What happened on ``dates``: durations, patient/booking cancellations and the add-ons."""
    c = hospital.cases
    wk = c[c["surgery_date"].isin(dates)]
    done = wk[(wk["status"] == "completed") & wk["wheels_in"].notna()]
    durations = dict(zip(done["case_id"], room_minutes(done, hospital.settings.timezone)))
    patient = (wk["status"] == "cancelled") & ~wk["cancellation_reason"].isin(SYSTEM_CANCEL_REASONS)
    cancelled = set(wk.loc[patient, "case_id"])
    showed = set(wk.loc[wk["status"].isin(["completed", "cancelled"]) & ~patient, "case_id"])
    first_open = min(hhmm_to_minutes(t) for t in hospital.rooms["open_time"])
    add = done[done["urgency"].isin(["urgent", "emergent"])]
    posted = ((add["booked_at"] - add["surgery_date"]).dt.total_seconds() / 60).to_numpy(dtype=float)
    addons = pd.DataFrame({
        "date": add["surgery_date"].to_numpy(), "service_line": add["service_line"].to_numpy(),
        "arrival_min": np.where(np.isfinite(posted), np.maximum(posted, first_open), first_open),
        "duration": room_minutes(add, hospital.settings.timezone).to_numpy(dtype=float),
        "required_equipment": add["required_equipment"].to_numpy(), "case_id": add["case_id"].to_numpy(),
    })
    return Actuals(durations=durations, cancelled=cancelled, addons=addons, showed=showed)
