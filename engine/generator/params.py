"""The generator's parameters (:class:`GeneratorParams`) and the format's constants (output files,
equipment, site names)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from engine.contract import SETTINGS_FILE
from engine.generator.catalog import _SERVICE_LINES
from engine.timeutil import parse_window


OUTPUT_FILES = ("cases.csv", "rooms.csv", "surgeons.csv", "blocks.csv", "staffing.csv", "truth.csv",
                SETTINGS_FILE)
EQUIPMENT = ("robot", "hybrid", "cath", "fluoro", "laparoscopy")
_EQ_BIT = {name: 1 << i for i, name in enumerate(EQUIPMENT)}
ANESTHESIA_TYPES = ("general", "regional", "MAC", "local")
ADMISSION_TYPES = ("outpatient", "same-day admit", "inpatient")
CANCEL_REASONS = ("patient not fit", "patient no-show", "no bed", "surgeon unavailable", "equipment",
                  "patient request")
ADDON_LAST_START_MINUTE = 22 * 60
ROOM_TIME_SCALE = 1.1
ROOM_TIME_OVERHEAD_MINUTES = 12.0
SITE_NAMES = ("Main", "North", "South", "East", "West", "Central", "Riverside", "Lakeside")


@dataclass(frozen=True)
class GeneratorParams:
    """Knobs of the demo hospital. Units are in the names; validated on construction."""

    seed: int = 7
    rooms: int = 16
    sites: int | None = None  # the hospital's own sites; None: 2, or 1 for a one-room hospital
    history_days: int = 730
    horizon_days: int = 14
    today: dt.date = dt.date(2027, 1, 4)
    n_service_lines: int = 10
    n_surgeons: int = 60
    n_procedures: int = 150
    # hospital rules written to settings.toml
    turnover_minutes: float = 30.0
    pacu_minutes: float = 75.0
    overtime_cap_minutes: float = 120.0
    prime_time: str = "07:30-15:30"
    hospital_name: str = "Demo General Hospital"
    # demand and behaviour
    block_fill_mean: float = 0.90
    horizon_fill_mean: float = 0.94
    addon_rate_per_room: float = 0.32
    cancel_rate: float = 0.062
    late_start_prob: float = 0.35
    late_start_mean_minutes: float = 12.0
    bmi_missing_rate: float = 0.02

    def __post_init__(self) -> None:
        if self.sites is None and isinstance(self.rooms, (int, np.integer)):
            object.__setattr__(self, "sites", 2 if self.rooms >= 2 else 1)

        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"GeneratorParams.{name} must be {rule}, got {getattr(self, name)!r}")

        for name in ("seed", "rooms", "sites", "history_days", "horizon_days", "n_service_lines",
                     "n_surgeons", "n_procedures"):
            value = getattr(self, name)
            need(isinstance(value, (int, np.integer)) and not isinstance(value, bool), name, "an integer")
        need(self.seed >= 0, "seed", ">= 0")
        need(self.rooms >= 1, "rooms", ">= 1")
        need(1 <= self.sites <= self.rooms, "sites", "between 1 and rooms")
        need(self.history_days >= 0, "history_days", ">= 0")
        need(self.horizon_days >= 0, "horizon_days", ">= 0")
        need(isinstance(self.today, dt.date) and not isinstance(self.today, dt.datetime), "today",
             "a datetime.date")
        need(1 <= self.n_service_lines <= len(_SERVICE_LINES), "n_service_lines",
             f"between 1 and {len(_SERVICE_LINES)}")
        need(self.n_surgeons >= self.n_service_lines, "n_surgeons", ">= n_service_lines")
        need(self.n_procedures >= 2 * self.n_service_lines, "n_procedures", ">= 2 * n_service_lines")
        need(self.turnover_minutes > 0, "turnover_minutes", "> 0")
        need(self.pacu_minutes > 0, "pacu_minutes", "> 0")
        need(self.overtime_cap_minutes >= 0, "overtime_cap_minutes", ">= 0")
        need(0.1 <= self.block_fill_mean <= 0.99, "block_fill_mean", "between 0.1 and 0.99")
        need(0.1 <= self.horizon_fill_mean <= 0.99, "horizon_fill_mean", "between 0.1 and 0.99")
        need(self.addon_rate_per_room >= 0, "addon_rate_per_room", ">= 0")
        need(0.0 < self.cancel_rate < 0.5, "cancel_rate", "between 0 and 0.5")
        need(0.0 <= self.late_start_prob <= 1.0, "late_start_prob", "between 0 and 1")
        need(self.late_start_mean_minutes >= 0, "late_start_mean_minutes", ">= 0")
        need(0.0 <= self.bmi_missing_rate < 1.0, "bmi_missing_rate", "between 0 and 1")
        try:
            parse_window(self.prime_time)
            ok = True
        except ValueError:
            ok = False
        need(ok, "prime_time", "'HH:MM-HH:MM', starting before it ends")
