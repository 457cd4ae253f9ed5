"""One typed parameter object for the forecasting engine."""
from __future__ import annotations

from dataclasses import dataclass, fields
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


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
    - ``calibration_share``: on a short history the calibration window is at most this share of
      the days of history before ``train_until`` (so a 3-month extract keeps ~70 days to train on).
    - ``min_history_days``: fewer days of history than this (6 weeks) is too little to forecast.
    - ``min_cancellations``: fewer cancellations than this in the training window (or fewer than
      ``min_calibration_cancellations`` in the calibration window) and the cancellation model is
      skipped: forecasts carry the history's base rate with a note (``Forecaster.notes``).
    - ``blend_weights``: the model's weights tried against the best simple baseline on the
      calibration window (1 = model only, 0 = baseline only; "never worse than the baseline").
    - ``min_blend_group_cases``: a service line with this many calibration cases gets its own
      model/baseline choice, else it shares the hospital-wide one.
    - ``extra_features``: extra cases.csv columns declared as features (settings.toml
      ``extra_features`` or ``--extra-features``); numbers are numeric, short labels categorical,
      free text (e.g. procedure names) a token key; the guardrail policy still applies.
    - ``timezone``: the hospital's time zone (settings.toml ``timezone``; None = the plain
      wall-clock difference), so room minutes learned from and scored against are the real
      elapsed time across a daylight-saving change (``engine.timeutil.room_minutes``). Set from the
      hospital by ``hospital_params`` (``train_and_register``) the way ``extra_features`` is.
    - ``tune``: choose iterations, depth, learning rate and shrinkage per hospital by a
      time-split validation inside fit (``tune_budget_s`` of training time at most, counted in CPU
      seconds per thread: about the wall time on an unshared machine, and load-independent). Off for
      library calls (tests, plan and simulation fixtures keep their settings); on wherever a model
      is trained for use: ``train_and_register`` without params (the dashboard's retraining) and
      the ``train`` and ``evaluate`` commands (``TRAINING``). The defaults above are CatBoost's
      usual starting point, not tuned on the demo generator.
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
    calibration_share: float = 0.25
    min_history_days: int = 42
    min_cancellations: int = 20
    min_calibration_cancellations: int = 5
    blend_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    min_blend_group_cases: int = 150
    extra_features: tuple[str, ...] = ()
    timezone: str | None = None
    tune: bool = False
    tune_budget_s: float = 20.0

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
        if not 0.0 < self.calibration_share < 1.0:
            raise ValueError(f"calibration_share must be within 0..1, got {self.calibration_share!r}")
        for name in ("min_history_days", "min_cancellations", "min_calibration_cancellations",
                     "min_blend_group_cases", "tune_budget_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        ws = self.blend_weights
        if not ws or any(not 0.0 <= w <= 1.0 for w in ws) or 1.0 not in ws:
            raise ValueError(f"blend_weights must be values within 0..1 including 1.0 (the model alone), got {ws!r}")
        if isinstance(self.extra_features, str) or not all(isinstance(c, str) and c for c in self.extra_features):
            raise ValueError(f"extra_features must be a tuple of column names, got {self.extra_features!r}")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError, TypeError):
                raise ValueError(f"timezone must be an IANA time zone name (e.g. 'Europe/Paris') or None, "
                                 f"got {self.timezone!r}") from None
        if self.planning_lead_days < 0:
            raise ValueError(f"planning_lead_days must be >= 0, got {self.planning_lead_days!r}")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# The settings a model trained for use starts from: the defaults, tuned per hospital.
TRAINING = ForecastParams(tune=True)
