from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.errors import InputError
from engine.forecast import AddonParams, ForecastParams, Forecaster, forecast_addon_totals, forecast_addons
from engine.forecast.drift import DriftParams, drift_report, overall_state, psi
from tests.engine.forecast.conftest import FAST


def _test_window(h, days=60):
    c = h.cases
    return c[(c["surgery_date"] >= h.as_of() - pd.Timedelta(days=days)) & (c["surgery_date"] < h.as_of())]


def test_quantiles_never_cross_and_are_positive(fitted):
    h, fc = fitted
    test = _test_window(h)
    pred = fc.predict(test, h.cases)
    assert (pred["p50"] > 0).all()
    assert (pred["p50"] <= pred["p80"]).all() and (pred["p80"] <= pred["p95"]).all()


def test_conformal_coverage_is_close_to_nominal_on_later_data(fitted):
    h, fc = fitted
    test = _test_window(h)
    done = test[test["status"] == "completed"]
    y = (done["wheels_out"] - done["wheels_in"]).dt.total_seconds() / 60
    pred = fc.predict(done, h.cases)
    cov80 = float((y <= pred["p80"]).mean())
    cov95 = float((y <= pred["p95"]).mean())
    # Small instance and few iterations: allow sampling noise, but a miscalibrated model fails.
    assert 0.72 <= cov80 <= 0.88, cov80
    assert 0.90 <= cov95 <= 0.99, cov95


def test_unfamiliar_cases_get_wider_intervals(fitted):
    h, fc = fitted
    booked = h.cases[h.cases["status"] == "booked"].head(20).copy()
    known = fc.predict(booked, h.cases, as_of=h.as_of())
    new = booked.assign(procedure_code="NEW-CODE")
    unknown = fc.predict(new, h.cases, as_of=h.as_of(), reasons=True)
    width_known = np.log(known["p95"] / known["p50"])
    width_new = np.log(unknown["p95"] / unknown["p50"])
    assert (unknown["novelty"] == "new_procedure").all()
    assert width_new.mean() > width_known[known["novelty"] == "known"].mean()
    assert unknown["fallback_note"].str.contains("service-line history").all()


def test_reasons_give_three_drivers_in_minutes(fitted):
    h, fc = fitted
    booked = h.cases[h.cases["status"] == "booked"].head(10)
    pred = fc.predict(booked, h.cases, as_of=h.as_of(), reasons=True)
    for k in (1, 2, 3):
        assert pred[f"reason_{k}"].str.match(r"^[+-]\d+ min: ").all()
    # Drivers are ordered by size.
    mins = pred[["reason_minutes_1", "reason_minutes_2", "reason_minutes_3"]].abs().to_numpy()
    assert (mins[:, 0] >= mins[:, 1]).all() and (mins[:, 1] >= mins[:, 2]).all()


def test_cancellation_probabilities_are_calibrated_probabilities(fitted):
    h, fc = fitted
    test = _test_window(h)
    test = test[test["urgency"] == "elective"]
    pred = fc.predict(test, h.cases)
    p = pred["cancel_prob"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    y = (test["status"] == "cancelled").to_numpy()
    # Mean predicted probability is close to the observed rate (calibration in the large).
    assert abs(p.mean() - y.mean()) < 0.05


def test_too_little_data_is_a_clear_input_error(small_hospital):
    _, h = small_hospital
    tiny = h.cases.head(50)
    # The message says how much is needed: 6 weeks and min_train + min_calibration completed cases.
    with pytest.raises(InputError, match=r"too little data.*at least 42 days \(6 weeks\) of history with 150 completed cases"):
        Forecaster(FAST).fit(tiny)


def test_addon_forecast_matches_weekday_rates_with_ordered_intervals(small_hospital):
    _, h = small_hospital
    dates = pd.date_range(h.as_of(), periods=7)
    f = forecast_addons(h.cases, dates, AddonParams(n_draws=500))
    assert set(f["date"]) == set(dates)
    assert (f["cases_lo"] <= f["expected_cases"] + 1e-9).all() and (f["expected_cases"] <= f["cases_hi"] + 1).all()
    assert (f["minutes_lo"] <= f["reserve_minutes"]).all() and (f["reserve_minutes"] <= f["minutes_hi"] + 1e-9).all()
    # Total expected add-ons per weekday is close to the history's average weekday rate.
    c = h.cases
    hist = c[c["urgency"].isin(["urgent", "emergent"]) & (c["status"] == "completed") & (c["surgery_date"] < h.as_of())]
    per_day = hist.groupby("surgery_date").size()
    weekdays = pd.date_range(c["surgery_date"].min(), h.as_of() - pd.Timedelta(days=1))
    weekdays = weekdays[weekdays.day_of_week < 5]
    rate = per_day.reindex(weekdays, fill_value=0).mean()
    monday = f[f["date"].dt.day_of_week == 0]["expected_cases"].sum()
    assert monday == pytest.approx(rate, rel=0.6)
    with pytest.raises(ValueError, match="interval"):
        AddonParams(interval=(0.9, 0.1))
    # Daily totals: expected values add up over lines; the total's P80 reserve is at least the mean
    # and above the sum of the lines' own P80s on a typical day (quantiles do not add up).
    tot = forecast_addon_totals(h.cases, dates, AddonParams(n_draws=500))
    per_day = f.groupby("date")["expected_cases"].sum()
    assert np.allclose(tot.set_index("date")["expected_cases"], per_day.reindex(tot["date"]))
    assert (tot["reserve_minutes"] >= tot["expected_minutes"] * 0.9).all()


def test_psi_and_drift_states():
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    assert psi(a, rng.normal(size=5000)) < 0.02
    assert psi(a, rng.normal(1.0, 1.0, size=5000)) > 0.25
    ref = pd.DataFrame({"booked_minutes": a, "residual": a})
    rec = pd.DataFrame({"booked_minutes": rng.normal(size=500), "residual": rng.normal(1.5, 1, size=500)})
    rep = drift_report(ref, rec, DriftParams())
    assert rep.set_index("quantity").loc["residual", "state"] == "stop"
    assert overall_state(rep) == "stop"
    with pytest.raises(ValueError, match="warn_psi"):
        DriftParams(warn_psi=0.3, stop_psi=0.2)


def test_a_per_surgeon_quantity_is_judged_on_its_surgeons_not_its_cases():
    """Every case of a surgeon carries the surgeon's 365-day volume: 40 surgeons are 40 values,
    however many cases they operate. Volumes that barely move (+-2 cases a year) read "stop" by
    the raw PSI over 700 cases; less the noise floor of 40 surgeons they are ok, while a real
    shift (every surgeon 60% busier) still stops."""
    rng = np.random.default_rng(4)
    base = np.round(rng.gamma(4.0, 20.0, 40))

    def cases(vols, n):
        s = rng.integers(0, len(vols), n)
        return pd.DataFrame({"surgeon_id": [f"S{i}" for i in s], "surgeon_volume_365d": vols[s]})

    ref = cases(base, 700)
    steady = drift_report(ref, cases(base + rng.integers(-2, 3, len(base)), 420), DriftParams()).iloc[0]
    assert steady["psi"] >= DriftParams().stop_psi  # the raw reading would stop
    assert steady["noise_psi"] > 0.3  # (10 - 1) x (1/40 + 1/40) at most: surgeons, not cases
    assert steady["state"] != "stop"
    shifted = drift_report(ref, cases(np.round(base * 1.6), 420), DriftParams()).iloc[0]
    assert shifted["state"] == "stop"
    # Fifteen surgeons (a one-room hospital): fewer than two a bin, so even a real shift only warns.
    few = cases(base[:15], 300)
    assert drift_report(few, cases(np.round(base[:15] * 1.6), 200), DriftParams()).iloc[0]["state"] == "warn"
    # Without the surgeon column the same values count as independent cases: the floor is small.
    per_case = drift_report(ref.drop(columns="surgeon_id"), cases(base, 420).drop(columns="surgeon_id"), DriftParams()).iloc[0]
    assert per_case["noise_psi"] < 0.05
