from __future__ import annotations

import warnings

import pandas as pd
import pytest

from engine.forecast import Registry, train_and_register
from engine.hospital import load_hospital
from tests.dashboard.conftest import app
from tests.engine.forecast.conftest import FAST


def _metrics(at):
    return {m.label: m.value for m in at.metric}


@pytest.mark.slow  # trains a model through the page
def test_forecasts_page_without_model_offers_training_and_trains(small_env, small_folder):
    at = app()
    at.run()
    at.switch_page("../pages/forecasts.py").run()
    assert not at.exception
    assert any("No forecasting model" in w.value for w in at.warning)
    at.button(key="retrain").click().run()
    assert not at.exception
    # After training, the page shows the accuracy figures of the new version.
    assert "P50 MAE (min)" in _metrics(at)
    assert Registry(small_env / "models").current_version(small_folder.name) is not None


def test_forecasts_page_shows_accuracy_calibration_drift_and_case_reasons(trained):
    at = app()
    at.run()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        at.switch_page("../pages/forecasts.py").run()
    assert not at.exception
    assert not [w for w in caught if "has no effect with datetime" in str(w.message)]
    # Coverage differences are percentage points, not percent.
    deltas = {x.label: x.delta for x in at.metric}
    assert deltas["P80 coverage"].endswith("pts vs 80%") and "%" not in deltas["P80 coverage"].split(" pts")[0]
    # Dates are shown as dates, not as midnight timestamps.
    for df in at.dataframe:
        for col in ("surgery_date", "date"):
            if col in df.value.columns:
                assert not pd.api.types.is_datetime64_any_dtype(df.value[col]), col
                assert "00:00:00" not in str(df.value[col].iloc[0])
    m = _metrics(at)
    for label in ("P50 MAE (min)", "Booked-minutes MAE", "P80 coverage", "P95 coverage", "P50", "Cancellation risk",
                  "Procedure-median MAE", "Within 10% of actual", "Within 15 min of actual", "Bias of the P50 (min)"):
        assert label in m
    # The model against both baselines, and what the P50 is.
    assert any("The P50 is " in c.value for c in at.caption)
    # The reasons add up: they start from a stated value and end at the P50 shown.
    parts = [md.value for md in at.markdown if md.value.startswith("- ")]
    assert any(v.startswith("- starts from ") for v in parts) and any(v.startswith("- = ") for v in parts)
    assert any("Drift state" in x.value for x in [*at.success, *at.warning, *at.error])
    assert len(at.get("plotly_chart")) >= 3
    # Choosing another case changes the per-case view.
    table = next(df.value for df in at.dataframe if "reasons" in df.value.columns)
    assert table["reasons"].str.contains(" min: ").all()
    values = {_metrics(at)["P50"]}
    for cid in table["case_id"].iloc[1:6]:
        at.selectbox(key="forecast_case").set_value(cid).run()
        values.add(_metrics(at)["P50"])
    assert len(values) > 1
    assert any(md.value.startswith("- +") or md.value.startswith("- -") for md in at.markdown)
    # The add-on tab's daily table covers the next two weeks with expected cases and reserve minutes.
    daily = next(df.value for df in at.dataframe if "reserve_minutes" in df.value.columns and "service_line" not in df.value.columns)
    assert len(daily) == 14 and (daily["reserve_minutes"] >= daily["expected_minutes"] * 0.5).all()


def test_forecasts_page_on_a_hospital_without_cancellations_says_so(small_env, small_folder, tmp_path, monkeypatch):
    from tests.engine.forecast import shapes

    raw = shapes.read_raw(small_folder / "cases.csv")
    folder = shapes.folder_with_cases(small_folder, tmp_path / "nocancel", raw[raw["status"] != "cancelled"])
    monkeypatch.setenv("HOSPITAL_DIR", str(folder))
    h = load_hospital(folder).hospital
    train_and_register(h, folder.name, FAST, Registry(small_env / "models"), test_days=60)
    at = app()
    at.run()
    at.switch_page("../pages/forecasts.py").run()
    assert not at.exception
    assert any("not trained for this hospital" in i.value and "no cancellations recorded" in i.value for i in at.info)
    assert _metrics(at)["Cancellation risk"] == "not forecast"
