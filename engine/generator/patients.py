"""Patients, case durations and surgeons' booking estimates."""
from __future__ import annotations

import numpy as np

from engine.generator.world import _choice_rows, _round15, _World


def _patients(rng: np.random.Generator, world: _World, proc: np.ndarray, main_site: np.ndarray,
              addon: np.ndarray, emergent: np.ndarray) -> dict[str, np.ndarray]:
    procs, sls = world.procs, world.sls
    n = len(proc)
    sl = procs["sl_idx"].to_numpy()[proc]
    cx = procs["complexity"].to_numpy()[proc]
    age_mean = np.array([x.age_mean for x in sls])[sl] + 6 * (cx - 0.45)
    age = np.clip(np.round(rng.normal(age_mean, 14.0)), 18, 95)
    female = rng.random(n) < np.array([x.female_p for x in sls])[sl]
    bmi = np.clip(np.exp(rng.normal(np.log(28.5), 0.19, n)), 16.0, 60.0)
    latent = (0.04 * (age - 50) + 0.07 * (bmi - 28) + np.array([x.asa_shift for x in sls])[sl]
              + 0.9 * cx + 0.6 * addon + 0.8 * emergent + rng.normal(0, 0.75, n))
    asa = 1 + (latent > -0.35).astype(int) + (latent > 1.15) + (latent > 2.55) + (latent > 3.9)
    asa = np.where(emergent, asa, np.minimum(asa, 4))
    asa = np.where(main_site, asa, np.minimum(asa, 3))
    an_p = np.array([x.anesthesia_p for x in sls])[sl]
    anest = _choice_rows(rng, an_p)
    anest = np.where((cx > 0.55) & (rng.random(n) < 0.9), 0, anest)
    adm_latent = (-2.3 + 4.6 * cx + 0.5 * (asa - 2) + 0.02 * (age - 60) + 1.8 * addon
                  + np.array([x.admit_shift for x in sls])[sl] + rng.normal(0, 0.9, n))
    adm = (adm_latent > 0).astype(int) + (adm_latent > 1.1)
    adm = np.where(main_site, adm, 0)   # ambulatory sites discharge everyone home
    return {"age": age, "female": female, "bmi": np.round(bmi, 1), "asa": asa.astype(int),
            "anesthesia": anest, "admission": adm}


def _log_median(world: _World, surgeon: np.ndarray, proc: np.ndarray, pat: dict[str, np.ndarray],
                main_site: np.ndarray, emergent: np.ndarray, day: np.ndarray, today_day: int
                ) -> np.ndarray:
    """log of the true median room time of each case: the learnable part of the duration."""
    procs = world.procs
    month = (day.astype("datetime64[D]").astype("datetime64[M]").astype(int) % 12) + 1
    return (np.log(procs["base_minutes"].to_numpy()[proc])
            + _surgeon_terms(world, surgeon, proc, day, today_day)
            + _patient_terms(world, proc, pat, emergent)
            + 0.04 * (((month == 7) | (month == 8)) & main_site)   # new residents in July
            - 0.05 * (~main_site))


def _patient_terms(world: _World | None, proc: np.ndarray, pat: dict[str, np.ndarray],
                   emergent: np.ndarray) -> np.ndarray:
    """Patient effects on log duration, centred on the service line's typical elective patient."""
    bmi, asa, an, adm = pat["bmi"], pat["asa"], pat["anesthesia"], pat["admission"]
    raw = (0.10 * (asa - 2) + 0.005 * (pat["age"] - 55)
           + 0.12 * (bmi >= 35) + 0.10 * (bmi >= 45)
           + 0.12 * (an == 0) - 0.10 * (an >= 2)
           + 0.10 * (adm == 2) + 0.10 * emergent)
    if world is None or not len(world.patient_center):
        return raw
    return raw - world.patient_center[world.procs["sl_idx"].to_numpy()[proc]]


def _sigma(world: _World, proc: np.ndarray, asa: np.ndarray, addon: np.ndarray) -> np.ndarray:
    return world.procs["sigma"].to_numpy()[proc] * (1 + 0.1 * (asa >= 4)) + 0.03 * addon


def _noise(rng: np.random.Generator, world: _World, proc: np.ndarray, asa: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per-case duration noise: a standard normal and the complication multiplier (1 or 1.3-2.0)."""
    n = len(proc)
    cx = world.procs["complexity"].to_numpy()[proc]
    z = rng.standard_normal(n)
    p_comp = 0.01 + 0.025 * cx + 0.01 * (asa >= 4)
    mult = np.where(rng.random(n) < p_comp, rng.uniform(1.3, 2.0, n), 1.0)
    return z, mult


def _duration(log_med: np.ndarray, sigma: np.ndarray, z: np.ndarray, mult: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.exp(log_med + sigma * z) * mult), 10, 1200)


def _surgeon_terms(world: _World, surgeon: np.ndarray, proc: np.ndarray, day: np.ndarray,
                   today_day: int) -> np.ndarray:
    surg = world.surgeons
    return (surg["effect"].to_numpy()[surgeon] + world.interaction[surgeon, proc]
            + surg["drift"].to_numpy()[surgeon] * (day - today_day) / 365.25)


def _booked_minutes(rng: np.random.Generator, world: _World, surgeon: np.ndarray, proc: np.ndarray,
                    pat: dict[str, np.ndarray], emergent: np.ndarray, day: np.ndarray, today_day: int
                    ) -> np.ndarray:
    """The surgeon's estimate: partly informed, optimistic, worse for complex cases, rounded."""
    procs, surg = world.procs, world.surgeons
    n = len(proc)
    cx = procs["complexity"].to_numpy()[proc]
    log_b = (np.log(procs["base_minutes"].to_numpy()[proc])
             + 0.7 * (surg["effect"].to_numpy()[surgeon]
                      + surg["drift"].to_numpy()[surgeon] * (day - today_day) / 365.25)
             + 0.3 * world.interaction[surgeon, proc]
             + 0.6 * _patient_terms(world, proc, pat, emergent)
             + surg["optimism"].to_numpy()[surgeon]
             - 0.07 * cx
             + rng.normal(0, 0.24, n))
    booked = _round15(np.exp(log_b))
    habitual = surg["habitual"].to_numpy()[surgeon] & (rng.random(n) < 0.8)
    return np.where(habitual, surg["default_booked"].to_numpy()[surgeon], booked)
