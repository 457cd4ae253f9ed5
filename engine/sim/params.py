"""One typed parameter object for the simulation engine (the *Param* of Param / Model / Runner)."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

ADDON_POLICIES = ("reserve", "next_free", "bump")
ENGINES = ("vector", "simpy")


@dataclass(frozen=True)
class SimParams:
    """How the simulated OR day works (units in names). Validated on construction.

    Structural behaviour of the day lives here; what a *scenario* stresses (duration inflation,
    cancellation spike, late starts, downtime, add-on volume, staffing and PACU deltas) lives in
    the scenario TOML files (``engine.sim.scenario``).

    - ``addon_policy``: where an add-on goes. ``reserve``: only to held capacity (staffed rooms
      with no elective list that day) when a capable one exists, else as ``next_free``;
      ``next_free``: the first capable room to become free takes it before its next elective;
      ``bump``: as ``next_free``, and the room's last remaining elective is cancelled (bumped).
    - ``engine``: ``vector`` (numpy, replications as an array axis; the fast default) or
      ``simpy`` (the reference discrete-event model). Both give identical results for a seed.
    - ``turnover_sigma`` / ``pacu_stay_sigma``: log-sd of the log-normal turnover and PACU stay,
      whose medians are the hospital's ``turnover_minutes`` / ``pacu_minutes`` settings.
    - ``early_start_minutes`` / ``early_ready_prob``: a patient is ready this many minutes before
      the planned start with this probability, so a room running early may start early
      (never for the first case of a room).
    - ``min_duration_minutes`` / ``max_duration_minutes``: clip of drawn case durations.
    - ``z_clip``: drawn normal scores are clipped to +-z_clip (keeps the log-normal tail finite).
    - ``max_addons_per_group``: cap on add-ons per date x service line in one replication.
    - ``addon_arrival_jitter_minutes``: an add-on arrives up to this long after the bootstrapped
      historical ready time (smooths the empirical arrival curve, breaks ties).
    - ``addon_site_min_share``: add-ons run only at sites that took at least this share of the
      hospital's historical add-ons (the demo: the main site).
    - ``chunk_reps``: replications per task when a run is split (Dask or memory).
    - ``dask_timeout_s``: how long to try to reach a Dask scheduler before giving up.
    """

    addon_policy: str = "reserve"
    engine: str = "vector"
    turnover_sigma: float = 0.30
    pacu_stay_sigma: float = 0.35
    early_start_minutes: float = 60.0
    early_ready_prob: float = 0.7
    min_duration_minutes: float = 5.0
    max_duration_minutes: float = 1200.0
    z_clip: float = 4.0
    max_addons_per_group: int = 40
    addon_arrival_jitter_minutes: float = 10.0
    addon_site_min_share: float = 0.05
    chunk_reps: int = 2000
    dask_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.addon_policy not in ADDON_POLICIES:
            raise ValueError(f"addon_policy must be one of {', '.join(ADDON_POLICIES)}, got {self.addon_policy!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        for name, lo, hi in (
            ("turnover_sigma", 0.0, 3.0), ("pacu_stay_sigma", 0.0, 3.0), ("early_start_minutes", 0.0, 600.0),
            ("early_ready_prob", 0.0, 1.0), ("min_duration_minutes", 0.0, 1440.0),
            ("max_duration_minutes", 1.0, 1440.0), ("z_clip", 1.0, 10.0),
            ("addon_arrival_jitter_minutes", 0.0, 240.0), ("addon_site_min_share", 0.0, 1.0),
            ("dask_timeout_s", 0.1, 3600.0),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or not lo <= v <= hi:
                raise ValueError(f"{name} must be a number within {lo:g}..{hi:g}, got {v!r}")
        if self.min_duration_minutes >= self.max_duration_minutes:
            raise ValueError(f"min_duration_minutes must be below max_duration_minutes, got {self.min_duration_minutes!r}")
        for name, lo in (("max_addons_per_group", 0), ("chunk_reps", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")

    def with_(self, **changes) -> "SimParams":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
