"""Room minutes across a daylight-saving change on the real paths (issue 18): validation, the
forecaster's training minutes and features, the model-free fallback, the replay's actuals, the
fairness demand, the leadership overview and the inferred blocks all take the hospital's ``settings.timezone``; without
one they keep the plain wall-clock difference."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import engine.forecast.forecaster as forecaster_module
from engine.fairness.review import history_demand
from engine.forecast.fallback import booked_forecasts
from engine.forecast.features import build_features, completed_history
from engine.forecast.forecaster import Forecaster
from engine.forecast.params import ForecastParams
from engine.forecast.registry import hospital_params
from engine.hospital import load_hospital
from engine.onboard.infer import InferParams, weekly_template
from engine.overview import history_kpis
from engine.sim import replay_actuals
from tests.minihospital import SETTINGS, case_rows, write_mini_hospital

NY = "America/New_York"  # 2026: forward at 02:00 on 03-08, back at 02:00 on 11-01
FALL = "2026-11-01"


def _row(case_id: str, date: str, wheels_in: str, wheels_out: str, code: str = "27130") -> str:
    return (f"{case_id},{date},completed,Orthopedics,{code},Total hip arthroplasty,S1,OR2,,2026-10-20T10:00,"
            f"{wheels_in},{wheels_in},{wheels_out},,,elective,,fluoro,61,F,2,27.0,general,inpatient,Main")


# The fall-back night: 00:30 -> 02:30 on the wall clock is three hours in the room. A procedure of its
# own (no booked minutes) so its median room time is this case's.
FALL_CASE = _row("DST1", FALL, f"{FALL}T00:30", f"{FALL}T02:30", code="99999")


def _hospital(tmp_path: Path, timezone: str | None, rows: list[str] | None = None):
    settings = SETTINGS + (f'timezone = "{timezone}"\n' if timezone else "")
    folder = write_mini_hospital(tmp_path / (timezone or "plain").replace("/", "_"),
                                 [*case_rows(), *(rows or [FALL_CASE])], settings_toml=settings)
    return load_hospital(folder)


def test_validation_judges_the_real_room_time(tmp_path: Path) -> None:
    # 03:00 to 03:10 the next day over the spring night: 1450 wall-clock minutes, 1390 real ones
    # (the longest room time allowed is 1440).
    long_case = _row("DST2", "2026-03-07", "2026-03-07T03:00", "2026-03-08T03:10")
    plain = _hospital(tmp_path, None, [long_case])
    real = _hospital(tmp_path, NY, [long_case])
    assert "DST2" in set(plain.report.quarantine["case_id"])
    assert "DST2" not in set(plain.hospital.cases["case_id"])
    assert "DST2" in set(real.hospital.cases["case_id"])
    assert real.report.n_quarantined == plain.report.n_quarantined - 1


def test_hospital_params_take_the_time_zone_from_settings(tmp_path: Path) -> None:
    h = _hospital(tmp_path, NY).hospital
    assert hospital_params(h, ForecastParams()).timezone == NY
    # A zone given explicitly wins; a hospital without one leaves None.
    assert hospital_params(h, ForecastParams(timezone="Europe/Paris")).timezone == "Europe/Paris"
    assert hospital_params(_hospital(tmp_path, None).hospital, ForecastParams()).timezone is None


class _Stop(Exception):
    pass


def _training_minutes(monkeypatch: pytest.MonkeyPatch, cases: pd.DataFrame, params: ForecastParams) -> pd.Series:
    """The minutes Forecaster.fit hands its duration model, by case_id (the fit stops there)."""
    seen: dict[str, pd.Series] = {}

    class Capture:
        def __init__(self, params: ForecastParams) -> None:
            pass

        def fit(self, X: pd.DataFrame, y: np.ndarray, *args, **kwargs):
            seen["y"] = pd.Series(np.asarray(y, dtype=float), index=cases.loc[X.index, "case_id"].to_numpy())
            raise _Stop

    monkeypatch.setattr(forecaster_module, "DurationModel", Capture)
    with pytest.raises(_Stop):
        Forecaster(params).fit(cases, train_until=pd.Timestamp("2027-01-01"))
    return seen["y"]


@pytest.mark.parametrize("timezone, minutes", [(NY, 180.0), (None, 120.0)])
def test_forecaster_trains_on_the_real_minutes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               timezone: str | None, minutes: float) -> None:
    h = _hospital(tmp_path, timezone).hospital
    params = hospital_params(h, ForecastParams(min_history_days=1, min_train_cases=1, min_calibration_cases=1))
    assert params.timezone == timezone
    y = _training_minutes(monkeypatch, h.cases, params)
    assert y["DST1"] == minutes
    # Cases of ordinary days are unchanged by the zone.
    plain = (h.cases.set_index("case_id")["wheels_out"] - h.cases.set_index("case_id")["wheels_in"]).dt.total_seconds() / 60
    others = y.drop("DST1")
    assert np.allclose(others.to_numpy(), plain.loc[others.index].to_numpy())


@pytest.mark.parametrize("timezone, minutes", [(NY, 180.0), (None, 120.0)])
def test_features_history_uses_the_real_minutes(tmp_path: Path, timezone: str | None, minutes: float) -> None:
    h = _hospital(tmp_path, timezone).hospital
    hist = completed_history(h.cases, timezone)
    assert hist.set_index("case_id").loc["DST1", "duration"] == minutes
    # A later case of the same procedure sees the fall-back case's real room time as its history.
    target = h.cases[h.cases["status"] == "booked"].head(1).assign(procedure_code="99999")
    f = build_features(target, h.cases, ForecastParams(timezone=timezone))
    assert f["baseline_procedure"].iloc[0] == pytest.approx(minutes)


@pytest.mark.parametrize("timezone, minutes", [(NY, 180.0), (None, 120.0)])
def test_booked_fallback_takes_the_real_procedure_median(tmp_path: Path, timezone: str | None, minutes: float) -> None:
    h = _hospital(tmp_path, timezone).hospital
    case = pd.DataFrame({"case_id": ["N1"], "booked_minutes": [np.nan], "procedure_code": ["99999"],
                         "service_line": ["Orthopedics"]})
    got = booked_forecasts(case, h.cases, p80_factor=1.2, timezone=h.settings.timezone)
    assert got["p50"].iloc[0] == minutes


@pytest.mark.parametrize("timezone, minutes", [(NY, 180.0), (None, 120.0)])
def test_replay_and_fairness_demand_use_the_hospital_zone(tmp_path: Path, timezone: str | None, minutes: float) -> None:
    h = _hospital(tmp_path, timezone).hospital
    assert replay_actuals(h, [pd.Timestamp(FALL)]).durations["DST1"] == minutes
    sched = pd.DataFrame({"case_id": ["DST1"]})
    assert history_demand(h, sched)["p50"].iloc[0] == minutes


@pytest.mark.parametrize("timezone, overtime", [(NY, 660.0), (None, 600.0)])
def test_overview_overtime_across_the_fall_back_night(tmp_path: Path, timezone: str | None, overtime: float) -> None:
    # OR2 closes at 17:00; a Saturday case running to 03:00 on Sunday 11-01 is 11 hours past close in NY.
    late = _row("DST3", "2026-10-31", "2026-10-31T15:00", f"{FALL}T03:00")
    h = _hospital(tmp_path, timezone, [FALL_CASE, late]).hospital
    week = pd.Timestamp("2026-10-26")  # Monday of the week holding both cases
    by_week = history_kpis(h).set_index("period").loc[week]
    assert by_week["cases"] == 2
    assert by_week["overtime_minutes"] == overtime
    by_line = history_kpis(h, by="service_line").set_index(["period", "service_line"]).loc[(week, "Orthopedics")]
    assert by_line["overtime_minutes"] == overtime


@pytest.mark.parametrize("timezone, owner", [(NY, "Urology"), (None, "Orthopedics")])
def test_inferred_block_owner_counts_the_real_minutes(timezone: str | None, owner: str) -> None:
    # One Sunday of OR1: Urology's night case is 120 wall-clock minutes but 180 real ones; Orthopedics ran 150.
    cases = pd.DataFrame({
        "case_id": ["U1", "O1"], "status": ["completed", "completed"], "room_id": ["OR1", "OR1"],
        "surgery_date": pd.to_datetime([FALL, FALL]), "service_line": ["Urology", "Orthopedics"],
        "surgeon_id": ["S4", "S1"], "booked_minutes": [np.nan, np.nan],
        "wheels_in": pd.to_datetime([f"{FALL} 00:30", f"{FALL} 08:00"]),
        "wheels_out": pd.to_datetime([f"{FALL} 02:30", f"{FALL} 10:30"]),
    })
    t = weekly_template(cases, InferParams(weeks=1, min_used_share=0.0, min_owner_share=0.0), timezone=timezone)
    assert t[["room_id", "weekday", "service_line"]].values.tolist() == [["OR1", 6, owner]]
