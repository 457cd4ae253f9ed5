"""Saving a trained Forecaster without pickle: CatBoost's own model files plus JSON and NumPy arrays.

A pickle holds the classes' code paths and the libraries' private layouts, so a library upgrade
(CatBoost, scikit-learn, pandas) can make a saved model unreadable. Here a model version folder holds:

- ``model.json``: the fitted state as a tree of plain values. Our own objects (``Forecaster``,
  ``DurationModel``, ``CancellationModel``, ``ForecastParams``) are written as their class name and
  fields; only the classes in ``_CLASSES`` are ever made again on load (nothing else is imported);
- ``catboost_<n>.cbm``: each CatBoost model, by ``save_model`` (CatBoost's stable binary format);
- ``arrays.npz``: the numeric arrays (residuals, offsets, decision times), loaded with
  ``allow_pickle=False``; arrays of text are written in the JSON;
- the isotonic calibrator as its thresholds (remade by fitting on them, the same step function).

A value of any other type is refused when saving (``TypeError`` naming where it sits), so a new
fitted attribute cannot be silently lost. Caches (the SHAP explainer, the recent residuals) are left
out by the classes' ``__getstate__``, as for pickle.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

STATE_FILE, ARRAYS_FILE = "model.json", "arrays.npz"


def _classes() -> dict[str, type]:
    from engine.forecast.cancellation import CancellationModel
    from engine.forecast.duration import DurationModel
    from engine.forecast.forecaster import Forecaster
    from engine.forecast.params import ForecastParams

    return {c.__name__: c for c in (Forecaster, DurationModel, CancellationModel, ForecastParams)}


class _Writer:
    def __init__(self, folder: Path) -> None:
        self.folder, self.arrays, self.n_models = folder, {}, 0

    def enc(self, v: Any, where: str) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return float(v)
        if isinstance(v, list):
            return [self.enc(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, tuple):
            return {"$": "tuple", "items": [self.enc(x, f"{where}[{i}]") for i, x in enumerate(v)]}
        if isinstance(v, dict):
            return {"$": "dict", "items": [[self.enc(k, f"{where} key"), self.enc(x, f"{where}[{k!r}]")] for k, x in v.items()]}
        if isinstance(v, pd.Timestamp):
            return {"$": "timestamp", "v": v.isoformat()}
        if isinstance(v, np.datetime64):
            return {"$": "datetime64", "v": str(v)}
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                if not all(isinstance(x, str) for x in v.ravel()):
                    raise TypeError(f"{where}: an object array holding other than text cannot be saved")
                return {"$": "text_array", "shape": list(v.shape), "items": [str(x) for x in v.ravel()]}
            key = f"a{len(self.arrays)}"
            self.arrays[key] = v
            return {"$": "array", "key": key}
        if type(v).__module__.startswith("catboost"):
            name = f"catboost_{self.n_models}.cbm"
            self.n_models += 1
            v.save_model(str(self.folder / name))
            return {"$": "catboost", "class": type(v).__name__, "file": name}
        if type(v).__name__ == "IsotonicRegression" and type(v).__module__.startswith("sklearn"):
            return {"$": "isotonic", "params": self.enc(v.get_params(), f"{where}.params"),
                    "x": self.enc(np.asarray(v.X_thresholds_), where), "y": self.enc(np.asarray(v.y_thresholds_), where)}
        cls = _classes().get(type(v).__name__)
        if cls is type(v):
            if dataclasses.is_dataclass(v):
                fields = {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}
                return {"$": "dataclass", "class": cls.__name__, "fields": self.enc(fields, where)}
            state = v.__getstate__() if hasattr(v, "__getstate__") else dict(vars(v))
            return {"$": "object", "class": cls.__name__,
                    "state": {k: self.enc(x, f"{where}.{k}") for k, x in state.items()}}
        raise TypeError(f"{where}: a {type(v).__module__}.{type(v).__name__} cannot be saved in a model file")


class _Reader:
    def __init__(self, folder: Path, arrays: dict[str, np.ndarray]) -> None:
        self.folder, self.arrays, self.classes = folder, arrays, _classes()

    def dec(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.dec(x) for x in v]
        if not isinstance(v, dict):
            return v
        kind = v["$"]
        if kind == "tuple":
            return tuple(self.dec(x) for x in v["items"])
        if kind == "dict":
            return {self.dec(k): self.dec(x) for k, x in v["items"]}
        if kind == "timestamp":
            return pd.Timestamp(v["v"])
        if kind == "datetime64":
            return np.datetime64(v["v"], "ns")
        if kind == "array":
            return self.arrays[v["key"]]
        if kind == "text_array":
            return np.array(v["items"], dtype=object).reshape(v["shape"])
        if kind == "catboost":
            import catboost

            model = {"CatBoostRegressor": catboost.CatBoostRegressor, "CatBoostClassifier": catboost.CatBoostClassifier}[v["class"]]()
            model.load_model(str(self.folder / v["file"]))
            return model
        if kind == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            return IsotonicRegression(**self.dec(v["params"])).fit(self.dec(v["x"]), self.dec(v["y"]))
        cls = self.classes[v["class"]]
        if kind == "dataclass":
            return cls(**self.dec(v["fields"]))
        obj = cls.__new__(cls)
        obj.__dict__.update({k: self.dec(x) for k, x in v["state"].items()})
        return obj


def save_forecaster(fc: Any, folder: str | Path) -> None:
    """Write ``fc`` into ``folder`` (model.json, arrays.npz, catboost_*.cbm); TypeError for a value
    that has no file form (nothing is written then but what was already written into ``folder``,
    which the registry builds aside and throws away on failure)."""
    folder = Path(folder)
    w = _Writer(folder)
    tree = w.enc(fc, "forecaster")
    np.savez(folder / ARRAYS_FILE, **w.arrays)
    (folder / STATE_FILE).write_text(json.dumps(tree), encoding="utf-8")


def load_forecaster(folder: str | Path) -> Any:
    """The Forecaster saved by :func:`save_forecaster` in ``folder``."""
    folder = Path(folder)
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return _Reader(folder, arrays).dec(json.loads((folder / STATE_FILE).read_text(encoding="utf-8")))
