"""Leadership's trade-off: the optimized schedule against the hospital's own block rules, on the
same random days, with paired 95% intervals and a verdict in one plain sentence.

``decision_comparison`` simulates both schedules with one seed (common random numbers,
``compare_policies``) and reports, per measure, the optimized value, the rules value, the
difference and its paired 95% interval:

- P95 and mean overtime minutes (staff overtime, rooms' last wheels-out past close);
- mean PACU hold minutes (patients waiting in the OR for a recovery bed);
- cases scheduled and deferred (from the schedules themselves: no interval, they are plans);
- elective cases run (simulated, after cancellations and spill-overs);
- prime-time utilization (simulated, in points);
- rooms past close (simulated count per replication).

Minutes, counts and utilization points are different units: the table keeps a ``unit`` column
so that charts draw them on separate axes.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.hospital import Hospital
from engine.sim.runner import PolicyComparison, compare_policies
from engine.sim.scenario import Scenario

# (label, metric, statistic, unit, scale): scale turns the simulation's value into the unit.
MEASURES = (
    ("P95 overtime", "overtime_minutes", "p95", "minutes", 1.0),
    ("mean overtime", "overtime_minutes", "mean", "minutes", 1.0),
    ("mean PACU hold", "pacu_hold_minutes", "mean", "minutes", 1.0),
    ("elective cases run", "elective_cases_run", "mean", "cases", 1.0),
    ("prime-time utilization", "utilization", "mean", "points", 100.0),
    ("rooms past close", "rooms_past_close", "mean", "rooms", 1.0),
)


@dataclass
class DecisionComparison:
    table: pd.DataFrame  # measure, unit, optimized, rules, diff, ci_lo, ci_hi, ratio
    verdict: str
    comparison: PolicyComparison
    scenario: str
    reps: int
    seed: int

    def to_json(self) -> dict:
        return {"scenario": self.scenario, "reps": self.reps, "seed": self.seed, "verdict": self.verdict,
                "measures": self.table.to_dict("records")}


def _counts(schedule: pd.DataFrame) -> tuple[int, int]:
    st = schedule["status"]
    return int((st == "scheduled").sum()), int((st == "deferred").sum())


def decision_comparison(hospital: Hospital, optimized: pd.DataFrame, rules: pd.DataFrame, forecasts: pd.DataFrame,
                        scenario: Scenario | str = "normal", reps: int = 1000, seed: int = 0,
                        **kw) -> DecisionComparison:
    """The optimized schedule against the rules schedule on the same random days (see module doc).
    ``kw`` goes to :func:`engine.sim.compare_policies` (addon_forecast, params, scheduler_address)."""
    cmp = compare_policies(hospital, {"optimized": optimized, "rules": rules}, forecasts, scenario, reps, seed,
                           baseline="rules", **kw)
    p = cmp.paired
    rows = []
    for label, metric, stat, unit, scale in MEASURES:
        r = p[(p["metric"] == metric) & (p["statistic"] == stat)]
        if not len(r):
            continue
        r = r.iloc[0]
        rows.append({"measure": label, "unit": unit, "optimized": scale * r["policy_value"], "rules": scale * r["baseline_value"],
                     "diff": scale * r["diff"], "ci_lo": scale * r["ci_lo"], "ci_hi": scale * r["ci_hi"]})
    so, do = _counts(optimized)
    sr, dr = _counts(rules)
    rows.append({"measure": "cases scheduled", "unit": "cases", "optimized": so, "rules": sr, "diff": so - sr,
                 "ci_lo": so - sr, "ci_hi": so - sr})
    rows.append({"measure": "deferrals", "unit": "cases", "optimized": do, "rules": dr, "diff": do - dr,
                 "ci_lo": do - dr, "ci_hi": do - dr})
    table = pd.DataFrame(rows)
    table["ratio"] = [o / r if r else None for o, r in zip(table["optimized"], table["rules"])]
    name = scenario if isinstance(scenario, str) else scenario.name
    return DecisionComparison(table, verdict_sentence(table), cmp, name, reps, seed)


def _change(label: str, ratio: float | None, diff: float, unit: str, lo: float, hi: float) -> str | None:
    """A few words for one measure, or None when the interval says nothing (it spans zero)."""
    if lo <= 0 <= hi and unit != "cases":
        return None
    if ratio is not None and unit == "minutes":
        if ratio <= 0.55:
            return f"{label} {'halved' if ratio > 0.4 else 'cut by ' + format(1 - ratio, '.0%')}"
        pct = abs(1 - ratio)
        return f"{pct:.0%} {'less' if ratio < 1 else 'more'} {label}"
    if unit == "points":
        return f"utilization {diff:+.1f} points"
    return None


def verdict_sentence(table: pd.DataFrame) -> str:
    """One plain sentence, e.g. "Against your block rules: 31% less P95 overtime, PACU holds halved,
    3 more cases scheduled." Changes whose 95% interval spans zero are left out (said as such)."""
    t = table.set_index("measure")
    parts = []
    for label, words in (("P95 overtime", "P95 overtime"), ("mean PACU hold", "PACU hold minutes")):
        if label in t.index:
            r = t.loc[label]
            w = _change(words, r["ratio"], r["diff"], r["unit"], r["ci_lo"], r["ci_hi"])
            if w:
                parts.append(w)
    if "cases scheduled" in t.index:
        n = int(t.loc["cases scheduled", "diff"])
        parts.append(f"{abs(n)} {'more' if n > 0 else 'fewer'} cases scheduled" if n else "the same number of cases scheduled")
    if "prime-time utilization" in t.index:
        r = t.loc["prime-time utilization"]
        w = _change("utilization", None, r["diff"], "points", r["ci_lo"], r["ci_hi"])
        if w:
            parts.append(w)
    if not parts:
        return "Against your block rules: no difference the simulation can tell apart."
    return "Against your block rules: " + ", ".join(parts) + "."
