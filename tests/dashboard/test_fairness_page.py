from __future__ import annotations

import pytest

from tests.dashboard.conftest import app


def _open():
    at = app()
    at.run()
    at.switch_page("../pages/fairness.py").run()
    assert not at.exception, at.exception
    return at


def test_fairness_page_breakdowns_flags_and_pack(trained):
    at = _open()
    table = next(df.value for df in at.dataframe if "prime_time_gap" in df.value.columns)
    assert abs(table["demand_share"].sum() - 1) < 0.01  # shown rounded to 3 decimals
    assert any(m.label == "Largest prime-time shortfall" for m in at.metric)
    assert len(at.get("plotly_chart")) >= 2
    assert len(at.get("download_button")) == 1
    # A zero threshold flags every group short of its demand share; drill-down lists cases.
    at.number_input(key="fair_threshold").set_value(0.0).run()
    assert int(next(m.value for m in at.metric if m.label == "Flags")) >= 1
    assert any("Cases behind the flag" in md.value for md in at.markdown)


@pytest.mark.parametrize("source,by", [("rules-based baseline", "surgeon_id"), ("history (last 4 weeks)", "site")])
def test_sources_and_groupings(trained, source, by):
    at = _open()
    at.selectbox(key="fair_source").set_value(source)
    at.selectbox(key="fair_by").set_value(by).run()
    assert not at.exception
    assert any(by in df.value.columns for df in at.dataframe)


def test_fairness_term_cost_shown(trained):
    at = _open()
    at.number_input(key="fair_threshold").set_value(1.0).run()
    at.button(key="fair_term_button").click().run()
    assert not at.exception
    cost = next(df.value for df in at.dataframe if "max_prime_time_gap_points" in df.value.columns)
    assert len(cost) == 2
    assert any("Cost of the term" in md.value for md in at.markdown)
