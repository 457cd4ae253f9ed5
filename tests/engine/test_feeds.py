"""engine.feeds: room time comes from engine.timeutil (one definition) and honours the time zone."""
from __future__ import annotations

import pandas as pd

from engine import feeds, timeutil
from engine.feeds import duration_by_service_line


def test_feeds_room_minutes_is_the_timeutil_helper() -> None:
    assert feeds.room_minutes is timeutil.room_minutes


def test_duration_by_service_line_across_fall_back() -> None:
    cases = pd.DataFrame({
        "status": ["completed", "completed", "cancelled"],
        "service_line": ["Urology", "Orthopedics", "Urology"],
        "wheels_in": pd.to_datetime(["2026-11-01 00:30", "2026-06-01 08:00", None]),
        "wheels_out": pd.to_datetime(["2026-11-01 02:30", "2026-06-01 09:30", None]),
    })
    plain = duration_by_service_line(cases)
    real = duration_by_service_line(cases, "America/New_York")
    assert plain["room_minutes"].tolist() == [120.0, 90.0]
    assert real["room_minutes"].tolist() == [180.0, 90.0]
    assert real["service_line"].tolist() == ["Urology", "Orthopedics"]
