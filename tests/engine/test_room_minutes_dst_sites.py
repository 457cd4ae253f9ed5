"""Room minutes across a daylight-saving change at the remaining call sites (issue 18): the add-on
history and forecast, the model-free forecasts of the safe state and of the week replay, the
recorded overtime of a pilot day, and the hospital's time zone handed to the forecast params of
``evaluate``, the network backtest and the pilot's replay model, and to the importer's inferred
blocks. With ``America/New_York`` the fall-back night's case 00:30 -> 02:30 on the wall clock is
180 minutes in the room; without a time zone it keeps the plain 120."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

import engine.forecast
import engine.onboard.infer
import engine.policies
from engine.cli import build_parser
from engine.forecast.addons import addon_forecast_for, addon_history, forecast_addon_totals, forecast_addons
from engine.forecast.params import ForecastParams
from engine.governance.fallback import booked_forecasts
from engine.hospital import load_hospital
from engine.importer import import_hospital
from engine.network.forecast import _backtest
from engine.pilot.replay import observed_day, train_before
from engine.policies import replay_week
from tests.minihospital import SETTINGS, case_rows, write_mini_hospital

NY = "America/New_York"  # 2026: back at 02:00 on Sunday 11-01
FALL = "2026-11-01"
ZONES = [(NY, 180.0), (None, 120.0)]
ROOT = Path(__file__).resolve().parents[2]


def _case(case_id: str, date: str, wheels_in: str = "", wheels_out: str = "", *, status: str = "completed",
          code: str = "27130", urgency: str = "elective", booked: str = "") -> str:
    room = "" if status == "booked" else "OR2"
    return (f"{case_id},{date},{status},Orthopedics,{code},Total hip arthroplasty,S1,{room},{booked},2026-10-20T10:00,"
            f"{wheels_in},{wheels_in},{wheels_out},,,{urgency},,fluoro,61,F,2,27.0,general,inpatient,Main")


def _hospital(tmp_path: Path, timezone: str | None, rows: list[str]):
    settings = SETTINGS + (f'timezone = "{timezone}"\n' if timezone else "")
    folder = write_mini_hospital(tmp_path / (timezone or "plain").replace("/", "_"), [*case_rows(), *rows],
                                 settings_toml=settings)
    loaded = load_hospital(folder)
    assert loaded.report.n_quarantined == 0  # every hand-written case is in
    return folder, loaded.hospital


class _Stop(Exception):
    pass


# ------------------------------------------------------------------------------------------ add-ons

# The only add-on: urgent, on the fall-back night, so every add-on minute drawn is this case's.
URGENT = _case("U1", FALL, f"{FALL}T00:30", f"{FALL}T02:30", urgency="urgent")


@pytest.mark.parametrize("timezone, minutes", ZONES)
def test_addon_history_takes_the_real_minutes(tmp_path: Path, timezone: str | None, minutes: float) -> None:
    _, h = _hospital(tmp_path, timezone, [URGENT])
    hist = addon_history(h.cases, h.settings.timezone)
    assert list(hist["case_id"]) == ["U1"]  # elective cases are no add-ons
    assert hist["duration"].iloc[0] == minutes


def test_addon_forecast_minutes_follow_the_hospital_zone(tmp_path: Path) -> None:
    _, ny = _hospital(tmp_path, NY, [URGENT])
    _, plain = _hospital(tmp_path, None, [URGENT])
    sunday = pd.Timestamp("2027-01-10")  # the add-on's weekday
    a = addon_forecast_for(ny, [sunday]).set_index("service_line").loc["Orthopedics"]
    b = addon_forecast_for(plain, [sunday]).set_index("service_line").loc["Orthopedics"]
    assert b["expected_minutes"] > 0 and a["expected_cases"] == b["expected_cases"]
    # Same count draws (same seed), every drawn add-on 180 instead of 120 minutes long.
    assert a["expected_minutes"] == pytest.approx(1.5 * b["expected_minutes"])
    assert a["reserve_minutes"] == pytest.approx(1.5 * b["reserve_minutes"])
    # The functions under it take the zone as an argument (None: the wall clock).
    as_of = ny.as_of()
    explicit = forecast_addons(plain.cases, [sunday], as_of=as_of, timezone=NY).set_index("service_line")
    assert explicit.loc["Orthopedics", "expected_minutes"] == pytest.approx(a["expected_minutes"])
    t_ny = forecast_addon_totals(ny.cases, [sunday], as_of=as_of, timezone=NY)["expected_minutes"].iloc[0]
    t_plain = forecast_addon_totals(ny.cases, [sunday], as_of=as_of)["expected_minutes"].iloc[0]
    assert t_plain > 0 and t_ny == pytest.approx(1.5 * t_plain)


@pytest.mark.parametrize("timezone", [NY, None])
def test_planner_addon_reserve_follows_the_hospital_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         timezone: str | None) -> None:
    """The minutes the planner holds open for add-ons come from the add-on forecast in the hospital's zone."""
    import engine.forecast as forecast
    from engine.plan.planner import addon_reserve_minutes

    _, h = _hospital(tmp_path, timezone, [URGENT])
    seen = []
    real = forecast.forecast_addon_totals
    monkeypatch.setattr(forecast, "forecast_addon_totals", lambda *a, **k: seen.append(k.get("timezone")) or real(*a, **k))
    out = addon_reserve_minutes(h, pd.Timestamp("2027-01-10"), 2)
    assert seen == [timezone] and list(out.columns) == ["date", "reserve_minutes"] and len(out) == 2


# ------------------------------------------------------------------------- model-free forecasts

# A procedure of its own, done once on the fall-back night without booked minutes: its median room
# time is that case's.
FALL_CASE = _case("DST1", FALL, f"{FALL}T00:30", f"{FALL}T02:30", code="99999")


@pytest.mark.parametrize("timezone, minutes", ZONES)
def test_safe_state_booked_forecasts_use_the_hospital_zone(tmp_path: Path, timezone: str | None, minutes: float) -> None:
    new = _case("N1", "2027-01-05", status="booked", code="99999")  # no booked minutes
    _, h = _hospital(tmp_path, timezone, [FALL_CASE, new])
    got = booked_forecasts(h, p80_factor=1.2).set_index("case_id")
    assert got.loc["N1", "p50"] == minutes
    assert got.loc["N1", "p80"] == pytest.approx(1.2 * minutes)
    # Booked minutes still win where a case has them.
    assert (got.drop("N1")["p50"] == 120.0).all()


@pytest.mark.parametrize("timezone, minutes", ZONES)
def test_week_replay_booked_forecasts_use_the_hospital_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            timezone: str | None, minutes: float) -> None:
    # A case of the replayed week without booked minutes takes its procedure's median in the history.
    week_case = _case("W1", "2026-12-01", "2026-12-01T13:00", "2026-12-01T14:00", code="99999")
    _, h = _hospital(tmp_path, timezone, [FALL_CASE, week_case])
    real = engine.policies.booked_forecasts
    seen: dict[str, pd.DataFrame] = {}

    def capture(*args, **kwargs):
        seen["fc"] = real(*args, **kwargs)
        raise _Stop  # planning and simulating the week is not what is checked here

    monkeypatch.setattr(engine.policies, "booked_forecasts", capture)
    with pytest.raises(_Stop):
        replay_week(h, "2026-12-01", days=1)
    assert seen["fc"].set_index("case_id").loc["W1", "p50"] == minutes


# ------------------------------------------------------------------------------- recorded overtime

@pytest.mark.parametrize("timezone, overtime", [(NY, 660.0), (None, 600.0)])
def test_observed_day_overtime_across_the_fall_back_night(tmp_path: Path, timezone: str | None, overtime: float) -> None:
    # OR2 closes at 17:00; a Saturday case running to 03:00 on Sunday is 11 real hours past close in NY.
    late = _case("DST3", "2026-10-31", "2026-10-31T15:00", f"{FALL}T03:00")
    _, h = _hospital(tmp_path, timezone, [late])
    got = observed_day(h, pd.Timestamp("2026-10-31"))
    assert got == {"overtime_minutes": overtime, "cases_done": 1.0}
    # An ordinary day is the same in either zone: C0001..C0003 of 12-01 end before their rooms close.
    assert observed_day(h, pd.Timestamp("2026-12-01"))["overtime_minutes"] == 0.0


# ------------------------------------------------------------- forecast params get the hospital zone

def _capture_evaluate(monkeypatch: pytest.MonkeyPatch) -> dict[str, ForecastParams]:
    seen: dict[str, ForecastParams] = {}

    def capture(cases, test_from, params=None, **kwargs):
        seen["params"] = params
        raise _Stop

    monkeypatch.setattr(engine.forecast, "evaluate", capture)
    return seen


@pytest.mark.parametrize("timezone", [NY, None])
def test_cli_evaluate_takes_the_folder_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timezone: str | None) -> None:
    folder, _ = _hospital(tmp_path, timezone, [FALL_CASE])
    seen = _capture_evaluate(monkeypatch)
    args = build_parser().parse_args(["evaluate", "--data", str(folder), "--test-from", "2026-12-15", "--iterations", "7"])
    with pytest.raises(_Stop):
        args.func(args)
    assert seen["params"].timezone == timezone and seen["params"].iterations == 7
    # A lone cases.csv has no settings: the wall-clock difference.
    args = build_parser().parse_args(["evaluate", "--data", str(folder / "cases.csv"), "--test-from", "2026-12-15"])
    with pytest.raises(_Stop):
        args.func(args)
    assert seen["params"].timezone is None


def test_cli_evaluate_keeps_the_folder_extra_features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = SETTINGS + 'extra_features = ["bmi"]\n'
    folder = write_mini_hospital(tmp_path / "extras", settings_toml=settings)
    seen = _capture_evaluate(monkeypatch)
    for extra, want in ((None, ("bmi",)), ("asa_class", ("asa_class",))):
        argv = ["evaluate", "--data", str(folder), "--test-from", "2026-12-15"]
        args = build_parser().parse_args(argv + (["--extra-features", extra] if extra else []))
        with pytest.raises(_Stop):
            args.func(args)
        assert seen["params"].extra_features == want  # the command line wins over settings.toml


@pytest.mark.parametrize("timezone", [NY, None])
def test_network_backtest_takes_the_site_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timezone: str | None) -> None:
    folder, _ = _hospital(tmp_path, timezone, [FALL_CASE])
    seen = _capture_evaluate(monkeypatch)
    with pytest.raises(_Stop):
        _backtest([str(folder)], pd.Timestamp("2026-12-15"), ForecastParams(iterations=9))
    assert seen["params"].timezone == timezone and seen["params"].iterations == 9


@pytest.mark.parametrize("timezone", [NY, None])
def test_pilot_replay_model_takes_the_hospital_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timezone: str | None) -> None:
    _, h = _hospital(tmp_path, timezone, [FALL_CASE])
    seen: dict[str, ForecastParams] = {}

    class Capture:
        def __init__(self, params: ForecastParams) -> None:
            seen["params"] = params

        def fit(self, *args, **kwargs):
            raise _Stop

    monkeypatch.setattr(engine.forecast, "Forecaster", Capture)
    with pytest.raises(_Stop):
        train_before(h, pd.Timestamp("2026-12-15"), 40)
    p = seen["params"]
    assert p.timezone == timezone
    assert (p.iterations, p.cancel_iterations, p.tune) == (40, 20, False)


# ------------------------------------------------------------------------------ importer inference

SAMPLE = ROOT / "data" / "samples" / "or_utilization_export.csv"
MAPPING = ROOT / "data" / "mappings" / "or_utilization_export.yaml"


def _capture_infer(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    real = engine.onboard.infer.infer_blocks
    zones: list[str | None] = []

    def capture(cases, rooms, params, timezone=None):
        zones.append(timezone)
        return real(cases, rooms, params, timezone=timezone)

    monkeypatch.setattr(engine.onboard.infer, "infer_blocks", capture)
    return zones


@pytest.mark.parametrize("timezone", [NY, None])
def test_import_infers_blocks_in_the_mapping_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timezone: str | None) -> None:
    data = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))
    data["settings"].pop("timezone", None)
    if timezone:
        data["settings"]["timezone"] = timezone
    mapping = tmp_path / "map.yaml"
    mapping.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    zones = _capture_infer(monkeypatch)
    out = tmp_path / "hospital"
    import_hospital(SAMPLE, mapping, out)
    assert zones == [timezone]
    assert (out / "blocks.csv").exists()


def test_inferred_blocks_zone_from_a_settings_file(tmp_path: Path) -> None:
    """With ``files.settings`` the zone is the copied settings.toml's (the mapping has no settings section);
    a file that does not parse gives None (validation of the written folder rejects it)."""
    import dataclasses

    import tomli_w

    from engine.contract import SETTINGS_FILE
    from engine.importer.mapping import load_mapping
    from engine.importer.pipeline import _settings_timezone

    base = load_mapping(MAPPING)
    assert _settings_timezone({**base.settings, "timezone": NY}, tmp_path, base) == NY
    assert _settings_timezone({k: v for k, v in base.settings.items() if k != "timezone"}, tmp_path, base) is None
    from_file = dataclasses.replace(base, settings={}, files={SETTINGS_FILE: tmp_path / "given.toml"})
    (tmp_path / SETTINGS_FILE).write_text(tomli_w.dumps({**base.settings, "timezone": NY}), encoding="utf-8")
    assert _settings_timezone({}, tmp_path, from_file) == NY
    (tmp_path / SETTINGS_FILE).write_text("timezone = ", encoding="utf-8")
    assert _settings_timezone({}, tmp_path, from_file) is None
