"""As-of features: each case sees only what was known at its decision time.

The decision time of a case is the start of the day ``planning_lead_days`` before its surgery
date (when the plan is built), or the planning date ``as_of`` when that is earlier. History
statistics count only completed cases whose ``wheels_out`` lies strictly before that time, so
changing any outcome after a decision time cannot change the features at that time.

History statistics are computed once per group (surgeon x procedure, procedure, service line,
surgeon) as expanding arrays over time, then looked up with a binary search per case: this is
O(n log n) and avoids a per-case scan of history.
"""
from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.feeds import room_minutes
from engine.forecast.params import ForecastParams

log = logging.getLogger(__name__)

CATEGORICAL = [
    "service_line",
    "procedure_code",
    "surgeon_id",
    "urgency",
    "anesthesia_type",
    "admission_type",
    "required_equipment",
    "site",
    "weekday",
]
NUMERIC = [
    "booked_minutes",
    "patient_age",
    "asa_class",
    "bmi",
    "sp_count",
    "sp_median",
    "sp_p80",
    "proc_count",
    "proc_median",
    "sl_median",
    "surgeon_volume_365d",
    "proc_volume_365d",
    "surgeon_ratio_recent",
    "surgeon_ratio_all",
    "scheduled_minute_of_day",
    "first_case",
    "n_equipment",
    "lead_days",
    "month",
]
MISSING = "__missing__"
# Columns the simple baselines read (not model inputs): the surgeon x procedure median (else
# procedure, else service line) and the procedure median (else service line).
BASELINES = ("baseline_history", "baseline_procedure")
EXTRA_PREFIX = {"numeric": "xn_", "category": "xc_", "text": "txt_"}
_STOPWORDS = frozenset({"of", "the", "and", "with", "w", "for", "to", "a", "an", "in", "on", "or", "by", "via",
                        "l", "r", "lt", "rt", "left", "right"})  # laterality hardly changes the time


@dataclass
class _GroupHistory:
    """Expanding statistics of one group, indexed by number of cases seen so far."""

    times: np.ndarray  # sorted completion times (int64 ns)
    median: np.ndarray  # median log-duration after k+1 cases
    p80: np.ndarray
    ratio_cum: np.ndarray  # cumulative sum of log(duration / procedure median), for trends


def completed_history(cases: pd.DataFrame, timezone: str | None = None) -> pd.DataFrame:
    """Completed cases usable as history: valid room time (``duration``, real elapsed minutes in
    the hospital's ``timezone``), sorted by completion."""
    done = cases[(cases["status"] == "completed") & cases["wheels_in"].notna() & cases["wheels_out"].notna()]
    done = done.assign(duration=room_minutes(done, timezone))
    done = done[done["duration"] > 0]
    return done.sort_values("wheels_out", kind="mergesort")


def decision_times(cases: pd.DataFrame, params: ForecastParams, as_of: pd.Timestamp | None = None) -> pd.Series:
    """When each case's forecast is made: the planning day before surgery, or ``as_of``."""
    t = cases["surgery_date"].dt.normalize() - pd.Timedelta(days=params.planning_lead_days)
    if as_of is not None:
        t = t.clip(upper=pd.Timestamp(as_of))
    return t


def _build_group_histories(keys: pd.Series, times: np.ndarray, logs: np.ndarray, ratio: np.ndarray) -> dict:
    out: dict = {}
    order = np.argsort(times, kind="mergesort")
    by_key: dict = {}
    for i in order:
        by_key.setdefault(keys.iat[i], []).append(i)
    for key, idx in by_key.items():
        idx = np.asarray(idx)
        vals = logs[idx]
        sorted_vals: list[float] = []
        med = np.empty(len(idx))
        p80 = np.empty(len(idx))
        for k, v in enumerate(vals):
            bisect.insort(sorted_vals, float(v))
            n = k + 1
            med[k] = 0.5 * (sorted_vals[(n - 1) // 2] + sorted_vals[n // 2])
            p80[k] = sorted_vals[min(n - 1, int(np.ceil(0.8 * n)) - 1)]
        out[key] = _GroupHistory(times[idx], med, p80, np.cumsum(ratio[idx]))
    return out


def _lookup(histories: dict, keys: pd.Series, t: np.ndarray, window_ns: int | None = None, recent: int | None = None):
    """For each (key, time): count, median, p80, volume in window, mean recent ratio."""
    n = len(keys)
    count = np.zeros(n)
    med = np.full(n, np.nan)
    p80 = np.full(n, np.nan)
    vol = np.zeros(n)
    ratio_recent = np.full(n, np.nan)
    ratio_all = np.full(n, np.nan)
    codes, uniques = pd.factorize(keys)
    for g, key in enumerate(uniques):
        h = histories.get(key)
        rows = np.flatnonzero(codes == g)
        if h is None:
            continue
        k = np.searchsorted(h.times, t[rows], side="left")
        count[rows] = k
        has = k > 0
        r = rows[has]
        kk = k[has] - 1
        med[r] = h.median[kk]
        p80[r] = h.p80[kk]
        ratio_all[r] = h.ratio_cum[kk] / k[has]
        if window_ns is not None:
            k0 = np.searchsorted(h.times, t[rows] - window_ns, side="left")
            vol[rows] = k - k0
        if recent is not None:
            lo = np.maximum(k[has] - recent, 0)
            prev = np.where(lo > 0, h.ratio_cum[np.maximum(lo - 1, 0)], 0.0)
            ratio_recent[r] = (h.ratio_cum[kk] - prev) / (k[has] - lo)
    return count, med, p80, vol, ratio_recent, ratio_all


def _text(s: pd.Series) -> pd.Series:
    """Categorical column as text with an explicit token for missing (CatBoost rejects NaN)."""
    return s.astype("object").where(s.notna(), MISSING).astype(str).replace("", MISSING)


_INDEX_CACHE: dict[tuple, tuple] = {}


def _fingerprint(history: pd.DataFrame) -> tuple:
    """Content key of the columns the history statistics read (a hash, ~20 ms for 30k rows)."""
    cols = [c for c in ("status", "surgeon_id", "procedure_code", "service_line", "wheels_in", "wheels_out") if c in history.columns]
    h = pd.util.hash_pandas_object(history[cols], index=False).to_numpy()
    return (len(history), int(h.sum() % (2**61)), int((h * np.arange(1, len(h) + 1, dtype=np.uint64)).sum() % (2**61)))


def history_index(history: pd.DataFrame, timezone: str | None = None) -> tuple[dict, dict, dict, dict]:
    """Expanding per-group statistics of ``history`` (procedure, surgeon x procedure, service
    line, surgeon; room time in ``timezone``), cached by content so repeated forecasts on the same
    history are fast."""
    key = (*_fingerprint(history), timezone)
    if key in _INDEX_CACHE:
        return _INDEX_CACHE[key]
    hist = completed_history(history, timezone)
    logd = np.log(hist["duration"].to_numpy(dtype=float))
    times = hist["wheels_out"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    proc_hist = _build_group_histories(hist["procedure_code"], times, logd, np.zeros(len(hist)))
    # Ratio to the procedure's running median as known just before each history case finished.
    _, proc_med_before, _, _, _, _ = _lookup(proc_hist, hist["procedure_code"], times)
    ratio = np.where(np.isnan(proc_med_before), 0.0, logd - np.nan_to_num(proc_med_before))
    sp_keys_h = hist["surgeon_id"].astype(str) + "|" + hist["procedure_code"].astype(str)
    out = (
        proc_hist,
        _build_group_histories(sp_keys_h, times, logd, ratio),
        _build_group_histories(hist["service_line"], times, logd, ratio),
        _build_group_histories(hist["surgeon_id"], times, logd, ratio),
    )
    if len(_INDEX_CACHE) >= 4:
        _INDEX_CACHE.pop(next(iter(_INDEX_CACHE)))
    _INDEX_CACHE[key] = out
    return out


def text_key(s: pd.Series) -> pd.Series:
    """Free text as a token key: lower-case words cut to 3-letter stems, stop words dropped, sorted.

    So "Laparoscopic cholecystectomy", "Lap chole" and "LAP. CHOLE" all give "cho lap": the
    abbreviations hospitals type share signal with the full names.
    """
    def key(v: object) -> str:
        if not isinstance(v, str) or not v.strip():
            return MISSING
        words = [w for w in re.split(r"[^0-9a-z]+", v.lower()) if w and w not in _STOPWORDS]
        return " ".join(sorted({w[:3] for w in words})) or MISSING

    return s.map(key).astype(str)


def classify_extras(cases: pd.DataFrame, names: tuple[str, ...] | list[str], params: ForecastParams | None = None
                    ) -> tuple[dict[str, str], list[str]]:
    """Kinds of the declared extra feature columns (``numeric``, ``category`` or ``text``) and notes.

    A declared column that is missing, forbidden by the guardrail policy or already a model
    feature is not used, and a note says so. Numbers (95% of non-empty values parse) are numeric;
    text with several words per value, or many distinct values, is free text (a token key);
    anything else is a category.
    """
    params = params or ForecastParams()
    banned = forbidden(params)
    kinds: dict[str, str] = {}
    notes: list[str] = []
    for col in dict.fromkeys(names):
        if col in banned:
            notes.append(f"extra feature {col!r} is forbidden by the guardrail policy: not used")
        elif col not in cases.columns:
            notes.append(f"extra feature {col!r} is not a column of cases.csv: not used")
        elif col in CATEGORICAL + NUMERIC:
            notes.append(f"extra feature {col!r} is already a model feature")
        else:
            v = cases[col]
            text = v.astype("object").where(v.notna(), "").astype(str).str.strip()
            filled = text[text != ""]
            if not len(filled):
                notes.append(f"extra feature {col!r} is empty: not used")
                continue
            num = pd.to_numeric(filled, errors="coerce")
            if num.notna().mean() >= 0.95:
                kinds[col] = "numeric"
            elif filled.str.split().str.len().mean() >= 1.5 or filled.nunique() > 100:
                kinds[col] = "text"
            else:
                kinds[col] = "category"
    return kinds, notes


def extra_columns(extras: dict[str, str] | None) -> tuple[list[str], list[str]]:
    """(categorical, numeric) feature column names of the extras."""
    extras = extras or {}
    cats = [EXTRA_PREFIX[k] + c for c, k in extras.items() if k != "numeric"]
    nums = [EXTRA_PREFIX[k] + c for c, k in extras.items() if k == "numeric"]
    return cats, nums


def build_features(
    cases: pd.DataFrame,
    history: pd.DataFrame,
    params: ForecastParams | None = None,
    as_of: pd.Timestamp | None = None,
    room_open_minutes: dict[str, float] | None = None,
    extras: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Features for ``cases`` using only ``history`` outcomes known before each decision time.

    ``history`` is any cases frame; only its completed cases are used, and only those that
    finished before the decision time of the case being described. Returns a frame indexed
    like ``cases`` with CATEGORICAL + NUMERIC columns plus ``decision_time`` and ``novelty``
    (``known``, ``new_pair``, ``new_surgeon``, ``new_procedure``), the baselines' columns
    (``BASELINES``) and the declared extra features (``extras``: column -> kind, see
    ``classify_extras``; prefixed ``xn_`` (numbers), ``xc_`` (labels) or ``txt_`` (free text)).
    """
    params = params or ForecastParams()
    proc_hist, sp_hist, sl_hist, sg_hist = history_index(history, params.timezone)

    t = decision_times(cases, params, as_of).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    year_ns = int(pd.Timedelta(days=365).value)
    sp_keys = cases["surgeon_id"].astype(str) + "|" + cases["procedure_code"].astype(str)
    sp_n, sp_med, sp_p80, _, _, _ = _lookup(sp_hist, sp_keys, t)
    pr_n, pr_med, pr_p80, pr_vol, _, _ = _lookup(proc_hist, cases["procedure_code"], t, window_ns=year_ns)
    _, sl_med, sl_p80, _, _, _ = _lookup(sl_hist, cases["service_line"], t)
    sg_n, _, _, sg_vol, sg_recent, sg_all = _lookup(
        sg_hist, cases["surgeon_id"], t, window_ns=year_ns, recent=params.recent_cases
    )

    # Shrink the pair's median towards the procedure (else service line) median.
    fallback = np.where(pr_n > 0, pr_med, sl_med)
    fallback80 = np.where(pr_n > 0, pr_p80, sl_p80)
    k0 = params.shrinkage_cases
    w = sp_n / (sp_n + k0)
    shr_med = np.where(sp_n > 0, w * np.nan_to_num(sp_med) + (1 - w) * fallback, fallback)
    shr_p80 = np.where(sp_n > 0, w * np.nan_to_num(sp_p80) + (1 - w) * fallback80, fallback80)

    f = pd.DataFrame(index=cases.index)
    for col in ("service_line", "procedure_code", "surgeon_id", "urgency", "anesthesia_type", "admission_type", "site"):
        f[col] = _text(cases[col]) if col in cases.columns else MISSING
    eq = cases["required_equipment"].fillna("") if "required_equipment" in cases.columns else pd.Series("", index=cases.index)
    f["required_equipment"] = _text(eq)
    f["weekday"] = cases["surgery_date"].dt.day_name().fillna(MISSING).astype(str)
    # Month of year: teaching hospitals run slower when new residents start (the "July effect").
    f["month"] = cases["surgery_date"].dt.month.astype(float)
    for col in ("booked_minutes", "patient_age", "asa_class", "bmi"):
        f[col] = pd.to_numeric(cases[col], errors="coerce").astype(float) if col in cases.columns else np.nan
    f["sp_count"] = sp_n
    f["sp_median"] = np.exp(shr_med)
    f["sp_p80"] = np.exp(shr_p80)
    f["proc_count"] = pr_n
    f["proc_median"] = np.exp(pr_med)
    f["sl_median"] = np.exp(sl_med)
    f["surgeon_volume_365d"] = sg_vol
    f["proc_volume_365d"] = pr_vol
    f["surgeon_ratio_recent"] = sg_recent
    f["surgeon_ratio_all"] = sg_all
    sched = cases["scheduled_start"] if "scheduled_start" in cases.columns else pd.Series(pd.NaT, index=cases.index)
    minute = (sched.dt.hour * 60 + sched.dt.minute).astype(float)
    f["scheduled_minute_of_day"] = minute
    if room_open_minutes and "room_id" in cases.columns:
        opens = cases["room_id"].map(room_open_minutes).astype(float)
    else:
        opens = pd.Series(450.0, index=cases.index)
    f["first_case"] = np.where(minute.isna(), np.nan, (minute <= opens + 10).astype(float))
    f["n_equipment"] = eq.map(lambda v: len([p for p in str(v).split(";") if p.strip()]))
    if "booked_at" in cases.columns:
        f["lead_days"] = (cases["surgery_date"] - cases["booked_at"].dt.normalize()).dt.days.astype(float)
    else:
        f["lead_days"] = np.nan
    # The historical baseline: surgeon x procedure median, else procedure, else service line.
    f["baseline_history"] = np.exp(np.where(sp_n > 0, np.nan_to_num(sp_med), fallback))
    f["baseline_procedure"] = np.exp(fallback)
    for col, kind in (extras or {}).items():
        name = EXTRA_PREFIX[kind] + col
        v = cases[col] if col in cases.columns else pd.Series(np.nan, index=cases.index)
        if kind == "numeric":
            f[name] = pd.to_numeric(v, errors="coerce").astype(float)
        elif kind == "text":
            f[name] = text_key(v)
        else:
            f[name] = _text(v.astype("object").where(v.notna(), None).map(lambda x: str(x).strip() if x is not None else None))
    f["decision_time"] = pd.to_datetime(t)
    known_surgeon = sg_n > 0
    known_proc = pr_n > 0
    # Guardrail: attributes the policy file or the parameters forbid never leave the feature builder.
    f = f.drop(columns=[c for c in forbidden(params) if c in f.columns])
    f["novelty"] = np.select(
        [~known_proc, ~known_surgeon | (cases["surgeon_id"].astype(str) == "unknown").to_numpy(), sp_n < params.min_pair_cases],
        ["new_procedure", "new_surgeon", "new_pair"],
        default="known",
    )
    return f


def forbidden(params: ForecastParams) -> set[str]:
    """Attributes never used: the guardrail policy file's plus the parameters' own."""
    from engine.fairness.guardrails import load_guardrails

    return set(params.forbidden_features) | set(load_guardrails().forbidden)


def model_columns(params: ForecastParams | None = None, extras: dict[str, str] | None = None) -> list[str]:
    """Feature columns the models use, after the guardrail policy (declared extras last)."""
    params = params or ForecastParams()
    banned = forbidden(params)
    cats, nums = extra_columns({c: k for c, k in (extras or {}).items() if c not in banned})
    return [c for c in CATEGORICAL + NUMERIC if c not in banned] + cats + nums


def categorical_columns(columns: list[str]) -> list[str]:
    """The categorical ones among model columns (the contract's and the extras' labels and text keys)."""
    return [c for c in columns if c in CATEGORICAL or c.startswith(("xc_", "txt_"))]
