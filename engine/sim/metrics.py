"""Metrics of simulated days, per replication, and their distributions.

Per replication (summed over the days of the schedule):
- ``utilization``: prime-time minutes of surgery (wheels-in to end of surgery, electives and
  add-ons; PACU holds not counted) over staffed rooms x prime-time minutes;
- ``overtime_minutes``: staff overtime, sum over rooms of last wheels-out past close;
- ``cancellations``: day-of cancellations caused by the day itself: a case that could start but
  whose P50 would run past close + cap (``cancellations_overrun``), or the same where the room's
  PACU holds made the difference (``cancellations_beds``);
- ``spillover_cases``: electives that could not start before close + cap, and add-ons that
  found no room before the end of the day;
- ``pacu_hold_minutes``: minutes patients waited in the OR for a PACU bed;
- ``surgeon_idle_minutes``: gaps between a surgeon's consecutive cases on a day (end of
  surgery to next wheels-in; includes turnover);
- also ``patient_cancellations`` (drawn from cancel_prob), ``bumped_cases`` (add-on policy
  ``bump``), ``staff_cancellations`` (rooms closed for lack of staff), ``total_cancellations``,
  ``end_delay_minutes`` (mean wheels-out minus planned end) and ``on_time_rate`` (share of run
  electives out by their planned P80 end): reliability.
Summaries: mean, P5, P50, P95 and ``worst5_mean``, the mean of the worst 5% of replications
(the highest values, or the lowest for utilization and on-time rate).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from engine.sim.draws import Draws
from engine.sim.instance import SimDay, SimInstance
from engine.sim.outcome import A_NONE, A_RUN, A_SPILL, BEDS, BUMPED, OVERRUN, PATIENT, RUN, SPILL, Outcome

CONTRACT_METRICS = ("utilization", "overtime_minutes", "cancellations", "spillover_cases", "pacu_hold_minutes",
                    "surgeon_idle_minutes")
EXTRA_METRICS = ("cancellations_overrun", "cancellations_beds", "patient_cancellations", "bumped_cases",
                 "staff_cancellations", "total_cancellations", "elective_cases_run", "addon_cases", "addon_cases_run",
                 "end_delay_minutes", "on_time_rate", "rooms_past_close")
LOWER_IS_WORSE = {"utilization", "on_time_rate", "elective_cases_run", "addon_cases_run", "cases_run", "prime_time_share"}
# Sums per replication that make up the metrics (ratios are formed after summing over days).
SUMS = ("prime_used", "prime_avail", "overtime_minutes", "cancellations_overrun", "cancellations_beds",
        "spill_electives", "spill_addons", "pacu_hold_minutes", "surgeon_idle_minutes", "patient_cancellations",
        "bumped_cases", "staff_cancellations", "elective_cases_run", "addon_cases", "addon_cases_run",
        "delay_sum", "delay_n", "on_time_n", "rooms_past_close")
SL_SUMS = ("scheduled", "run", "cancellations", "spillover_cases", "patient_cancellations", "bumped_cases",
           "staff_cancellations", "pacu_hold_minutes", "overtime_minutes", "prime_used", "delay_sum", "delay_n",
           "on_time_n", "addon_cases", "addon_cases_run")


def _overlap(a: np.ndarray, b: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.nan_to_num(np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0, None))


def day_sums(inst: SimInstance, day: SimDay, d: Draws, o: Outcome) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-replication sums of one day, and per service line sums (n, lines)."""
    n, G = d.n, len(inst.service_lines)
    ps, pe = inst.prime_start, inst.prime_end
    es, a_s = o.e_state, o.a_state
    e_run, a_run = es == RUN, a_s == A_RUN
    e_prime = np.where(e_run, _overlap(o.e_start, o.e_end, ps, pe), 0.0)
    a_prime = np.where(a_run, _overlap(o.a_start, o.a_end, ps, pe), 0.0)
    past = np.nan_to_num(np.clip(o.last_release - day.close_min[None, :], 0, None))
    e_hold, a_hold = np.nan_to_num(o.e_hold), np.nan_to_num(o.a_hold)
    delay = np.where(e_run, o.e_release - day.planned_end[None, :], 0.0)
    on_time = e_run & (o.e_release <= day.end_p80[None, :] + 1e-9)
    s = {
        "prime_used": e_prime.sum(1) + a_prime.sum(1),
        "prime_avail": np.full(n, float(day.cap_rooms) * (pe - ps)),
        "overtime_minutes": past.sum(1),
        "cancellations_overrun": (es == OVERRUN).sum(1).astype(float),
        "cancellations_beds": (es == BEDS).sum(1).astype(float),
        "spill_electives": (es == SPILL).sum(1).astype(float),
        "spill_addons": (a_s == A_SPILL).sum(1).astype(float),
        "pacu_hold_minutes": e_hold.sum(1) + a_hold.sum(1),
        "surgeon_idle_minutes": _surgeon_idle(day, o),
        "patient_cancellations": (es == PATIENT).sum(1).astype(float),
        "bumped_cases": (es == BUMPED).sum(1).astype(float),
        "staff_cancellations": np.full(n, float(day.staff_cancelled.sum())),
        "elective_cases_run": e_run.sum(1).astype(float),
        "addon_cases": (a_s != A_NONE).sum(1).astype(float),
        "addon_cases_run": a_run.sum(1).astype(float),
        "delay_sum": delay.sum(1),
        "delay_n": e_run.sum(1).astype(float),
        "on_time_n": on_time.sum(1).astype(float),
        "rooms_past_close": (past > 0).sum(1).astype(float),
    }
    # Per service line.
    def by_sl(mask_or_val: np.ndarray, sl: np.ndarray) -> np.ndarray:
        out = np.zeros((n, G))
        if mask_or_val.shape[1]:
            rows = np.broadcast_to(np.arange(n)[:, None], mask_or_val.shape)
            np.add.at(out, (rows, np.broadcast_to(sl, mask_or_val.shape)), mask_or_val.astype(float))
        return out

    esl = day.sl_idx[None, :] if day.n_cases else np.zeros((1, 0), int)
    asl = d.asl
    g = {
        "scheduled": np.broadcast_to(day.scheduled_by_sl.astype(float), (n, G)).copy(),
        "run": by_sl(e_run, esl),
        "cancellations": by_sl((es == OVERRUN) | (es == BEDS), esl),
        "spillover_cases": by_sl(es == SPILL, esl) + by_sl(a_s == A_SPILL, asl),
        "patient_cancellations": by_sl(es == PATIENT, esl),
        "bumped_cases": by_sl(es == BUMPED, esl),
        "staff_cancellations": np.broadcast_to(day.staff_cancelled.astype(float), (n, G)).copy(),
        "pacu_hold_minutes": by_sl(e_hold, esl) + by_sl(a_hold, asl),
        "overtime_minutes": _overtime_by_sl(day, o, asl, G),
        "prime_used": by_sl(e_prime, esl) + by_sl(a_prime, asl),
        "delay_sum": by_sl(delay, esl),
        "delay_n": by_sl(e_run, esl),
        "on_time_n": by_sl(on_time, esl),
        "addon_cases": by_sl(a_s != A_NONE, asl),
        "addon_cases_run": by_sl(a_run, asl),
    }
    return s, g


def _surgeon_idle(day: SimDay, o: Outcome) -> np.ndarray:
    n = o.e_state.shape[0]
    idle = np.zeros(n)
    if not day.n_cases:
        return idle
    last = np.full((n, int(day.surg_idx.max()) + 1), np.nan)
    for c in day.order:  # planned order = each surgeon's actual order
        s = day.surg_idx[c]
        run = o.e_state[:, c] == RUN
        gap = o.e_start[:, c] - last[:, s]
        idle += np.where(run & np.isfinite(gap), gap, 0.0)
        last[:, s] = np.where(run, o.e_end[:, c], last[:, s])
    return idle


def _overtime_by_sl(day: SimDay, o: Outcome, asl: np.ndarray, G: int) -> np.ndarray:
    """Each room's minutes past close, attributed to the cases whose stay in the room runs past it."""
    n = o.e_state.shape[0]
    out = np.zeros((n, G))
    rel = np.concatenate([o.e_release, o.a_release], axis=1)
    if not rel.shape[1] or not day.n_rooms:
        return out
    room = np.concatenate([np.broadcast_to(day.room_idx, o.e_release.shape), o.a_room], axis=1)
    sl = np.concatenate([np.broadcast_to(day.sl_idx, o.e_release.shape), asl], axis=1)
    ok = np.isfinite(rel) & (room >= 0)
    key = np.where(ok, np.maximum(room, 0) * 1e6 + np.nan_to_num(rel), np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    rel_s = np.take_along_axis(rel, order, 1)
    room_s = np.take_along_axis(room, order, 1)
    sl_s = np.take_along_axis(sl, order, 1)
    ok_s = np.take_along_axis(ok, order, 1)
    prev = np.full_like(rel_s, -np.inf)
    prev[:, 1:] = np.where((room_s[:, 1:] == room_s[:, :-1]) & ok_s[:, :-1], rel_s[:, :-1], -np.inf)
    close = day.close_min[np.maximum(room_s, 0)]
    part = np.where(ok_s, np.clip(rel_s - np.maximum(close, prev), 0, None), 0.0)
    rows = np.broadcast_to(np.arange(n)[:, None], part.shape)
    np.add.at(out, (rows, sl_s), part)
    return out


def finish(sums: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per-replication metrics from summed day totals."""
    s = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        df = pd.DataFrame({
            "utilization": np.where(s["prime_avail"] > 0, s["prime_used"] / s["prime_avail"], 0.0),
            "overtime_minutes": s["overtime_minutes"],
            "cancellations": s["cancellations_overrun"] + s["cancellations_beds"],
            "spillover_cases": s["spill_electives"] + s["spill_addons"],
            "pacu_hold_minutes": s["pacu_hold_minutes"],
            "surgeon_idle_minutes": s["surgeon_idle_minutes"],
            "cancellations_overrun": s["cancellations_overrun"],
            "cancellations_beds": s["cancellations_beds"],
            "patient_cancellations": s["patient_cancellations"],
            "bumped_cases": s["bumped_cases"],
            "staff_cancellations": s["staff_cancellations"],
            "total_cancellations": (s["cancellations_overrun"] + s["cancellations_beds"] + s["patient_cancellations"]
                                    + s["bumped_cases"] + s["staff_cancellations"]),
            "elective_cases_run": s["elective_cases_run"],
            "addon_cases": s["addon_cases"],
            "addon_cases_run": s["addon_cases_run"],
            "end_delay_minutes": np.where(s["delay_n"] > 0, s["delay_sum"] / s["delay_n"], np.nan),
            "on_time_rate": np.where(s["delay_n"] > 0, s["on_time_n"] / s["delay_n"], np.nan),
            "rooms_past_close": s["rooms_past_close"],
        })
    return df


def finish_by_sl(g: dict[str, np.ndarray], lines: list[str], prime_avail: np.ndarray) -> dict[str, pd.DataFrame]:
    """Per service line: a per-replication frame of its metrics."""
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, sl in enumerate(lines):
            col = lambda k: g[k][:, j]  # noqa: E731
            if col("scheduled").max() == 0 and col("addon_cases").max() == 0:
                continue
            out[sl] = pd.DataFrame({
                "cases_scheduled": col("scheduled"),
                "cases_run": col("run"),
                "prime_time_share": np.where(prime_avail > 0, col("prime_used") / prime_avail, 0.0),
                "overtime_minutes": col("overtime_minutes"),
                "cancellations": col("cancellations"),
                "spillover_cases": col("spillover_cases"),
                "patient_cancellations": col("patient_cancellations"),
                "bumped_cases": col("bumped_cases"),
                "staff_cancellations": col("staff_cancellations"),
                "pacu_hold_minutes": col("pacu_hold_minutes"),
                "end_delay_minutes": np.where(col("delay_n") > 0, col("delay_sum") / col("delay_n"), np.nan),
                "on_time_rate": np.where(col("delay_n") > 0, col("on_time_n") / col("delay_n"), np.nan),
                "addon_cases": col("addon_cases"),
                "addon_cases_run": col("addon_cases_run"),
            })
    return out


def describe(x: np.ndarray | pd.Series, lower_is_worse: bool = False) -> dict[str, float | None]:
    """mean, p5, p50, p95 and worst5_mean of one metric over replications (NaN replications ignored)."""
    v = np.asarray(x, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"mean": None, "p5": None, "p50": None, "p95": None, "worst5_mean": None}
    k = max(1, math.ceil(0.05 * len(v)))
    worst = np.sort(v)[:k] if lower_is_worse else np.sort(v)[-k:]
    p5, p50, p95 = np.percentile(v, [5, 50, 95])
    return {"mean": float(v.mean()), "p5": float(p5), "p50": float(p50), "p95": float(p95), "worst5_mean": float(worst.mean())}


def summarize(per_rep: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    return {m: describe(per_rep[m], m in LOWER_IS_WORSE) for m in per_rep.columns if m != "rep"}
