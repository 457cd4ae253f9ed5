"""One number per quantity (issue 14, defects 8): pages read a KPI from the same plan and say their
basis; a what-if that defers more is not shown green for the utilization it gains."""
from __future__ import annotations

import re

import pytest
from streamlit.proto.Metric_pb2 import Metric as MetricProto

from dashboard import keys
from tests.dashboard.conftest import app

pytestmark = pytest.mark.slow


def _metric(at, label):
    return next(m for m in at.metric if m.label == label)


def test_overview_risks_read_the_schedule_pages_plan(shared_trained):
    at = app()
    at.run()
    at.switch_page("../pages/schedule.py").run()
    assert not at.exception, at.exception
    deferred = int(_metric(at, "Deferred").value)
    day = at.selectbox(key="plan_day").value
    label = f"{day:%A %d %b}"
    at.switch_page("../pages/overview.py").run()
    assert not at.exception, at.exception
    at.session_state[keys.OVERVIEW_TAB_KEY] = "Risks this week"  # a lazy tab: its plans run when it opens
    at.run()
    assert not at.exception, at.exception
    risks = [e.value for k in ("error", "warning", "info") for e in at.get(k) if e.value.startswith(label)]
    said = [int(re.search(r": (\d+) booked cases? do(?:es)? not fit", r).group(1)) for r in risks if "not fit" in r]
    # The overview's deferrals for the Schedule page's day are the Schedule page's number, with the basis named.
    assert said == ([deferred] if deferred else [])
    assert all("plan" in r for r in risks if "past close" in r or "not fit" in r)


def test_fewer_rooms_is_not_green_utilization_when_deferrals_rise(shared_trained):
    at = app()
    at.run()
    at.switch_page("../pages/whatif.py").run()
    assert not at.exception, at.exception
    base_def = float(_metric(at, "Deferred cases").value)
    at.slider(key="wi_rooms").set_value(-3).run()
    assert not at.exception, at.exception
    util = _metric(at, "Prime-time utilization")
    worse = float(_metric(at, "Deferred cases").value) > base_def
    if worse and util.delta and util.delta.startswith("+"):
        assert util.proto.color != MetricProto.MetricColor.GREEN
        assert any("Utilization is not shown as better" in c.value for c in at.caption)
    # Every KPI row says its basis.
    assert any(c.value.startswith("Basis: deferred cases as planned") for c in at.caption)
    assert "Cancellations (all causes)" in {m.label for m in at.metric}


def test_utilization_gain_with_more_deferrals_is_grey_not_green():
    from dashboard.charts import kpi_delta_color

    lower = {"deferred_cases", "p95_overtime_minutes"}
    assert kpi_delta_color("prime_time_utilization", 2.2, ["deferred_cases"], lower) == "off"
    assert kpi_delta_color("prime_time_utilization", 2.2, [], lower) == "normal"
    assert kpi_delta_color("deferred_cases", 2, ["deferred_cases"], lower) == "inverse"
