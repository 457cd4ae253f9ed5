"""One typed parameter object for the allocator."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

SOLVERS = ("highs", "glpk", "rules")
SEQUENCERS = ("cpsat", "greedy")
# The fairness term's weight per slack minute of prime time when only its limit is given.
FAIRNESS_DEFAULT_WEIGHT = 10.0


@dataclass(frozen=True)
class PlanParams:
    """Settings of a plan (units in names). Validated on construction.

    Weights are per minute unless named per case. ``overtime_spread`` is the share of each
    case's (P80 - P50) counted towards a room's P80 finish: the P80 of a sum of independent
    durations is below the sum of their P80s (about sum P50 + sqrt(n) x mean(P80 - P50)), so 0.6
    approximates a room of three cases.

    ``gap_tolerance`` no longer makes a plan fall back (issue 16: a schedule that scores better
    than the rules one is used whatever its gap, with the gap shown); it is kept for callers
    that read it.

    ``hold_addon_rooms``: keep open (unblocked) rooms free for the day's add-ons, up to the add-on
    forecast's reserve minutes (P80 of the day's add-on minutes); each reserve minute not held
    costs ``w_addon_reserve``, by default as much as a minute of overtime (``w_overtime``): an
    add-on with no free room runs in an elective room, which a full day pushes past close.
    """

    days: int = 1
    solver: str = "highs"
    time_limit_s: float = 30.0
    mip_gap: float = 0.01
    gap_tolerance: float = 0.05
    overtime_cap_minutes: float | None = None  # None: settings.toml, else 120
    allow_open_time: bool = True
    allow_date_change: bool = True
    overtime_spread: float = 0.6
    w_overtime: float = 3.0
    w_idle_prime: float = 0.5
    w_defer_case: float = 1000.0
    w_defer_urgent_case: float = 5000.0
    w_preference_case: float = 10.0
    w_stability_date_case: float = 40.0
    w_stability_room_case: float = 15.0
    w_fairness: float = 0.0
    fairness_max_gap_points: float | None = None  # None: the hospital's policy (settings [fairness])
    fairness_policy: bool = True  # apply (and check) the fairness policy; False: plain plan, still reported
    hold_addon_rooms: bool = True
    w_addon_reserve: float = 3.0
    w_service_level: float | None = None  # per minute of a room's service-level finish past close + L; None: derived (terms.service_level_weight)
    keep_rules_count: bool = True  # schedule no fewer cases than the rules schedule (soft; model.keep_rules_count)
    sequencer: str = "cpsat"  # cpsat: PACU-aware CP-SAT times (engine/plan/cpsat.py); greedy: the event loop only
    sequence_time_limit_s: float = 3.0  # CP-SAT's limit per day
    w_sequence_delay: float = 0.001  # per minute a case waits past its earliest start in the sequencer (cpsat.py)
    w_pacu_hold: float | None = None  # per expected PACU hold minute of a day (terms._add_pacu_load); None: derived from the deferral cost (terms.pacu_hold_weight); 0: off
    w_pacu_peak_bed: float = 150.0  # per bed of the day's planned PACU peak (staggering), see cpsat.py
    label: str = "balanced"

    def __post_init__(self) -> None:
        if not 1 <= self.days <= 7:
            raise ValueError(f"days must be within 1..7, got {self.days!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if self.sequencer not in SEQUENCERS:
            raise ValueError(f"sequencer must be one of {', '.join(SEQUENCERS)}, got {self.sequencer!r}")
        if self.sequence_time_limit_s <= 0:
            raise ValueError(f"sequence_time_limit_s must be > 0, got {self.sequence_time_limit_s!r}")
        if self.time_limit_s <= 0:
            raise ValueError(f"time_limit_s must be > 0, got {self.time_limit_s!r}")
        if not 0 <= self.mip_gap < 1:
            raise ValueError(f"mip_gap must be within 0..1, got {self.mip_gap!r}")
        if not 0 <= self.gap_tolerance < 1:
            raise ValueError(f"gap_tolerance must be within 0..1, got {self.gap_tolerance!r}")
        if self.overtime_cap_minutes is not None and self.overtime_cap_minutes < 0:
            raise ValueError(f"overtime_cap_minutes must be >= 0, got {self.overtime_cap_minutes!r}")
        if not 0 <= self.overtime_spread <= 1:
            raise ValueError(f"overtime_spread must be within 0..1, got {self.overtime_spread!r}")
        for f in fields(self):
            if f.name.startswith("w_") and getattr(self, f.name) is not None and getattr(self, f.name) < 0:
                raise ValueError(f"{f.name} must be >= 0, got {getattr(self, f.name)!r}")
        if self.w_pacu_hold is not None and self.w_pacu_hold < 0:
            raise ValueError(f"w_pacu_hold must be >= 0, got {self.w_pacu_hold!r}")
        if self.w_service_level is not None and self.w_service_level < 0:
            raise ValueError(f"w_service_level must be >= 0, got {self.w_service_level!r}")
        if self.fairness_max_gap_points is not None and not 0 <= self.fairness_max_gap_points <= 100:
            raise ValueError(f"fairness_max_gap_points must be within 0..100, got {self.fairness_max_gap_points!r}")

    def with_(self, **changes) -> "PlanParams":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Ranked alternatives offered next to the chosen plan: same rules, other weightings.
ALTERNATIVES: dict[str, dict] = {
    "utilization-first": {"w_overtime": 0.5, "w_idle_prime": 3.0, "overtime_spread": 0.3},
    "balanced": {},
    "overtime-averse": {"w_overtime": 10.0, "w_idle_prime": 0.2, "overtime_spread": 1.0},
}
