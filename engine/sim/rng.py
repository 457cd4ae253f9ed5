"""Common random numbers keyed by replication and by entity, not by position.

Replication ``i`` of seed ``s`` is ``numpy.random.SeedSequence(s).spawn(n)[i]`` (DESIGN.md),
which is ``SeedSequence(s, spawn_key=(i,))`` whatever ``n`` is, so a run split into chunks (or
spread over a Dask cluster) draws exactly what the whole run draws. Within a replication every
random quantity is a counter-based draw: a 64-bit mix (SplitMix64's finaliser) of the
replication's key, a stable hash of the entity (a case id, a room-date, an add-on slot) and the
stream (what is drawn: duration, cancellation, turnover, ...). A case therefore gets the same
random numbers in every schedule that contains it, wherever it sits, and adding or removing
other cases changes nothing for it. That is what makes two schedules' comparison paired.
"""
from __future__ import annotations

import hashlib

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)

# Streams: what a draw is for. Never renumber (it would change every seeded result).
DURATION, CANCEL, TURNOVER, PACU_STAY, EARLY = 1, 2, 3, 4, 5
LATE, LATE_SIZE, DOWN, DOWN_AT = 6, 7, 8, 9
ADDON_COUNT, ADDON_ROW, ADDON_JITTER = 10, 11, 12
KNOB = 20


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def entity_key(text: str) -> int:
    """A stable 64-bit key of a string (the same in every process and Python version)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def entity_keys(texts) -> np.ndarray:
    return np.array([entity_key(str(t)) for t in texts], dtype=np.uint64)


def rep_keys(seed: int, start: int, stop: int) -> np.ndarray:
    """Keys of replications ``start..stop-1``: child ``i`` of ``SeedSequence(seed).spawn(n)``."""
    return np.array([np.random.SeedSequence(seed, spawn_key=(i,)).generate_state(1, np.uint64)[0]
                     for i in range(start, stop)], dtype=np.uint64)


def uniforms(reps: np.ndarray, keys: np.ndarray, stream: int) -> np.ndarray:
    """Uniform (0, 1) draws, shape (len(reps), len(keys)), one per replication x entity."""
    with np.errstate(over="ignore"):
        k = _mix(np.asarray(keys, dtype=np.uint64) + np.uint64(stream) * _GOLDEN)
        z = _mix(_mix(np.asarray(reps, dtype=np.uint64)[:, None] ^ k[None, :]))
    return ((z >> _S11).astype(np.float64) + 0.5) / 9007199254740992.0
