"""The governance board's fairness policy (settings.toml ``[fairness]``) checked on a schedule.

The check counts exactly what the fairness report counts (:func:`schedule_fairness` on the
exported times), so a plan cannot believe it met the limit while its report misses it.

Limits, in percentage points, over the service lines with at least ``min_group_cases`` booked
cases in the schedule's horizon:

- ``max_prime_time_gap_points``: demand share - prime-time share of a line;
- ``max_late_slot_share_gap_points`` (optional): a line's late-slot share - the share of all
  scheduled cases in late slots;
- ``max_deferral_rate_gap_points`` (optional): a line's deferral rate - the deferral rate of all
  booked cases.

When a limit is missed, :func:`explain` says why in words, from the schedule's own evidence.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.fairness.metrics import case_table, schedule_fairness
from engine.hospital import Hospital
from engine.settings import FairnessPolicy


@dataclass
class PolicyBreach:
    metric: str  # prime_time_gap | late_slot_share_gap | deferral_rate_gap
    group: str
    value_points: float
    limit_points: float


@dataclass
class PolicyCheck:
    """A schedule against the policy. ``met`` is True when no limit is exceeded."""

    policy: dict[str, Any]
    stated: bool  # the policy comes from settings.toml (False: the shipped default)
    max_prime_time_gap_points: float
    worst_group: str | None
    late_slot_share_gap_points: float | None
    deferral_rate_gap_points: float | None
    breaches: list[PolicyBreach] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)
    judged_groups: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return not self.breaches

    @property
    def excess_points(self) -> float:
        """How far the prime-time gap is above its limit (0 when within it)."""
        return max(0.0, self.max_prime_time_gap_points - self.policy["max_prime_time_gap_points"])

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["met"] = self.met
        out["source"] = "settings.toml [fairness]" if self.stated else (
            "the shipped default: no [fairness] section in settings.toml")
        return out


def _round(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 2)


def check_policy(h: Hospital, schedule: pd.DataFrame, policy: FairnessPolicy | None = None,
                 forecasts: pd.DataFrame | None = None, stated: bool | None = None) -> PolicyCheck:
    """The schedule against ``policy`` (default: the hospital's own, ``h.settings.fairness``)."""
    if policy is None:
        policy, stated = h.settings.fairness, h.settings.fairness_stated if stated is None else stated
    t = case_table(h, schedule, forecasts)  # built once: the table, the overall rates and the reasons
    table, summary = schedule_fairness(h, schedule, "service_line", forecasts, min_group_cases=policy.min_group_cases,
                                       cases=t)
    big = table[table["n_cases"] >= policy.min_group_cases] if len(table) else table
    gap = 100.0 * float(summary["max_prime_time_gap"]) if len(big) else 0.0
    breaches: list[PolicyBreach] = []
    if len(big):
        for _, r in big.iterrows():
            if 100 * r["prime_time_gap"] > policy.max_prime_time_gap_points + 1e-9:
                breaches.append(PolicyBreach("prime_time_gap", str(r["service_line"]), _round(100 * r["prime_time_gap"]),
                                             policy.max_prime_time_gap_points))
    late_gap = defer_gap = None
    if len(big):
        sched = t["status"] == "scheduled"
        overall_late = float(t.loc[sched, "late"].mean()) if sched.any() else np.nan
        overall_defer = float(t["deferred"].mean())
        late = 100 * (big["late_slot_share"] - overall_late)
        defer = 100 * (big["deferral_rate"] - overall_defer)
        late_gap = float(late.max()) if late.notna().any() else None
        defer_gap = float(defer.max()) if defer.notna().any() else None
        for metric, values, limit in (("late_slot_share_gap", late, policy.max_late_slot_share_gap_points),
                                      ("deferral_rate_gap", defer, policy.max_deferral_rate_gap_points)):
            if limit is None:
                continue
            for i, v in values.items():
                if pd.notna(v) and v > limit + 1e-9:
                    breaches.append(PolicyBreach(metric, str(big.at[i, "service_line"]), _round(v), limit))
    check = PolicyCheck(policy=policy.model_dump(), stated=bool(stated), max_prime_time_gap_points=_round(gap) or 0.0,
                        worst_group=summary["worst_group"], late_slot_share_gap_points=_round(late_gap),
                        deferral_rate_gap_points=_round(defer_gap), breaches=breaches,
                        judged_groups=sorted(str(g) for g in big["service_line"]) if len(big) else [])
    check.explanation = explain(h, check, table, t)
    return check


def explain(h: Hospital, check: PolicyCheck, table: pd.DataFrame, cases: pd.DataFrame) -> list[str]:
    """Why each breached line misses the policy, in words, from the schedule's own evidence
    (``table``: the per-line metrics; ``cases``: the schedule's :func:`case_table`)."""
    if check.met:
        return []
    ps, pe = h.settings.prime_window
    prime_len = pe - ps
    t = cases.set_index("case_id")
    lines: list[str] = []
    for b in check.breaches:
        g = b.group
        mine = t[t["service_line"].astype(str) == g]
        n, deferred = len(mine), mine[mine["status"] != "scheduled"]
        row = table[table["service_line"].astype(str) == g].iloc[0]
        if b.metric == "prime_time_gap":
            head = (f"{g} asks for {row['demand_share']:.0%} of the horizon's minutes but gets {row['prime_time_share']:.0%} "
                    f"of prime time: {b.value_points:.1f} points short against a limit of {b.limit_points:g}.")
        elif b.metric == "late_slot_share_gap":
            head = f"{g} has {b.value_points:.1f} points more of its cases in late slots than the hospital (limit {b.limit_points:g})."
        else:
            head = f"{g}'s deferral rate is {b.value_points:.1f} points above the hospital's (limit {b.limit_points:g})."
        why: list[str] = []
        if len(deferred):
            longest = deferred["demand_minutes"].max()
            what = f"{len(deferred)} of its {n} cases {'is' if len(deferred) == 1 else 'are'} deferred"
            if (deferred["demand_minutes"] > prime_len).all():
                why.append(f"{what}, {'it is' if len(deferred) == 1 else 'each'} longer (P50 up to {longest:.0f} min) "
                           f"than prime time itself ({prime_len} min)")
            else:
                reasons = deferred.get("reason")
                first = str(reasons.dropna().iloc[0]) if reasons is not None and reasons.notna().any() else ""
                why.append(f"{what} (P50 up to {longest:.0f} min)" + (f"; the first: {first}" if first else ""))
        sched = mine[mine["status"] == "scheduled"]
        if len(sched):
            late = sched[sched["start"] >= sched["date"] + pd.Timedelta(minutes=pe)]
            if len(late):
                why.append(f"{len(late)} of its scheduled cases start after prime time ends")
        else:
            why.append("none of its cases could be scheduled")
        if not why:
            why.append("its rooms' prime time is already full with its own cases")
        text = "; ".join(why)
        lines.append(f"{head} {text[0].upper()}{text[1:]}.")
    return lines
