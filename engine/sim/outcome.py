"""What happened in a block of simulated days: per replication, per case and per room.

Both engines fill the same arrays, so they can be compared value for value, and the metrics
(:mod:`engine.sim.metrics`) are computed from them in one place.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Elective states. Staff cancellations (rooms closed for lack of staff) are decided before the
# day and are not among the simulated cases.
PENDING, RUN, PATIENT, SPILL, OVERRUN, BEDS, BUMPED = 0, 1, 2, 4, 5, 6, 7
# Add-on slot states.
A_NONE, A_RUN, A_WAIT, A_SPILL = 0, 1, 3, 4


@dataclass
class Outcome:
    e_state: np.ndarray  # (n, E) int8
    e_start: np.ndarray  # (n, E) wheels-in minute (NaN if not run)
    e_end: np.ndarray  # end of surgery (the PACU request)
    e_release: np.ndarray  # wheels-out: end + PACU hold
    e_hold: np.ndarray
    a_state: np.ndarray  # (n, A)
    a_start: np.ndarray
    a_end: np.ndarray
    a_release: np.ndarray
    a_hold: np.ndarray
    a_room: np.ndarray  # (n, A) room index, -1
    last_release: np.ndarray  # (n, rooms) last wheels-out of the room (NaN: nothing ran)

    @classmethod
    def empty(cls, n: int, n_cases: int, n_addons: int, n_rooms: int) -> "Outcome":
        nan = lambda m: np.full((n, m), np.nan)  # noqa: E731
        return cls(
            e_state=np.zeros((n, n_cases), dtype=np.int8), e_start=nan(n_cases), e_end=nan(n_cases),
            e_release=nan(n_cases), e_hold=nan(n_cases), a_state=np.zeros((n, n_addons), dtype=np.int8),
            a_start=nan(n_addons), a_end=nan(n_addons), a_release=nan(n_addons), a_hold=nan(n_addons),
            a_room=np.full((n, n_addons), -1, dtype=int), last_release=nan(n_rooms),
        )

    def max_abs_difference(self, other: "Outcome") -> float:
        """Largest difference between two outcomes (inf when states differ)."""
        if not (np.array_equal(self.e_state, other.e_state) and np.array_equal(self.a_state, other.a_state)
                and np.array_equal(self.a_room, other.a_room)):
            return float("inf")
        worst = 0.0
        for name in ("e_start", "e_end", "e_release", "e_hold", "a_start", "a_end", "a_release", "a_hold", "last_release"):
            a, b = getattr(self, name), getattr(other, name)
            if not np.array_equal(np.isnan(a), np.isnan(b)):
                return float("inf")
            if a.size:
                worst = max(worst, float(np.nanmax(np.abs(np.nan_to_num(a) - np.nan_to_num(b)))))
        return worst
