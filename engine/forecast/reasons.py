"""Plain-language reasons: SHAP values of the P50 forecast turned into minutes and words.

The model works in log minutes, so a SHAP value phi of one feature means "this feature
multiplies the forecast by exp(phi)". In minutes that is P50 x (1 - exp(-phi)): how many
minutes the forecast would lose without this factor's push. Each feature has a sentence
template that uses the case's own values and the history statistics behind the feature.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

_NOVELTY_TEXT = {
    "new_surgeon": "new or unidentified surgeon: forecast falls back on procedure and service-line history, interval widened",
    "new_procedure": "procedure not seen before: forecast falls back on service-line history, interval widened",
    "new_pair": "this surgeon has done this procedure fewer than {n} times: leaning on the procedure's history, interval widened",
}


def _fmt_minutes(v: float) -> str:
    return f"{v:.0f} min" if np.isfinite(v) else "n/a"


def describe(feature: str, row: pd.Series, case: pd.Series, minutes: float) -> str:
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
) -> pd.DataFrame:
    """The ``top`` drivers of each case's P50, plus a fallback note for unfamiliar cases.

    Returns one row per case: ``case_id``, ``reason_1..top`` (text), ``reason_minutes_1..top``,
    ``fallback_note`` (empty when the case is familiar) and ``reasons`` (all joined).
    """
    shap_log, feature_names = _grouped(shap_log, feature_names)
    minutes = p50[:, None] * (1.0 - np.exp(-shap_log))
    order = np.argsort(-np.abs(minutes), axis=1)[:, :top]
    records = []
    for i, (idx, frow) in enumerate(features.iterrows()):
        case = cases.loc[idx]
        rec: dict = {"case_id": case.get("case_id")}
        texts = []
        for k, j in enumerate(order[i]):
            text = describe(feature_names[j], frow, case, float(minutes[i, j]))
            rec[f"reason_{k + 1}"] = text
            rec[f"reason_minutes_{k + 1}"] = round(float(minutes[i, j]), 1)
            texts.append(text)
        nov = frow.get("novelty", "known")
        note = _NOVELTY_TEXT.get(nov, "").format(n=min_pair_cases)
        rec["fallback_note"] = note
        rec["reasons"] = "; ".join(texts + ([note] if note else []))
        records.append(rec)
    return pd.DataFrame.from_records(records, index=features.index)
