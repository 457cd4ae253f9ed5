"""Forecasting a network: one pooled model (site as a feature) or one model per site, chosen by
validation on the same test window, trained in parallel on Dask.

Both candidates are backtested with :func:`engine.forecast.evaluate` on the last ``test_days``
before the network's as-of date (the earliest of its sites'): the pooled model on every site's
history together (``site`` is one of the model's features, and the sites' case ids are unique), each
per-site model on its site's history. They are scored on the same completed test cases by the sum
of the pinball losses at P50 and P80 (the quantiles the plan reads; the loss at 0.5 is half the
MAE), per site and over the network. The candidate with the lower network score is trained with
:func:`engine.forecast.train_and_register` (the pooled one under the network's id, else one per site
under each site folder's name) and the choice is recorded in ``<registry>/<network id>.network.json``
beside the models, which :func:`model_ids` reads when the network is planned. The per-site
backtests, the pooled backtest and the per-site trainings are independent Dask tasks.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.io import atomic_write_json
from engine.network.sites import Network, Site

log = logging.getLogger(__name__)

CHOICE_SUFFIX = ".network.json"


def network_id(network: Network) -> str:
    return Path(network.root).resolve().name


def site_id(site: Site) -> str:
    return Path(site.folder).resolve().name


def _root(models: str | Path | None) -> Path:
    from engine.forecast import Registry

    return Registry(models).root


def choice_path(network: Network, models: str | Path | None) -> Path:
    return _root(models) / f"{network_id(network)}{CHOICE_SUFFIX}"


def read_choice(network: Network, models: str | Path | None) -> dict[str, Any] | None:
    p = choice_path(network, models)
    return json.loads(p.read_text()) if p.exists() else None


def model_ids(network: Network, models: str | Path | None) -> dict[str, str]:
    """{site: registry id of the model that forecasts it}: the recorded choice, else each site's own."""
    choice = read_choice(network, models)
    if choice and choice.get("choice") == "pooled":
        return {s.name: choice["model_id"] for s in network.sites}
    return {s.name: site_id(s) for s in network.sites}


def _union(hospitals: list) -> Any:
    """The sites as one hospital (cases, rooms, surgeons; the first site's settings)."""
    from engine.hospital import Hospital

    cat = lambda attr: pd.concat([getattr(h, attr) for h in hospitals], ignore_index=True)  # noqa: E731
    return Hospital(name="network", cases=cat("cases"), rooms=cat("rooms"),
                    surgeons=cat("surgeons").drop_duplicates("surgeon_id"), blocks=cat("blocks"),
                    staffing=cat("staffing"), settings=hospitals[0].settings)


def _load(folders: list[str]) -> Any:
    from engine.hospital import load_hospital

    hs = [load_hospital(f).hospital for f in folders]
    return hs[0] if len(hs) == 1 else _union(hs)


def _backtest(folders: list[str], test_from: pd.Timestamp, params: Any) -> pd.DataFrame:
    """A Dask task: backtest one candidate; per test case ``case_id, actual, p50, p80``. The params
    are completed from the candidate's hospital (its time zone, declared extra features) as its
    training will be (``train_and_register``), so the backtest scores the model it chooses."""
    from engine.forecast import evaluate
    from engine.forecast.registry import hospital_params

    h = _load(folders)
    past = h.cases[h.cases["surgery_date"] < h.as_of()]
    pred = evaluate(past, test_from, hospital_params(h, params), rooms=h.rooms).predictions
    return pred[["case_id", "actual", "p50", "p80"]].reset_index(drop=True)


def _train(folders: list[str], hid: str, params: Any, models: str | None) -> dict[str, Any]:
    """A Dask task: train and register one model; its id, version and backtest figures."""
    from engine.forecast import Registry, train_and_register

    mv = train_and_register(_load(folders), hid, params, Registry(models))
    return {"model_id": hid, "version": mv.version, "mae_p50": mv.meta["mae_p50"], "coverage_p80": mv.meta["coverage_p80"]}


def _pinball(y: np.ndarray, q: np.ndarray, tau: float) -> float:
    d = y - q
    return float(np.mean(np.maximum(tau * d, (tau - 1) * d)))


def score(pred: pd.DataFrame) -> float:
    """Pinball loss at P50 plus at P80 (minutes): the validation criterion."""
    y = pred["actual"].to_numpy(float)
    return _pinball(y, pred["p50"].to_numpy(float), 0.5) + _pinball(y, pred["p80"].to_numpy(float), 0.8)


@dataclass
class NetworkForecastChoice:
    choice: str  # "pooled" or "per_site"
    scores: dict[str, float]  # candidate -> network score
    by_site: pd.DataFrame  # site, n_test, pooled, per_site
    models: dict[str, dict[str, Any]]  # site -> model id, version, backtest figures
    test_from: str
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"choice": self.choice, "scores": self.scores, "by_site": self.by_site.to_dict("records"),
                "models": self.models, "test_from": self.test_from, "seconds": round(self.seconds, 2),
                "criterion": "pinball loss at P50 + at P80 on the same completed test cases (minutes, lower is better)"}


def _run(calls: list[tuple], client: Any) -> list[Any]:
    if client is None:
        return [fn(*a) for fn, *a in calls]
    futures = [client.submit(fn, *a, pure=False) for fn, *a in calls]
    return client.gather(futures)


def choose_and_train(network: Network, models: str | Path | None = None, params: Any = None,
                     test_days: int = 56, client: Any = None) -> NetworkForecastChoice:
    """Backtest both candidates, train the better one, record the choice (see the module docstring).

    ``client``: a ``distributed.Client`` to run the backtests and trainings on (None: in-process).
    """
    from engine.forecast.params import TRAINING

    t0 = time.perf_counter()
    params = params or TRAINING
    folders = [str(s.folder) for s in network.sites]
    as_of = min(_as_of(f) for f in folders)
    test_from = as_of - pd.Timedelta(days=test_days)
    calls: list[tuple] = [(_backtest, [f], test_from, params) for f in folders]
    if len(folders) > 1:
        calls.append((_backtest, folders, test_from, params))
    preds = _run(calls, client)
    per_site = pd.concat([p.assign(site=s.name) for p, s in zip(preds, network.sites)], ignore_index=True)
    pooled = preds[-1] if len(folders) > 1 else per_site
    both = per_site.merge(pooled[["case_id", "p50", "p80"]], on="case_id", suffixes=("", "_pooled"))
    pooled_view = both.assign(p50=both["p50_pooled"], p80=both["p80_pooled"])
    rows = []
    for s in network.sites:
        mine = (both["site"] == s.name).to_numpy()
        rows.append({"site": s.name, "n_test": int(mine.sum()),
                     "pooled": round(score(pooled_view[mine]), 3) if mine.any() else None,
                     "per_site": round(score(both[mine]), 3) if mine.any() else None})
    scores = {"pooled": round(score(pooled_view), 3), "per_site": round(score(both), 3)}
    choice = "pooled" if len(folders) > 1 and scores["pooled"] < scores["per_site"] else "per_site"
    nid = network_id(network)
    root = str(models) if models else None
    if choice == "pooled":
        trained = _run([(_train, folders, nid, params, root)], client)
        model_of = {s.name: trained[0] for s in network.sites}
    else:
        trained = _run([(_train, [str(s.folder)], site_id(s), params, root) for s in network.sites], client)
        model_of = {s.name: t for s, t in zip(network.sites, trained)}
    result = NetworkForecastChoice(choice, scores, pd.DataFrame(rows), model_of, str(test_from.date()),
                                   time.perf_counter() - t0)
    out = result.to_json()
    if choice == "pooled":
        out["model_id"] = nid
    atomic_write_json(choice_path(network, models), out)
    log.info("network %s: %s model chosen (scores %s)", nid, choice, scores)
    return result


def _as_of(folder: str) -> pd.Timestamp:
    """A site's clock (settings.toml ``as_of``, else today) without reading its cases."""
    from engine.config import read_toml
    from engine.contract import SETTINGS_FILE

    path = Path(folder) / SETTINGS_FILE
    value = read_toml(path).get("as_of") if path.exists() else None
    return pd.Timestamp(value).normalize() if value else pd.Timestamp.now().normalize()
