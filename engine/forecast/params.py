"""One typed parameter object for the forecasting engine."""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ForecastParams:
    """Settings of the forecasting engine (units in names).

    - ``quantiles``: duration quantiles produced (P50, P80, P95 by default).
    - ``planning_lead_days``: features for a case are built as of this many days before its
      surgery date (the plan is made the day before), or as of the planning date if earlier.
    - ``shrinkage_cases``: pseudo-count pulling a surgeon x procedure median towards the
      procedure (else service-line) median when the pair has few cases.
    - ``min_pair_cases``: below this many past cases a surgeon x procedure pair is "new".
    - ``calibration_days``: the most recent window of training data held out for conformal
      calibration (and for calibrating the cancellation probability).
    - ``min_train_cases``: fewer completed cases than this is too little data to train.
    - ``min_calibration_cases``: fewer completed cases than this in the calibration window is too
      little data to calibrate.
    - ``min_group_calibration_cases``: fewest calibration cases for a novelty group to get its own
      conformal offsets (else it borrows the pooled unfamiliar or the global ones); a group is
      calibrated on the latest window alone once this many of its residuals lie beyond the
      highest quantile (600 cases for 30 and P95), else earlier windows are added.
    - ``calibration_windows``: how many consecutive ``calibration_days`` windows (the latest and
      the ones before it) may calibrate groups too small for the latest window alone; each
      earlier window is scored by an extra model trained only on cases before it (one more
      CatBoost fit per window). 1 = the latest window only.
    - ``iterations`` / ``depth`` / ``learning_rate``: CatBoost settings (tests use few).
    - ``forbidden_features``: attributes to forbid on top of the guardrail policy file
      (data/policy/guardrails.toml), which the feature builder always enforces.
    """

    quantiles: tuple[float, ...] = (0.5, 0.8, 0.95)
    planning_lead_days: int = 1
    shrinkage_cases: float = 5.0
    min_pair_cases: int = 3
    recent_cases: int = 20
    calibration_days: int = 91
    min_train_cases: int = 200
    min_calibration_cases: int = 50
    min_group_calibration_cases: int = 30
    calibration_windows: int = 2
    iterations: int = 400
    depth: int = 6
    learning_rate: float = 0.1
    max_ctr_complexity: int = 1
    cancel_iterations: int = 300
    random_state: int = 0
    thread_count: int = 2
    forbidden_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        qs = self.quantiles
        if not qs or any(not 0.0 < q < 1.0 for q in qs) or list(qs) != sorted(set(qs)):
            raise ValueError(f"quantiles must be increasing values strictly within 0..1, got {qs!r}")
        if 0.5 not in qs:
            raise ValueError("quantiles must include 0.5 (the P50 the optimizer and reasons use)")
        positive = ("shrinkage_cases", "min_pair_cases", "recent_cases", "calibration_days",
                    "min_train_cases", "iterations", "depth", "learning_rate", "cancel_iterations",
                    "thread_count", "min_calibration_cases", "min_group_calibration_cases", "calibration_windows")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.calibration_windows != int(self.calibration_windows):
            raise ValueError(f"calibration_windows must be a whole number, got {self.calibration_windows!r}")
        if self.planning_lead_days < 0:
            raise ValueError(f"planning_lead_days must be >= 0, got {self.planning_lead_days!r}")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
