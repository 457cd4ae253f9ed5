"""Plain-language reasons: SHAP values of the P50 forecast turned into minutes and words.

The reasons add up. They start from a stated value, the SHAP base value in minutes
(``reason_base_minutes`` = exp(base): the model's forecast for an average case of the history it
learned from), and every part is in minutes so that

    base + the top drivers + the other factors + the adjustment = the P50.

The model works in log minutes, where SHAP values phi_j add up: log P50_model = base + S with
S = sum_j phi_j. In minutes the same total, exp(base) (exp(S) - 1), is shared out in proportion
to the phi_j: minutes_j = exp(base) phi_j (exp(S) - 1) / S (-> exp(base) phi_j as S -> 0), so a
driver's minutes have its SHAP value's sign and share and the parts sum exactly. The
``adjustment`` (``reason_adjust_minutes``) is what the forecast adds after the model: the
conformal calibration on recent cases and, where the model lost to the simple baseline on the
calibration window, the blend with the history median. Each feature has a sentence template
that uses the case's own values and the history statistics behind the feature.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

_NOVELTY_TEXT = {
    "new_surgeon": "new or unidentified surgeon: forecast falls back on procedure and service-line history, interval widened",
    "new_procedure": "procedure not seen before: forecast falls back on service-line history, interval widened",
    "new_pair": "this surgeon has done this procedure fewer than {n} times: leaning on the procedure's history, interval widened",
}


def _fmt_minutes(v: float) -> str:
    return f"{v:.0f} min" if np.isfinite(v) else "n/a"


def describe(feature: str, row: Mapping[str, Any], case: Mapping[str, Any], minutes: float) -> str:
    """One driver in plain words, e.g. "+18 min: this surgeon's ... run long (median 212 min over 40 cases)"."""
    sign = "+" if minutes >= 0 else "-"
    head = f"{sign}{abs(minutes):.0f} min: "
    name = case.get("procedure_name")
    proc = name if isinstance(name, str) and name else f"procedure {case.get('procedure_code')}"
    if feature in ("sp_median", "sp_p80", "sp_count"):
        n = int(row.get("sp_count", 0))
        if n == 0:
            return head + f"no past {proc} cases for this surgeon; using the procedure's history"
        sp, pm = row["sp_median"], row.get("proc_median", np.nan)
        ratio = sp / pm if pd.notna(pm) and pm > 0 else 1.0
        # The SHAP sign is relative to the average case; only name the comparison with the
        # procedure's usual time when it points the same way, so the words never contradict the sign.
        compare = ""
        if ratio > 1.05 and minutes > 0:
            compare = f", longer than the usual {_fmt_minutes(pm)} for this procedure"
        elif ratio < 0.95 and minutes < 0:
            compare = f", shorter than the usual {_fmt_minutes(pm)} for this procedure"
        return head + f"this surgeon's {proc} cases take a median {_fmt_minutes(sp)} over {n} cases{compare}"
    if feature in ("proc_median", "proc_count", "proc_volume_365d"):
        return head + f"{proc} typically takes {_fmt_minutes(row['proc_median'])} here ({int(row.get('proc_count', 0))} past cases)"
    if feature == "sl_median":
        return head + f"{case.get('service_line')} cases typically take {_fmt_minutes(row['sl_median'])}"
    if feature == "booked_minutes":
        return head + f"booked for {_fmt_minutes(row['booked_minutes'])}"
    if feature in ("surgeon_ratio_recent", "surgeon_ratio_all"):
        r = row.get(feature)
        pct = (np.exp(r) - 1) * 100 if pd.notna(r) else 0.0
        when = "recently" if feature == "surgeon_ratio_recent" else "overall"
        return head + f"this surgeon's cases {when} run {abs(pct):.0f}% {'longer' if pct >= 0 else 'shorter'} than the procedure median"
    if feature == "surgeon_volume_365d":
        return head + f"surgeon volume: {int(row['surgeon_volume_365d'])} cases in the past year"
    if feature == "asa_class":
        return head + f"ASA {int(row['asa_class'])}" if pd.notna(row["asa_class"]) else head + "ASA class unknown"
    if feature == "patient_age":
        return head + (f"patient age {int(row['patient_age'])}" if pd.notna(row["patient_age"]) else "age unknown")
    if feature == "bmi":
        return head + (f"BMI {row['bmi']:.0f}" if pd.notna(row["bmi"]) else "BMI unknown")
    if feature in ("admission_type", "anesthesia_type", "urgency", "site", "weekday"):
        return head + f"{feature.replace('_', ' ')}: {row[feature]}"
    if feature in ("required_equipment", "n_equipment"):
        eq = row.get("required_equipment")
        return head + (f"needs {eq.replace(';', ', ')}" if isinstance(eq, str) and eq != "__missing__" else "no special equipment")
    if feature in ("scheduled_minute_of_day", "first_case"):
        return head + ("first case of the day" if row.get("first_case") == 1 else "later in the day")
    if feature == "lead_days":
        return head + f"booked {int(row['lead_days'])} days ahead" if pd.notna(row["lead_days"]) else head + "booking date unknown"
    if feature == "surgeon_id":
        return head + f"surgeon {row['surgeon_id']}"
    if feature == "procedure_code":
        return head + f"{proc}"
    if feature == "service_line":
        return head + f"{row['service_line']}"
    if feature.startswith(("xn_", "xc_", "txt_")):
        col = feature.split("_", 1)[1]
        v = case.get(col)
        return head + f"{col.replace('_', ' ')}: {v}" if v is not None and not (isinstance(v, float) and np.isnan(v)) else head + f"{col.replace('_', ' ')} unknown"
    return head + feature.replace("_", " ")


# Features that say the same thing are ranked and described together, by their lead feature.
_GROUP_OF = {
    "sp_p80": "sp_median",
    "sp_count": "sp_median",
    "proc_count": "proc_median",
    "proc_volume_365d": "proc_median",
    "n_equipment": "required_equipment",
    "first_case": "scheduled_minute_of_day",
}


def _grouped(shap_log: np.ndarray, feature_names: list[str]) -> tuple[np.ndarray, list[str]]:
    leads = list(dict.fromkeys(_GROUP_OF.get(f, f) for f in feature_names))
    out = np.zeros((shap_log.shape[0], len(leads)))
    for j, f in enumerate(feature_names):
        out[:, leads.index(_GROUP_OF.get(f, f))] += shap_log[:, j]
    return out, leads


def top_reasons(
    features: pd.DataFrame,
    cases: pd.DataFrame,
    shap_log: np.ndarray,
    feature_names: list[str],
    p50: np.ndarray,
    top: int = 3,
    min_pair_cases: int = 3,
    base_log: float = 0.0,
) -> pd.DataFrame:
    """The ``top`` drivers of each case's P50, the rest, and the adjustment, adding up to the P50.

    ``base_log``: the SHAP base value (log minutes). Returns one row per case: ``case_id``,
    ``reason_1..top`` (text), ``reason_minutes_1..top``, ``reason_base_minutes`` (the starting
    value), ``reason_other_minutes`` (all other factors together), ``reason_adjust_minutes``
    (calibration and baseline blend), so base + minutes_1..top + other + adjust = P50;
    ``fallback_note`` (empty when the case is familiar) and ``reasons`` (all joined, from the
    starting value to the P50, whole minutes that add up to the P50 as shown).
    """
    shap_log, feature_names = _grouped(shap_log, feature_names)
    start = float(np.exp(base_log))
    total = shap_log.sum(axis=1)
    scale = np.where(np.abs(total) > 1e-9, np.expm1(total) / np.where(total == 0, 1.0, total), 1.0)
    minutes = start * shap_log * scale[:, None]
    adjust = p50 - start * np.exp(total)
    order = np.argsort(-np.abs(minutes), axis=1)[:, :top]
    n_other = max(shap_log.shape[1] - top, 0)
    records = []
    # Plain dicts, not a pandas row per case: the reasons of 500 cases are built in well under a second.
    case_rows = cases.loc[features.index].to_dict("records")
    for i, frow in enumerate(features.to_dict("records")):
        case = case_rows[i]
        rec: dict = {"case_id": case.get("case_id")}
        texts = []
        shown = 0
        for k, j in enumerate(order[i]):
            whole = int(round(float(minutes[i, j])))
            shown += whole
            text = describe(feature_names[j], frow, case, float(whole))
            rec[f"reason_{k + 1}"] = text
            rec[f"reason_minutes_{k + 1}"] = round(float(minutes[i, j]), 1)
            texts.append(text)
        other = float(minutes[i].sum() - minutes[i, order[i]].sum())
        rec["reason_base_minutes"] = round(start, 1)
        rec["reason_other_minutes"] = round(other, 1)
        rec["reason_adjust_minutes"] = round(float(adjust[i]), 1)
        # Whole minutes as shown: the rounding remainder goes to "other factors" so the words add up.
        adj_whole = int(round(float(adjust[i])))
        other_whole = int(round(float(p50[i]))) - int(round(start)) - shown - adj_whole
        nov = frow.get("novelty", "known")
        note = _NOVELTY_TEXT.get(nov, "").format(n=min_pair_cases)
        rec["fallback_note"] = note
        parts = [f"starts from {start:.0f} min (the model's average case)"] + texts
        parts.append(f"{other_whole:+d} min: {n_other} other factors together")
        parts.append(f"{adj_whole:+d} min: calibration on recent cases and the history-median check")
        parts.append(f"= {p50[i]:.0f} min P50")
        rec["reasons"] = "; ".join(parts + ([note] if note else []))
        records.append(rec)
    return pd.DataFrame.from_records(records, index=features.index)
