"""Real-shaped case tables built from a generated hospital, for the shape tests and the bench.

A real hospital's export is not the demo: no cancellations (completed cases only), no surgeon ids,
no booked minutes, a few corrupt rows, an old or short extract, local catch-all procedure codes,
free-text procedure names with abbreviations, and its own extra columns, some with signal and
some without. Each function takes the generated ``cases.csv`` as raw strings (``read_raw``) and
returns a new raw frame in the contract format; nothing here is tuned to one seed.

Extra columns (all built from the hospital's own data or the generator's hidden truth):
- ``primary_team``: the surgeon's team (surgeons of a service line paired in twos), the
  consultant code many exports carry instead of a surgeon id: real signal once ids are gone;
- ``complexity_score``: 1-5, a noisy quintile of the case's own true duration relative to its
  surgeon x procedure (what a booking clerk's complexity flag records), 10% missing;
- ``proc_text``: the procedure name as typed: abbreviations, upper/lower case, laterality,
  punctuation and a few acronyms; it identifies the procedure where the code is a catch-all;
- ``ward_code``, ``pre_op_score``: pure noise.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

EXTRAS = ["primary_team", "complexity_score", "proc_text", "ward_code", "pre_op_score"]
NOISE_EXTRAS = ["ward_code", "pre_op_score", "noise_text"]
_ACRONYMS = {"Total knee arthroplasty": "TKA", "Total hip arthroplasty": "THA", "Laparoscopic cholecystectomy": "LC",
             "Coronary artery bypass, arterial graft": "CABG", "Transurethral resection of bladder tumor": "TURBT"}


def read_raw(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _fmt(t: pd.Series) -> pd.Series:
    return t.dt.strftime("%Y-%m-%dT%H:%M")


def noisy_names(names: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Procedure names as people type them: abbreviated words, case, laterality, punctuation, acronyms."""
    def one(name: str) -> str:
        if name in _ACRONYMS and rng.random() < 0.25:
            return _ACRONYMS[name]
        words = []
        for w in re.split(r"[\s,]+", name):
            if len(w) > 5 and rng.random() < 0.45:
                w = w[: rng.integers(3, 6)] + ("." if rng.random() < 0.3 else "")
            words.append(w)
        text = " ".join(words)
        r = rng.random()
        text = text.upper() if r < 0.2 else text.lower() if r < 0.5 else text
        if rng.random() < 0.2:
            text += rng.choice([" (L)", " (R)", " - left", " - right", " rt", " lt"])
        return text

    return names.map(one)


def with_extras(raw: pd.DataFrame, truth: pd.DataFrame, rng: np.random.Generator, local_code_share: float = 0.3) -> pd.DataFrame:
    """Add the extra columns, and recode ``local_code_share`` of the cases of each service line to a
    local catch-all code (the name still says what was done)."""
    d = raw.copy()
    t = truth.set_index("case_id").reindex(d["case_id"])
    # Teams: the surgeons of a service line paired in twos.
    sg = d[["surgeon_id", "service_line"]].drop_duplicates().sort_values(["service_line", "surgeon_id"])
    sg["team"] = sg.groupby("service_line").cumcount() // 2
    team = dict(zip(sg["surgeon_id"], sg["service_line"].str[:4].str.upper() + "-T" + sg["team"].astype(str)))
    d["primary_team"] = d["surgeon_id"].map(team).fillna("")
    logm = np.log(t["true_median_minutes"].to_numpy(dtype=float))
    key = (d["surgeon_id"] + "|" + d["procedure_code"]).to_numpy()
    rel = logm - pd.Series(logm).groupby(key).transform("median").to_numpy()
    rel = rel + rng.normal(0, 0.03, len(rel))
    score = pd.qcut(pd.Series(rel).rank(method="first"), 5, labels=False).to_numpy() + 1
    d["complexity_score"] = np.where(rng.random(len(d)) < 0.1, "", score.astype(int).astype(str))
    d["proc_text"] = noisy_names(d["procedure_name"], rng).to_numpy()
    d["ward_code"] = rng.choice(["W1", "W2", "W3", "W4", "DSU"], len(d))
    d["pre_op_score"] = np.round(rng.normal(50, 10, len(d)), 1).astype(str)
    local = rng.random(len(d)) < local_code_share
    d.loc[local, "procedure_code"] = "LOCAL-" + d.loc[local, "service_line"].str[:4].str.upper()
    d = d.drop(columns=["procedure_name"])
    return d


def corrupt(raw: pd.DataFrame, rng: np.random.Generator, n: int = 6) -> tuple[pd.DataFrame, int]:
    """A few corrupt completed rows (unreadable time, impossible date, wheels out before in)."""
    d = raw.copy()
    idx = rng.choice(d.index[d["status"] == "completed"], n, replace=False)
    k = n // 3
    d.loc[idx[:k], "wheels_out"] = "not-a-time"
    d.loc[idx[k:2 * k], "surgery_date"] = "2025-13-45"
    d.loc[idx[2 * k:], "wheels_out"] = d.loc[idx[2 * k:], "wheels_in"].str[:11] + "00:01"
    return d, n


def real_export(raw: pd.DataFrame, truth: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, int]:
    """A real case log: completed cases only (no cancellations, nothing booked), no surgeon ids,
    no booked minutes, the extras, local codes and a few corrupt rows. Returns (frame, n corrupt)."""
    rng = np.random.default_rng(seed)
    d = raw[raw["status"] == "completed"]
    d = with_extras(d, truth, rng)
    d = d.drop(columns=["surgeon_id", "booked_minutes", "cancellation_reason"])
    return corrupt(d.reset_index(drop=True), rng)


def noise_table(raw: pd.DataFrame, truth: pd.DataFrame, seed: int = 0, sigma: float = 0.35) -> pd.DataFrame:
    """A table where only the procedure matters: each completed case lasts its procedure's typical
    time x lognormal(0, sigma) noise, and every other column (surgeon, patient, booking, times of
    day, extras) is shuffled across cases, so the model's features beyond the procedure are pure
    noise and the procedure median is the best P50 there is."""
    rng = np.random.default_rng(seed)
    d = raw[raw["status"].isin(["completed", "cancelled"])].reset_index(drop=True).copy()
    t = truth.set_index("case_id").reindex(d["case_id"])
    typical = pd.Series(t["true_median_minutes"].to_numpy(dtype=float)).groupby(d["procedure_code"].to_numpy()).transform("median")
    minutes = typical.to_numpy() * np.exp(rng.normal(0, sigma, len(d)))
    done = d["status"] == "completed"
    win = pd.to_datetime(d.loc[done, "wheels_in"])
    d.loc[done, "wheels_out"] = _fmt(win + pd.to_timedelta(np.round(minutes[done.to_numpy()]), unit="min"))
    for c in ("procedure_start", "procedure_end"):
        if c in d.columns:
            d[c] = ""
    for c in ("surgeon_id", "booked_minutes", "patient_age", "asa_class", "bmi", "anesthesia_type", "admission_type",
              "required_equipment", "urgency", "site", "booked_at"):
        if c in d.columns:
            d[c] = rng.permutation(d[c].to_numpy())
    d["ward_code"] = rng.choice(["W1", "W2", "W3", "W4", "DSU"], len(d))
    d["pre_op_score"] = np.round(rng.normal(50, 10, len(d)), 1).astype(str)
    d["noise_text"] = rng.choice(["alpha beta", "gamma delta", "epsilon zeta", "eta theta"], len(d))
    return d


def window(raw: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """Cases with surgery dates in [start, end) (as text dates)."""
    return raw[(raw["surgery_date"] >= start) & (raw["surgery_date"] < end)].reset_index(drop=True)


def write_cases(d: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    d.to_csv(path, index=False)
    return path


def folder_with_cases(src: str | Path, dst: str | Path, cases: pd.DataFrame, drop_as_of: bool = False,
                      settings_extra: str = "") -> Path:
    """A hospital folder: the generated reference files of ``src`` with ``cases`` as its cases.csv."""
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("rooms.csv", "surgeons.csv", "blocks.csv", "staffing.csv"):
        (dst / name).write_bytes((src / name).read_bytes())
    lines = [ln for ln in (src / "settings.toml").read_text().splitlines() if not (drop_as_of and ln.startswith("as_of"))]
    (dst / "settings.toml").write_text("\n".join(lines) + "\n" + settings_extra)
    cases.to_csv(dst / "cases.csv", index=False)
    return dst
