"""engine.timeutil.room_minutes: the one home of room time, DST-correct in the hospital's time zone."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.forecast.params import ForecastParams
from engine.timeutil import room_minutes

NY = "America/New_York"  # 2026: clocks go forward at 02:00 on 03-08, back at 02:00 on 11-01


def _cases() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "wheels_in": pd.to_datetime(["2026-03-08 01:30", "2026-11-01 00:30", "2026-06-01 08:00", None, "2026-11-01 01:10"]),
            "wheels_out": pd.to_datetime(["2026-03-08 03:30", "2026-11-01 02:30", "2026-06-01 10:00", "2026-06-01 09:00", None]),
        },
        index=[10, 11, 12, 13, 14],
    )


def test_room_minutes_across_spring_forward_and_fall_back() -> None:
    got = room_minutes(_cases(), NY)
    # 01:30 -> 03:30 on the spring night lasts one hour; 00:30 -> 02:30 on the autumn night three.
    assert got.loc[10] == 60.0
    assert got.loc[11] == 180.0
    assert got.loc[12] == 120.0
    assert got.loc[[13, 14]].isna().all()
    assert list(got.index) == [10, 11, 12, 13, 14]


def test_room_minutes_without_a_time_zone_is_the_plain_difference() -> None:
    got = room_minutes(_cases())
    assert got.loc[[10, 11, 12]].tolist() == [120.0, 120.0, 120.0]
    assert got.loc[[13, 14]].isna().all()
    assert room_minutes(_cases(), None).equals(got)


def test_room_minutes_of_an_ordinary_day_ignore_the_zone() -> None:
    c = _cases().loc[[12]]
    assert room_minutes(c, NY).tolist() == room_minutes(c).tolist() == [120.0]


def test_room_minutes_of_no_cases() -> None:
    got = room_minutes(_cases().iloc[:0], NY)
    assert len(got) == 0 and got.dtype == np.float64


def test_forecast_params_carry_a_checked_time_zone() -> None:
    assert ForecastParams().timezone is None
    assert ForecastParams(timezone=NY).timezone == NY
    for bad in ("", "Mars/Olympus_Mons", 5):
        with pytest.raises(ValueError, match="timezone"):
            ForecastParams(timezone=bad)
