"""HospitalSettings: one typed object, errors naming the key, exit 2 from the command line."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from engine.cli import main
from engine.errors import InputError
from engine.hospital import load_hospital
from engine.settings import HospitalSettings, parse_settings
from engine.timeutil import elapsed_minutes, hhmm_to_minutes, minutes_to_hhmm, parse_window

BASE = {"turnover_minutes": 30, "pacu_minutes": 75, "prime_time": "07:30-15:30"}


def test_defaults_and_derived_values() -> None:
    s = HospitalSettings.model_validate(BASE)
    assert s.prime_window == (450, 930) and s.prime_start_minute == 450 and s.prime_end_minute == 930
    assert s.overtime_cap_minutes == 120.0
    assert s.service_levels.finish_probability == 0.8 and not s.service_levels_stated
    assert s.fairness.max_prime_time_gap_points == 5.0 and not s.fairness_stated
    assert s.extra_features == [] and s.timezone is None


def test_sections_are_read_and_round_trip() -> None:
    raw = {**BASE, "prime_time": "7:00-15:00", "service_levels": {"finish_by_close_plus_minutes": 15, "finish_probability": 0.9},
           "fairness": {"max_prime_time_gap_points": 3}, "extra_features": ["ward"], "review_date": dt.date(2027, 2, 1)}
    s = HospitalSettings.model_validate(raw)
    assert s.prime_time == "07:00-15:00"
    assert s.service_levels_stated and s.service_levels.finish_by_close_plus_minutes == 15.0
    assert s.fairness_stated and s.fairness.max_prime_time_gap_points == 3.0 and s.fairness.min_group_cases == 5
    assert s.get("review_date") == dt.date(2027, 2, 1) and s.get("nope", 7) == 7
    back = HospitalSettings.model_validate(s.to_dict())
    assert back == s and back.fairness_stated and "overtime_cap_minutes" not in s.to_dict()
    assert s.with_updates(as_of="2027-01-15").as_of == dt.date(2027, 1, 15)


@pytest.mark.parametrize("raw, key, words", [
    ({**BASE, "service_levels": {"finish_probability": 1.5}}, "service_levels.finish_probability", "probability"),
    ({**BASE, "service_levels": {"finish_by_close_plus_minutes": -5}}, "service_levels.finish_by_close_plus_minutes", "minutes"),
    ({**BASE, "service_levels": {"finish_by_close": 30}}, "service_levels.finish_by_close", "not a known setting"),
    ({**BASE, "service_levels": {"pacu_beds_short": -1}}, "service_levels.pacu_beds_short", "whole number of beds"),
    ({**BASE, "service_levels": {"pacu_beds_short": 1.5}}, "service_levels.pacu_beds_short", "whole number of beds"),
    ({**BASE, "fairness": {"max_prime_time_gap_points": "five"}}, "fairness.max_prime_time_gap_points", "percentage points"),
    ({**BASE, "fairness": {"min_group_cases": 0}}, "fairness.min_group_cases", "whole number"),
    ({**BASE, "timezone": "Mars/Olympus"}, "timezone", "IANA"),
    ({**BASE, "extra_features": "ward"}, "extra_features", "list of names"),
    ({**BASE, "prime_time": "15:30-07:30"}, "prime_time", "must look like"),
    ({**BASE, "turnover_minutes": True}, "turnover_minutes", "0..240"),
    ({k: v for k, v in BASE.items() if k != "pacu_minutes"}, "pacu_minutes", "required setting is missing"),
])
def test_bad_values_name_the_key(raw: dict, key: str, words: str) -> None:
    settings, problems = parse_settings(raw)
    assert settings is None
    assert [p.column for p in problems] == [key]
    assert words in problems[0].problem and problems[0].file == "settings.toml"


def test_cli_exit_2_names_the_key(mini_hospital: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = mini_hospital / "settings.toml"
    path.write_text(path.read_text() + "\n[service_levels]\nfinish_probability = 2\n")
    with pytest.raises(InputError):
        load_hospital(mini_hospital)
    assert main(["validate", "--data", str(mini_hospital)]) == 2
    err = capsys.readouterr().err
    assert "settings.toml" in err and "service_levels.finish_probability" in err


def test_time_helpers() -> None:
    assert hhmm_to_minutes("07:30") == 450 and hhmm_to_minutes("7:05") == 425 and minutes_to_hhmm(425) == "07:05"
    assert parse_window("07:30-15:30") == (450, 930)
    for bad in ("25:99", "7h30", "12:60"):
        with pytest.raises(ValueError, match="not a time of day"):
            hhmm_to_minutes(bad)
    with pytest.raises(ValueError):
        parse_window("15:30-07:30")


def test_elapsed_minutes_across_daylight_saving() -> None:
    # Europe/Paris: clocks go back at 03:00 on 2026-10-25 and forward at 02:00 on 2026-03-29.
    start = pd.Series(pd.to_datetime(["2026-10-25 01:30", "2026-03-29 01:30", "2026-06-01 08:00"]))
    end = pd.Series(pd.to_datetime(["2026-10-25 03:30", "2026-03-29 03:30", "2026-06-01 10:00"]))
    assert elapsed_minutes(start, end).tolist() == [120.0, 120.0, 120.0]
    assert elapsed_minutes(start, end, "Europe/Paris").tolist() == [180.0, 60.0, 120.0]
