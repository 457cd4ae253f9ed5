"""Model registry: each trained forecaster is saved with its version, window, data hash,
parameters, metrics and backtest artefacts. The dashboard loads the current version and never
trains on page load; training is ``python -m engine train`` or the Forecasts page's button.

Layout: ``ROOT/<hospital_id>/<version>/{model.json, arrays.npz, catboost_*.cbm, meta.json,
by_service_line.csv, by_novelty.csv, backtest.parquet, drift.csv}`` and ``ROOT/<hospital_id>/current.json``.
The model itself is saved without pickle (engine/forecast/persist.py: CatBoost's ``save_model`` plus
JSON and NumPy arrays), so a library upgrade does not make it unreadable.
Writes are whole-or-nothing (a version folder is built aside, then moved in).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.feeds import room_minutes
from engine.forecast.drift import DriftParams, drift_report, overall_state
from engine.forecast.evaluate import EvaluationReport, evaluate
from engine.forecast.forecaster import Forecaster
from engine.forecast.params import TRAINING, ForecastParams
from engine.forecast.persist import load_forecaster, save_forecaster
from engine.hospital import Hospital
from engine.io import atomic_write_folder, atomic_write_json

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "var" / "models"
FORMAT_VERSION = 2  # 1: a pickled Forecaster (model.pkl); 2: engine/forecast/persist.py


def data_hash(cases: pd.DataFrame) -> str:
    """A stable hash of the case table's content (order-independent by case_id)."""
    d = cases.sort_values("case_id").reset_index(drop=True)
    h = pd.util.hash_pandas_object(d.astype(str), index=False).to_numpy()
    return hashlib.sha256(h.tobytes()).hexdigest()[:16]


@dataclass
class ModelVersion:
    version: str
    meta: dict[str, Any]
    forecaster: Forecaster
    path: Path

    def artefact(self, name: str) -> pd.DataFrame:
        p = self.path / name
        if not p.exists():
            return pd.DataFrame()
        return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)


class Registry:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else DEFAULT_ROOT

    def _dir(self, hospital_id: str) -> Path:
        return self.root / hospital_id

    def versions(self, hospital_id: str) -> pd.DataFrame:
        rows = []
        for meta_path in sorted(self._dir(hospital_id).glob("*/meta.json")):
            m = json.loads(meta_path.read_text())
            rows.append({k: m.get(k) for k in ("version", "trained_at", "train_from", "train_until", "data_hash", "mae_p50", "coverage_p80", "coverage_p95")})
        return pd.DataFrame(rows)

    def current_version(self, hospital_id: str) -> str | None:
        p = self._dir(hospital_id) / "current.json"
        return json.loads(p.read_text())["version"] if p.exists() else None

    def load(self, hospital_id: str, version: str | None = None) -> ModelVersion | None:
        """The current (or given) version, or None when none was trained."""
        version = version or self.current_version(hospital_id)
        if version is None:
            return None
        path = self._dir(hospital_id) / version
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise InputError(
                f"model {version} was saved in format {meta.get('format_version')}, this code reads {FORMAT_VERSION}: retrain",
                file=str(path / "meta.json"),
            )
        fc = load_forecaster(path)
        return ModelVersion(version, meta, fc, path)

    def save(self, hospital_id: str, fc: Forecaster, meta: dict[str, Any], artefacts: dict[str, pd.DataFrame]) -> str:
        version = time.strftime("v%Y%m%d-%H%M%S") + "-" + meta["data_hash"][:6]
        meta = {**meta, "version": version, "format_version": FORMAT_VERSION}

        def write(tmp: Path) -> None:
            save_forecaster(fc, tmp)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=_json_default))
            for name, df in artefacts.items():
                if name.endswith(".parquet"):
                    df.to_parquet(tmp / name, index=False)
                else:
                    df.to_csv(tmp / name, index=False)

        atomic_write_folder(self._dir(hospital_id) / version, write)
        atomic_write_json(self._dir(hospital_id) / "current.json", {"version": version})
        return version


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    return str(v)


def _residual_frame(fc: Forecaster, cases: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Features plus residual (log actual - log P50) for completed cases."""
    f = fc.features(cases, history)
    pred = fc.predict(cases, history, features=f)
    actual = room_minutes(cases, fc.params.timezone)
    return f.assign(residual=np.log(actual) - np.log(pred["p50"]))


def declared_extra_features(hospital: Hospital) -> list[str]:
    """The hospital's declared extra feature columns (settings.toml ``extra_features``, validated
    by ``HospitalSettings``)."""
    return list(hospital.settings.extra_features)


def hospital_params(hospital: Hospital, params: ForecastParams) -> ForecastParams:
    """``params`` completed from the hospital's settings where they leave a value open: the declared
    extra features (when ``params`` names none) and the time zone of its room minutes (when None)."""
    chosen: dict[str, Any] = {}
    if not params.extra_features:
        declared = declared_extra_features(hospital)
        if declared:
            chosen["extra_features"] = tuple(declared)
    if params.timezone is None and hospital.settings.timezone:
        chosen["timezone"] = hospital.settings.timezone
    return replace(params, **chosen) if chosen else params


def training_clock(hospital: Hospital, test_days: int, params: ForecastParams, stale_days: int = 14
                   ) -> tuple[pd.Timestamp, int, list[str]]:
    """(as-of date, backtest days, notes) for training, from the data when the data ends early.

    The as-of date is the hospital's (``settings.as_of``, else today) unless the history ends more
    than ``stale_days`` before it (an old extract): then it is the day after the last completed or
    cancelled case. The backtest window is ``test_days``, at most ``calibration_share`` of the
    history (so an extract of a quarter still trains on most of it); never empty.
    """
    cases = hospital.cases
    as_of = hospital.as_of()
    notes: list[str] = []
    outcome = cases[cases["status"].isin(["completed", "cancelled"])]
    if not len(outcome):
        raise InputError("no completed or cancelled cases to train on", file="cases.csv")
    last = outcome["surgery_date"].max()
    first = outcome["surgery_date"].min()
    if last + pd.Timedelta(days=stale_days) < as_of:
        notes.append(f"the data ends on {last.date()}, {(as_of - last).days} days before {as_of.date()}: "
                     f"the as-of date and the backtest window are taken from the data")
        as_of = last + pd.Timedelta(days=1)
    span = int((as_of - first).days)
    days = max(7, min(test_days, int(round(params.calibration_share * span))))
    if days < test_days:
        notes.append(f"short history ({span} days): the backtest uses the latest {days} days instead of {test_days}")
    return as_of, days, notes


def train_and_register(
    hospital: Hospital,
    hospital_id: str,
    params: ForecastParams | None = None,
    registry: Registry | None = None,
    test_days: int = 91,
    progress: Callable[[float, str], None] | None = None,
) -> ModelVersion:
    """Backtest on the last ``test_days`` of history, then fit on all history and register.

    The saved version carries the backtest's metrics, its per-service-line table, per-case
    predictions and the drift report (training window against the most recent weeks).
    """
    params = hospital_params(hospital, params or TRAINING)
    registry = registry or Registry()
    step = progress or (lambda frac, text: None)
    cases = hospital.cases
    as_of, test_days, clock_notes = training_clock(hospital, test_days, params)
    past = cases[cases["surgery_date"] < as_of]
    if not len(past):
        raise InputError("no history before the hospital's as-of date to train on", file="cases.csv")
    test_from = as_of - pd.Timedelta(days=test_days)
    step(0.02, f"backtest: training on history before {test_from.date()}")
    report: EvaluationReport = evaluate(past, test_from, params, rooms=hospital.rooms)
    step(0.45, "drift: training window against recent weeks")
    dp = DriftParams()
    # Reuse the backtest's own predictions for the recent residuals; the reference is the
    # backtest model's calibration window (held out from its training, so residuals are honest).
    scored = report.predictions
    recent_start = as_of - pd.Timedelta(days=dp.recent_days)
    done_past = past[past["status"] == "completed"]
    ref_cases = done_past[(done_past["surgery_date"] < test_from) & (done_past["surgery_date"] >= test_from - pd.Timedelta(days=params.calibration_days))]
    step(0.5, "fitting the production model on all history")
    # Settings tuned on the backtest's training history (a time split before test_from) are reused.
    prod_params = report.forecaster.params if report.forecaster is not None else params
    t0 = time.perf_counter()
    fc = Forecaster(prod_params).fit(past, train_until=as_of, rooms=hospital.rooms,
                                progress=lambda f, t: step(0.5 + 0.4 * f, t))
    fit_seconds = time.perf_counter() - t0
    ref = _residual_frame(fc, ref_cases, past) if len(ref_cases) else pd.DataFrame()
    rec_cases = done_past[done_past["surgery_date"] >= recent_start]
    rec = scored[scored["surgery_date"] >= recent_start]
    rec_feats = fc.features(rec_cases, past).assign(
        residual=np.log(rec["actual"].to_numpy()) - np.log(rec["p50"].to_numpy()) if len(rec) == len(rec_cases) else np.nan
    )
    drift = drift_report(ref, rec_feats, dp) if len(ref) else pd.DataFrame(columns=["quantity", "psi", "state"])
    step(0.95, "saving the model version")
    meta = {
        "hospital_id": hospital_id,
        "trained_at": pd.Timestamp.now().isoformat(timespec="seconds"),
        "as_of": str(as_of.date()),
        "train_from": fc.training_window_[0],
        "train_until": fc.training_window_[1],
        "calibration_from": str(fc.calibration_start_.date()),
        "data_hash": data_hash(cases),
        "params": params.to_dict(),
        "fit_seconds": round(fit_seconds, 2),
        "backtest_test_from": str(test_from.date()),
        "metrics": report.to_json(),
        "notes": clock_notes + fc.notes,
        "cancellation_available": fc.cancellation_available,
        "p50_source": fc.duration_.p50_source(),
        "calibration_days": fc.calibration_days_,
        "tuning": report.forecaster.tuning_ if report.forecaster is not None else None,
        "params_used": fc.params.to_dict(),
        "drift_state": overall_state(drift),
        "mae_p50": report.overall["mae_p50"],
        "coverage_p80": report.overall["coverage_p80"],
        "coverage_p95": report.overall["coverage_p95"],
    }
    keep = ["case_id", "surgery_date", "service_line", "procedure_code", "surgeon_id", "actual", "booked",
            "baseline_history", "p50", "p80", "p95", "novelty"]
    artefacts = {
        "by_service_line.csv": report.by_service_line,
        "by_novelty.csv": report.by_novelty,
        "backtest.parquet": scored[[c for c in keep if c in scored.columns]].reset_index(drop=True),
        "drift.csv": drift,
    }
    version = registry.save(hospital_id, fc, meta, artefacts)
    step(1.0, f"saved {version}")
    loaded = registry.load(hospital_id, version)
    assert loaded is not None
    return loaded
