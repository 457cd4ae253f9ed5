"""Real hospitals' shapes: no cancellations, a short history, an old extract, declared extra
features, a text column, and the never-worse rule on data where the model is useless."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import InputError
from engine.forecast import Forecaster, Registry, evaluate, train_and_register
from engine.forecast.duration import DurationModel
from engine.forecast.features import model_columns, text_key
from engine.hospital import load_cases, load_hospital
from tests.engine.forecast import shapes
from tests.engine.forecast.conftest import FAST

REPO = Path(__file__).resolve().parents[3]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def raw(small_hospital):
    folder, _ = small_hospital
    return shapes.read_raw(folder / "cases.csv"), pd.read_csv(folder / "truth.csv")


def _load(d: pd.DataFrame, tmp_path: Path, name: str = "cases.csv") -> pd.DataFrame:
    return load_cases(shapes.write_cases(d, tmp_path / name))[0]


# ------------------------------------------------------------------ no cancellations
def test_no_cancellations_skips_the_cancellation_model_and_still_scores_durations(small_hospital, raw, tmp_path):
    _, h = small_hospital
    cases = _load(raw[0][raw[0]["status"] != "cancelled"], tmp_path)
    test_from = h.as_of() - pd.Timedelta(days=60)
    rep = evaluate(cases, test_from, FAST)
    out = rep.to_json()
    assert out["cancel_auc"] is None and out["cancellation_available"] is False
    assert any("no cancellations recorded" in n for n in out["notes"])
    assert any("cancel_auc is null" in n for n in out["notes"])
    assert out["mae_p50"] is not None and out["n_test"] > 100
    fc = rep.forecaster
    assert not fc.cancellation_available
    booked = h.cases[h.cases["status"] == "booked"].head(5)
    pred = fc.predict(booked, cases, as_of=h.as_of())
    assert (pred["cancel_prob"] == 0).all() and (pred["cancel_source"] == "none").all()


def test_few_cancellations_carry_the_base_rate(small_hospital, raw, tmp_path):
    _, h = small_hospital
    r = raw[0]
    keep = r.index[r["status"] == "cancelled"][:8]
    cases = _load(r[(r["status"] != "cancelled") | r.index.isin(keep)], tmp_path)
    fc = Forecaster(FAST).fit(cases, train_until=h.as_of())
    assert not fc.cancellation_available
    assert any("too few cancellations" in n for n in fc.notes)
    pred = fc.predict(cases[cases["status"] == "booked"].head(3), cases, as_of=h.as_of())
    assert (pred["cancel_source"] == "base_rate").all()
    assert pred["cancel_prob"].iloc[0] == pytest.approx(fc.cancel_base_rate_) and 0 < fc.cancel_base_rate_ < 0.05


def test_no_booked_cases_give_an_empty_forecast(fitted):
    h, fc = fitted
    none = h.cases.head(0)
    pred = fc.predict(none, h.cases, as_of=h.as_of(), reasons=True)
    assert len(pred) == 0 and {"p50", "p80", "p95", "cancel_prob", "cancel_source"} <= set(pred.columns)


# ------------------------------------------------------------------ short history
def test_six_weeks_of_history_adapts_the_calibration_window_and_states_coverage(small_hospital, raw, tmp_path):
    _, h = small_hospital
    end = h.as_of()
    start = end - pd.Timedelta(days=56)  # 6 weeks to train on, 2 weeks to test on
    cases = _load(shapes.window(raw[0], str(start.date()), str(end.date())), tmp_path)
    test_from = end - pd.Timedelta(days=14)
    rep = evaluate(cases, test_from, FAST)
    fc = rep.forecaster
    assert fc.calibration_days_ < FAST.calibration_days
    assert any("short history" in n for n in rep.notes)
    o = rep.overall
    assert o["n_test"] > 50
    # Coverage is stated; a small window (about 150 cases) allows sampling noise, not a broken calibration.
    assert 0.65 <= o["coverage_p80"] <= 0.93, o["coverage_p80"]
    assert 0.85 <= o["coverage_p95"] <= 1.0, o["coverage_p95"]


def test_below_the_minimum_history_says_how_much_is_needed(small_hospital, raw, tmp_path):
    _, h = small_hospital
    end = h.as_of()
    cases = _load(shapes.window(raw[0], str((end - pd.Timedelta(days=30)).date()), str(end.date())), tmp_path)
    with pytest.raises(InputError, match=r"at least 42 days \(6 weeks\)"):
        Forecaster(FAST).fit(cases, train_until=end)


# ------------------------------------------------------------------ an old extract
@pytest.mark.slow
def test_old_extract_takes_its_as_of_date_and_backtest_window_from_the_data(small_hospital, raw, tmp_path):
    folder, h = small_hospital
    start = h.as_of() - pd.Timedelta(days=300)
    end = start + pd.Timedelta(days=91)
    old = shapes.window(raw[0], str(start.date()), str(end.date()))
    dst = shapes.folder_with_cases(folder, tmp_path / "old", old, drop_as_of=True)
    hosp = load_hospital(dst).hospital
    assert hosp.as_of() > end  # no as_of in settings: the wall clock, long after the data
    mv = train_and_register(hosp, "old", FAST, Registry(tmp_path / "models"), test_days=91)
    meta = mv.meta
    assert any("the data ends on" in n for n in meta["notes"])
    assert pd.Timestamp(meta["train_until"]) < end
    assert pd.Timestamp(meta["backtest_test_from"]) > start + pd.Timedelta(days=42)
    assert meta["metrics"]["n_test"] > 50


# ------------------------------------------------------------------ extra features and text
def test_text_key_shares_signal_between_abbreviations():
    s = pd.Series(["Laparoscopic cholecystectomy", "Lap chole", "LAP. CHOLE (L)", "lapar. cholecys - right", None, ""])
    k = text_key(s)
    assert k.iloc[0] == k.iloc[1] == k.iloc[2] == k.iloc[3]
    assert k.iloc[4] == k.iloc[5] == "__missing__"
    assert text_key(pd.Series(["Total knee arthroplasty"])).iloc[0] != k.iloc[0]


@pytest.mark.slow
def test_declared_extra_features_are_used_and_guardrails_still_apply(small_hospital, raw, tmp_path):
    folder, h = small_hospital
    r, truth = raw
    ext = shapes.with_extras(r, truth, np.random.default_rng(1))
    declared = '\nextra_features = ["primary_team", "complexity_score", "proc_text", "patient_sex", "not_there"]\n'
    dst = shapes.folder_with_cases(folder, tmp_path / "ext", ext, settings_extra=declared)
    hosp = load_hospital(dst).hospital
    mv = train_and_register(hosp, "ext", FAST, Registry(tmp_path / "models"), test_days=60)
    fc = mv.forecaster
    assert fc.extra_kinds_ == {"primary_team": "category", "complexity_score": "numeric", "proc_text": "text"}
    names = fc.duration_.feature_names_
    assert {"xc_primary_team", "xn_complexity_score", "txt_proc_text"} <= set(names)
    assert not any("patient_sex" in c for c in names)
    notes = " ".join(mv.meta["notes"])
    assert "'patient_sex' is forbidden by the guardrail policy" in notes and "'not_there' is not a column" in notes
    # The reasons can name an extra feature in words.
    booked = hosp.cases[hosp.cases["status"] == "booked"].head(20)
    pred = fc.predict(booked, hosp.cases, as_of=hosp.as_of(), reasons=True)
    assert not pred["reasons"].str.contains("xn_|xc_|txt_").any()


@pytest.mark.slow
def test_extra_features_with_signal_improve_the_forecast_cli(small_hospital, raw, tmp_path):
    _, h = small_hospital
    d, n_bad = shapes.real_export(*raw, seed=2)
    path = shapes.write_cases(d, tmp_path / "real.csv")
    test_from = str((h.as_of() - pd.Timedelta(days=60)).date())
    base = ["evaluate", "--data", str(path), "--test-from", test_from, "--iterations", "80"]
    res = _run(*base, "--json", str(tmp_path / "a.json"))
    assert res.returncode == 0, res.stderr
    res = _run(*base, "--extra-features", "primary_team,complexity_score,proc_text", "--json", str(tmp_path / "b.json"))
    assert res.returncode == 0, res.stderr
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["n_quarantined"] == n_bad and a["cancel_auc"] is None and a["mae_baseline_booked"] is None
    assert b["extra_features"] == {"primary_team": "category", "complexity_score": "numeric", "proc_text": "text"}
    assert b["mae_p50"] < a["mae_p50"]
    for out in (a, b):
        assert out["mae_p50"] <= out["mae_baseline_procedure"]
        assert {"within_10pct_p50", "within_15min_p50", "bias_p50", "mae_baseline_procedure", "p50_source"} <= set(out)


# ------------------------------------------------------------------ never worse than the baseline
@pytest.mark.slow
def test_never_worse_than_the_procedure_median_on_pure_noise_features(small_hospital, raw, tmp_path):
    _, h = small_hospital
    cases = _load(shapes.noise_table(*raw, seed=4), tmp_path)
    params = replace(FAST, extra_features=tuple(shapes.NOISE_EXTRAS), iterations=150, depth=8)
    rep = evaluate(cases, h.as_of() - pd.Timedelta(days=60), params)
    o = rep.overall
    # The procedure median is the best P50 there is on this table; small sample: 2% slack.
    assert o["mae_p50"] <= 1.02 * o["mae_baseline_procedure"], (o["mae_p50"], o["mae_baseline_procedure"], o["p50_source"])


class _Useless:
    """A booster that predicts noise: its P50 has nothing to do with the case."""

    def __init__(self, n_q: int, seed: int = 0) -> None:
        self.n_q, self.rng = n_q, np.random.default_rng(seed)

    def predict(self, X):
        mid = 4.5 + self.rng.normal(0, 0.6, len(X))
        return np.column_stack([mid + 0.3 * k for k in range(self.n_q)])


def test_a_useless_model_falls_back_on_the_baseline_and_says_so(small_hospital, monkeypatch):
    _, h = small_hospital
    monkeypatch.setattr(DurationModel, "_fit_booster", lambda self, X, y: _Useless(len(self.params.quantiles)))
    rep = evaluate(h.cases, h.as_of() - pd.Timedelta(days=60), FAST)
    o = rep.overall
    blend = o["p50_blend"]
    assert all(c["weight_model"] == 0.0 for c in blend.values())
    assert "median" in o["p50_source"] and "the model" not in o["p50_source"]
    best = min(o["mae_baseline_history"], o["mae_baseline_procedure"])
    assert o["mae_p50"] <= 1.02 * best, (o["mae_p50"], best)


# ------------------------------------------------------------------ reasons add up
def test_reasons_add_up_from_the_stated_starting_value_to_the_p50(fitted):
    h, fc = fitted
    booked = h.cases[h.cases["status"] == "booked"].head(25)
    pred = fc.predict(booked, h.cases, as_of=h.as_of(), reasons=True)
    parts = pred["reason_base_minutes"] + pred[["reason_minutes_1", "reason_minutes_2", "reason_minutes_3"]].sum(axis=1) \
        + pred["reason_other_minutes"] + pred["reason_adjust_minutes"]
    assert np.allclose(parts, pred["p50"], atol=0.6)
    assert (pred["reason_base_minutes"] > 0).all()
    for text, p50 in zip(pred["reasons"], pred["p50"]):
        assert text.startswith("starts from ")
        start = int(text.split("starts from ")[1].split(" min")[0])
        signed = [int(x) for x in __import__("re").findall(r"(?:^|; )([+-]\d+) min:", text)]
        assert start + sum(signed) == int(round(p50)), text


# ------------------------------------------------------------------ per-hospital model choices
@pytest.mark.slow
def test_tuning_chooses_the_settings_with_the_lowest_time_split_loss(small_hospital):
    _, h = small_hospital
    params = replace(FAST, tune=True, tune_budget_s=1e6)
    fc = Forecaster(params).fit(h.cases, train_until=h.as_of() - pd.Timedelta(days=60), rooms=h.rooms)
    rep = fc.tuning_
    assert len(rep["tried"]) >= 2
    best = min(rep["tried"], key=lambda t: t["loss"])
    assert (fc.params.depth, fc.params.learning_rate) == (best["depth"], best["learning_rate"])
    assert fc.params.tune is False and 50 <= fc.params.iterations <= 2 * FAST.iterations
    assert fc.duration_.params.depth == best["depth"]
    assert any("model settings chosen on a time split" in n for n in fc.notes)
    # The refit a registry makes reuses the settings without tuning again.
    again = Forecaster(fc.params).fit(h.cases, train_until=h.as_of(), rooms=h.rooms)
    assert again.tuning_ is None and again.duration_.params.depth == best["depth"]
