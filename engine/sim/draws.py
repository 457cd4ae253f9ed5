"""The random day: every draw of a block of replications for one SimDay, made up front.

Both engines consume the same :class:`Draws`, so the SimPy reference and the vectorised engine
simulate identical days. Every number comes from :func:`engine.sim.rng.uniforms`, keyed by the
replication and by the entity (case id, room-date, add-on slot), never by position.

Distributions
- case duration: the forecast's P50/P80/P95 interpolated in log space against the normal score
  ``z`` (piecewise log-normal: the P50-P80 log-slope below P80, the P80-P95 slope above, and that
  slope continued past P95 as the log-normal tail), times ``1 + duration_inflation``, clipped;
  ``z`` is drawn by inverse CDF, so a longer draw stays longer under every knob (monotone CRN);
- day-of cancellation: ``u < min(1, cancel_prob x cancel_multiplier)``;
- turnover and PACU stay: log-normal with the hospital's ``turnover_minutes``/``pacu_minutes`` as
  median and ``SimParams`` log-sds;
- first-case late start of a room: with ``late_start_prob``, ``1 + Exp(late_start_mean_minutes)``;
- room downtime: with ``room_downtime_prob`` the room goes down once, at a uniform time of its
  open hours, for ``room_downtime_minutes``;
- add-ons per date x service line: negative binomial with the forecast mean x ``addon_multiplier``
  and the historical variance/mean ratio of that weekday's counts (Poisson when not
  over-dispersed); each add-on bootstraps one historical add-on of its service line (duration,
  equipment, ready time) and arrives 0..jitter minutes after that ready time;
- a range knob ``[lo, hi]`` is drawn uniformly once per replication (parameter uncertainty).
Replay (:class:`engine.sim.instance.Actuals`) replaces durations, cancellations and add-ons with
what happened; turnovers, PACU stays, late starts and downtime are still drawn.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from engine.sim import rng as R
from engine.sim.instance import Z80, SimDay, SimInstance, addon_group_key
from engine.sim.rng import entity_key, entity_keys, uniforms

FLOAT_KNOBS = ("duration_inflation", "cancel_multiplier", "late_start_prob", "late_start_mean_minutes",
               "room_downtime_prob", "room_downtime_minutes", "addon_multiplier")


@dataclass
class Draws:
    n: int
    knobs: dict[str, np.ndarray]  # per replication
    dur: np.ndarray  # (n, E)
    cancel: np.ndarray  # (n, E) bool
    turn: np.ndarray  # (n, E)
    stay: np.ndarray  # (n, E)
    early: np.ndarray  # (n, E) bool: patient ready early
    late: np.ndarray  # (n, rooms) first-case delay minutes
    down0: np.ndarray  # (n, rooms) downtime start (inf: none)
    down1: np.ndarray  # (n, rooms) downtime end
    arr: np.ndarray  # (n, A) add-on arrival minute, sorted; inf = no add-on in this slot
    adur: np.ndarray
    aturn: np.ndarray
    astay: np.ndarray
    acls: np.ndarray  # (n, A) equipment class
    asl: np.ndarray  # (n, A) service line

    @property
    def n_addon_slots(self) -> int:
        return self.arr.shape[1]


def knob_draws(inst: SimInstance, reps: np.ndarray) -> dict[str, np.ndarray]:
    """Per-replication knob values: fixed numbers repeat, ranges are drawn uniformly."""
    out = {}
    for name in FLOAT_KNOBS:
        lo, hi = inst.scenario.bounds(name)
        if lo == hi:
            out[name] = np.full(len(reps), lo)
        else:
            u = uniforms(reps, np.array([entity_key(f"knob|{name}")], dtype=np.uint64), R.KNOB)[:, 0]
            out[name] = lo + u * (hi - lo)
    return out


def duration_from_z(day: SimDay, z: np.ndarray) -> np.ndarray:
    """Minutes at normal score ``z`` (n, E): piecewise log-normal through P50, P80, P95."""
    lz = np.where(z <= Z80, z * day.s1, Z80 * day.s1 + (z - Z80) * day.s2)
    return np.exp(day.l50 + lz)


def _lognormal(u: np.ndarray, median: float, sigma: float, lo: float, hi: float) -> np.ndarray:
    return np.clip(median * np.exp(sigma * special.ndtri(u)), lo, hi)


def _count_ppf(u: np.ndarray, mean: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Negative binomial (variance phi x mean) quantiles; Poisson where phi <= 1."""
    mean = np.broadcast_to(mean, u.shape)
    phi = np.broadcast_to(phi, u.shape)
    out = np.zeros(u.shape)
    pos = mean > 0
    nb = pos & (phi > 1.0001)
    po = pos & ~nb
    if po.any():
        out[po] = stats.poisson.ppf(u[po], mean[po])
    if nb.any():
        p = 1.0 / phi[nb]
        out[nb] = stats.nbinom.ppf(u[nb], mean[nb] * p / (1 - p), p)
    return np.nan_to_num(out, nan=0.0, posinf=0.0)


def make_draws(inst: SimInstance, day: SimDay, reps: np.ndarray) -> Draws:
    p = inst.params
    n = len(reps)
    k = knob_draws(inst, reps)
    keys = day.case_keys
    # Electives.
    z = np.clip(special.ndtri(uniforms(reps, keys, R.DURATION)), -p.z_clip, p.z_clip)
    dur = duration_from_z(day, z) * (1.0 + k["duration_inflation"])[:, None]
    dur = np.clip(dur, p.min_duration_minutes, p.max_duration_minutes)
    cprob = np.minimum(1.0, day.cancel_prob[None, :] * k["cancel_multiplier"][:, None])
    cancel = uniforms(reps, keys, R.CANCEL) < cprob
    known = np.isfinite(day.actual_dur)
    if known.any():
        dur[:, known] = day.actual_dur[known]
    ka = day.actual_cancel >= 0
    if ka.any():
        cancel[:, ka] = day.actual_cancel[ka] == 1
    t_med, s_med = inst.turnover_minutes, inst.pacu_minutes
    turn = _lognormal(uniforms(reps, keys, R.TURNOVER), t_med, p.turnover_sigma, 0.4 * t_med, 5 * t_med + 1)
    stay = _lognormal(uniforms(reps, keys, R.PACU_STAY), s_med, p.pacu_stay_sigma, min(10.0, s_med), 8 * s_med + 1)
    early = uniforms(reps, keys, R.EARLY) < p.early_ready_prob
    # Rooms.
    rk = day.room_keys
    is_late = uniforms(reps, rk, R.LATE) < k["late_start_prob"][:, None]
    late = np.where(is_late, 1.0 - np.log1p(-uniforms(reps, rk, R.LATE_SIZE)) * k["late_start_mean_minutes"][:, None], 0.0)
    is_down = uniforms(reps, rk, R.DOWN) < k["room_downtime_prob"][:, None]
    at = day.open_min[None, :] + uniforms(reps, rk, R.DOWN_AT) * (day.close_min - day.open_min)[None, :]
    down0 = np.where(is_down, at, np.inf)
    down1 = np.where(is_down, at + k["room_downtime_minutes"][:, None], np.inf)
    # Add-ons.
    parts = _actual_addons(day, reps, inst) if day.actual_addons is not None else _addon_draws(inst, day, reps, k)
    arr, adur, acls, asl, akeys = parts
    if arr.shape[1]:
        aturn = _lognormal(uniforms(reps, akeys, R.TURNOVER), t_med, p.turnover_sigma, 0.4 * t_med, 5 * t_med + 1)
        astay = _lognormal(uniforms(reps, akeys, R.PACU_STAY), s_med, p.pacu_stay_sigma, min(10.0, s_med), 8 * s_med + 1)
        order = np.argsort(arr, axis=1, kind="stable")
        take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
        arr, adur, aturn, astay, acls, asl = map(take, (arr, adur, aturn, astay, acls, asl))
    else:
        aturn = astay = np.zeros((n, 0))
    return Draws(n=n, knobs=k, dur=dur, cancel=cancel, turn=turn, stay=stay, early=early, late=late,
                 down0=down0, down1=down1, arr=arr, adur=adur, aturn=aturn, astay=astay, acls=acls, asl=asl)


def _addon_draws(inst: SimInstance, day: SimDay, reps: np.ndarray, k: dict[str, np.ndarray]):
    p = inst.params
    n = len(reps)
    am = inst.addons
    cols_arr, cols_dur, cols_cls, cols_sl, cols_key = [], [], [], [], []
    if len(day.addon_sl) and len(am.duration) and p.max_addons_per_group > 0:
        gkeys = np.array([addon_group_key(day.date, inst.service_lines[g]) for g in day.addon_sl], dtype=np.uint64)
        u = uniforms(reps, gkeys, R.ADDON_COUNT)
        mean = day.addon_mean[None, :] * k["addon_multiplier"][:, None]
        counts = np.minimum(_count_ppf(u, mean, day.addon_phi[None, :]), p.max_addons_per_group).astype(int)
        for j, g in enumerate(day.addon_sl):
            kmax = int(counts[:, j].max())
            if kmax == 0:
                continue
            pool = np.flatnonzero(am.service_line == g)
            if not len(pool):
                pool = np.arange(len(am.duration))
            sl = inst.service_lines[g]
            skeys = entity_keys([f"addon|{day.date:%Y-%m-%d}|{sl}|{i}" for i in range(kmax)])
            row = pool[np.minimum((uniforms(reps, skeys, R.ADDON_ROW) * len(pool)).astype(int), len(pool) - 1)]
            jit = uniforms(reps, skeys, R.ADDON_JITTER) * p.addon_arrival_jitter_minutes
            exists = np.arange(kmax)[None, :] < counts[:, j][:, None]
            cols_arr.append(np.where(exists, am.ready_min[row] + jit, np.inf))
            dur = am.duration[row] * (1.0 + k["duration_inflation"])[:, None]
            cols_dur.append(np.clip(dur, p.min_duration_minutes, p.max_duration_minutes))
            cols_cls.append(am.cls[row])
            cols_sl.append(np.full((n, kmax), g, dtype=int))
            cols_key.append(skeys)
    if not cols_arr:
        z = np.zeros((n, 0))
        return z, z, z.astype(int), z.astype(int), np.zeros(0, dtype=np.uint64)
    return (np.concatenate(cols_arr, 1), np.concatenate(cols_dur, 1), np.concatenate(cols_cls, 1),
            np.concatenate(cols_sl, 1), np.concatenate(cols_key))


def _actual_addons(day: SimDay, reps: np.ndarray, inst: SimInstance):
    a = day.actual_addons
    n, m = len(reps), len(a)
    rep = lambda v, dt=float: np.broadcast_to(np.asarray(v, dtype=dt), (n, m)).copy()  # noqa: E731
    keys = entity_keys([f"addon-actual|{c}" for c in a["case_id"]])
    return (rep(a["arrival_min"].to_numpy()), rep(a["duration"].to_numpy()), rep(a["cls"].to_numpy(), int),
            rep(a["sl"].to_numpy(), int), keys)
