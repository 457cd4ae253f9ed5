"""Leadership's trade-off: the optimized schedule against the hospital's own block rules, on the
same random days, with paired 95% intervals and a verdict in one plain sentence.

``decision_comparison`` simulates both schedules with one seed (common random numbers,
``compare_policies``) and ``decision_from`` reads an existing comparison (the Simulation page's,
which may hold more policies). Per measure: the optimized value, the rules value, the difference
and its paired 95% interval:

- P95 and mean overtime minutes (staff overtime, rooms' last wheels-out past close);
- mean PACU hold minutes (patients waiting in the OR for a recovery bed);
- cases scheduled and deferred (from the schedules themselves: plans, so the interval is the
  difference itself, ``basis`` says "planned");
- elective cases run (simulated, after cancellations and spill-overs);
- prime-time utilization (simulated, in points);
- rooms past close (simulated count per replication).

Minutes, counts and utilization points are different units: the table keeps a ``unit`` column
so that charts draw them on separate axes (``UNIT_GROUPS``).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.hospital import Hospital
from engine.sim.metrics import LOWER_IS_WORSE
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
# Units drawn on one axis together (a chart never mixes minutes with points).
UNIT_GROUPS = {"minutes": "minutes", "points": "utilization points", "cases": "cases and rooms", "rooms": "cases and rooms"}
# Unit of each simulation metric and its scale (utilization is a fraction: shown in points).
METRIC_UNITS = {"utilization": ("points", 100.0), "on_time_rate": ("points", 100.0)}
# Higher is better for these measures (the rest: lower is better).
HIGHER_IS_BETTER = {"elective cases run", "prime-time utilization", "cases scheduled"}
# Comparisons the pages make: this many replications on one seed unless the user says otherwise.
DEFAULT_REPS = 200
DEFAULT_SEED = 0
OPTIMIZED, RULES = "optimized", "rules"


@dataclass
class DecisionComparison:
    table: pd.DataFrame  # measure, unit, basis, optimized, rules, diff, ci_lo, ci_hi, ratio, judgement
    verdict: str
    comparison: PolicyComparison
    scenario: str
    reps: int
    seed: int

    @property
    def outcome(self) -> str:
        return outcome(self.table)

    def to_json(self) -> dict:
        return {"scenario": self.scenario, "reps": self.reps, "seed": self.seed, "verdict": self.verdict,
                "outcome": self.outcome, "measures": self.table.to_dict("records")}


def _counts(schedule: pd.DataFrame) -> tuple[int, int]:
    st = schedule["status"]
    return int((st == "scheduled").sum()), int((st == "deferred").sum())


def decision_comparison(hospital: Hospital, optimized: pd.DataFrame, rules: pd.DataFrame, forecasts: pd.DataFrame,
                        scenario: Scenario | str = "normal", reps: int = 1000, seed: int = 0,
                        **kw) -> DecisionComparison:
    """The optimized schedule against the rules schedule on the same random days (see module doc).
    ``kw`` goes to :func:`engine.sim.compare_policies` (addon_forecast, params, scheduler_address)."""
    cmp = compare_policies(hospital, {OPTIMIZED: optimized, RULES: rules}, forecasts, scenario, reps, seed,
                           baseline=RULES, **kw)
    name = scenario if isinstance(scenario, str) else scenario.name
    return decision_from(cmp, optimized, rules, name, reps, seed)


def decision_from(cmp: PolicyComparison, optimized: pd.DataFrame, rules: pd.DataFrame, scenario: str, reps: int,
                  seed: int, policy: str = OPTIMIZED, baseline: str = RULES) -> DecisionComparison:
    """The decision table and verdict read from a comparison already simulated with ``baseline``
    as its baseline (no second simulation)."""
    table = decision_table(cmp.paired, optimized, rules, policy, baseline)
    return DecisionComparison(table, verdict_sentence(table), cmp, scenario, reps, seed)


def decision_table(paired: pd.DataFrame, optimized: pd.DataFrame, rules: pd.DataFrame, policy: str = OPTIMIZED,
                   baseline: str = RULES) -> pd.DataFrame:
    """One row per measure (see module doc) from ``compare_policies``' paired differences of
    ``policy`` against ``baseline`` and the two schedules' own counts."""
    p = paired[(paired["policy"] == policy) & (paired["baseline"] == baseline)] if len(paired) else paired
    if not len(p):
        raise ValueError(f"the comparison has no paired differences of {policy!r} against {baseline!r}")
    rows = []
    for label, metric, stat, unit, scale in MEASURES:
        r = p[(p["metric"] == metric) & (p["statistic"] == stat)]
        if not len(r):
            continue
        r = r.iloc[0]
        rows.append({"measure": label, "unit": unit, "basis": "simulated", "optimized": scale * r["policy_value"],
                     "rules": scale * r["baseline_value"], "diff": scale * r["diff"], "ci_lo": scale * r["ci_lo"],
                     "ci_hi": scale * r["ci_hi"]})
    so, do = _counts(optimized)
    sr, dr = _counts(rules)
    for label, a, b in (("cases scheduled", so, sr), ("deferrals", do, dr)):
        rows.append({"measure": label, "unit": "cases", "basis": "planned", "optimized": a, "rules": b, "diff": a - b,
                     "ci_lo": a - b, "ci_hi": a - b})
    table = pd.DataFrame(rows)
    table["ratio"] = [o / r if r else None for o, r in zip(table["optimized"], table["rules"])]
    table["judgement"] = [judge(m, lo, hi) for m, lo, hi in zip(table["measure"], table["ci_lo"], table["ci_hi"])]
    return table


def judge(measure: str, lo: float, hi: float) -> str:
    """``better``, ``worse`` or ``no clear difference`` (the 95% interval spans zero) for the
    optimized schedule on ``measure``; a planned count with no difference is ``same``."""
    if lo == hi == 0:
        return "same"
    if lo <= 0 <= hi:
        return "no clear difference"
    up = lo > 0
    return "better" if up == (measure in HIGHER_IS_BETTER) else "worse"


def paired_units(paired: pd.DataFrame, metrics) -> pd.DataFrame:
    """``compare_policies``' paired rows for ``metrics`` with a ``unit`` column and values in that unit
    (utilization in points), for charts that draw each unit on its own axis."""
    d = paired[paired["metric"].isin(list(metrics))].copy()
    unit = d["metric"].map(lambda m: METRIC_UNITS.get(m, ("minutes" if m.endswith("_minutes") else "cases", 1.0)))
    d["unit"] = unit.map(lambda u: u[0])
    scale = unit.map(lambda u: u[1]).astype(float)
    for col in ("policy_value", "baseline_value", "diff", "ci_lo", "ci_hi"):
        d[col] = d[col].astype(float) * scale
    d["judgement"] = [("better" if (lo > 0) == (m in LOWER_IS_WORSE) else "worse") if not lo <= 0 <= hi
                      else "no clear difference" for m, lo, hi in zip(d["metric"], d["ci_lo"], d["ci_hi"])]
    return d.reset_index(drop=True)


def service_level_table(levels, stated: bool, summary: dict | None) -> pd.DataFrame:
    """The service levels in force (``settings.service_levels``) and the plan weights that follow
    from them (``PlanResult.kpis['service_level']``, see engine.plan.terms.service_level_weight):
    rows of ``item``, ``value`` and ``source``, for the Schedule page."""
    src = "settings.toml [service_levels]" if stated else "shipped default (settings.toml has no [service_levels])"
    budget = levels.pacu_hold_budget_minutes
    rows = [("a room finishes by close +", f"{levels.finish_by_close_plus_minutes:.0f} min", src),
            ("with probability at least", f"{levels.finish_probability:.0%}", src),
            ("PACU hold budget a day", "none stated (0 min)" if budget is None else f"{budget:.0f} min", src),
            ("PACU beds short the week must withstand", f"{levels.pacu_beds_short}", src)]
    if summary:
        rows += [("cost of a minute past the level", f"{summary['w_service_level_per_minute']:.1f}",
                  "follows from the level: a deferral's cost / the median case's P50 / (1 - probability)"),
                 ("cost of a deferral", f"{summary['w_defer_case']:.0f}", "plan setting"),
                 *([("cost of an expected PACU hold minute of a day", f"{summary['w_pacu_hold_per_minute']:.1f}",
                     ("follows from the deferral cost: a deferral's cost / the median case's P50 (a held patient keeps "
                      "the room a minute), past the day's budget" if summary["w_pacu_hold_per_minute"] > 0
                      else "plan setting (w_pacu_hold = 0: not priced)"))]
                   if "w_pacu_hold_per_minute" in summary else []),
                 ("cost of a bed of PACU peak", f"{summary['w_pacu_peak_bed']:.0f}", "plan setting"),
                 ("no fewer cases than the block rules", "yes" if summary["keep_rules_count"] else "no", "plan setting")]
    return pd.DataFrame(rows, columns=["item", "value", "source"])


# The verdict's headline measures and how the sentence names them.
_HEADLINE = (("P95 overtime", "P95 overtime"), ("mean PACU hold", "PACU hold minutes"),
             ("prime-time utilization", "utilization"))
HEADLINE_MEASURES = tuple(m for m, _ in _HEADLINE) + ("cases scheduled",)


def outcome(table: pd.DataFrame) -> str:
    """``worse`` when a headline measure is worse, ``better`` when one is better and none worse,
    else ``no clear difference``: how a page colours the verdict."""
    j = set(table.loc[table["measure"].isin(HEADLINE_MEASURES), "judgement"])
    return "worse" if "worse" in j else "better" if "better" in j else "no clear difference"


def _words(measure: str, words: str, r: pd.Series) -> str:
    """A few words for one measure whose interval excludes zero."""
    if r["unit"] == "points":
        return f"utilization {r['diff']:+.1f} points"
    ratio = r["ratio"]
    if ratio is None or pd.isna(ratio):
        return f"{abs(r['diff']):.0f} min {'less' if r['diff'] < 0 else 'more'} {words}"
    if ratio <= 0.55:
        return f"{words} {'halved' if ratio > 0.4 else 'cut by ' + format(1 - ratio, '.0%')}"
    if 1.9 <= ratio <= 2.1:
        return f"{words} doubled"
    return f"{abs(1 - ratio):.0%} {'less' if ratio < 1 else 'more'} {words}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def verdict_sentence(table: pd.DataFrame) -> str:
    """One plain sentence that follows the numbers, e.g. "Against your block rules: 31% less P95
    overtime, PACU hold minutes halved, 3 more cases scheduled; no clear difference in
    utilization." A change counts only when its 95% interval excludes zero; what is worse is said
    as worse ("..., but 20% more PACU hold minutes"), and when nothing is better the sentence
    starts "the optimized schedule is worse" or says there is no clear difference."""
    t = table.set_index("measure")
    better, worse, unclear = [], [], []
    for measure, words in _HEADLINE:
        if measure not in t.index:
            continue
        r = t.loc[measure]
        j = judge(measure, r["ci_lo"], r["ci_hi"])
        if j == "better":
            better.append(_words(measure, words, r))
        elif j == "worse":
            worse.append(_words(measure, words, r))
        else:
            unclear.append(words)
    same_cases = False
    if "cases scheduled" in t.index:
        n = int(t.loc["cases scheduled", "diff"])
        words = f"{abs(n)} {'more' if n > 0 else 'fewer'} case{'s' if abs(n) != 1 else ''} scheduled"
        if n:
            (better if n > 0 else worse).append(words)
        same_cases = n == 0
    head = "Against your block rules"
    if better and worse:
        body = f"{head}: {', '.join(better)}, but {_join(worse)}"
    elif better:
        body = f"{head}: {', '.join(better)}"
    elif worse:
        body = f"{head} the optimized schedule is worse: {', '.join(worse)}"
    else:
        body = f"{head}: no clear difference in {_join(unclear)}" if unclear else f"{head}: no difference"
        unclear = []
    if same_cases:
        body += (", " if better or worse else ", and ") + "the same number of cases scheduled"
    if unclear:
        body += f"; no clear difference in {_join(unclear)}"
    return body + "."
