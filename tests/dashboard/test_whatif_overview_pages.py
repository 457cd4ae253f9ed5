"""What-if page: every slider re-plans and re-simulates; saved scenarios compare and export.
Leadership overview: KPIs, risks, frontier."""
from __future__ import annotations

import pytest

from dashboard import keys
from tests.dashboard.conftest import app


def _metrics(at):
    return {m.label: (m.value, m.delta) for m in at.metric}


def _open(page):
    at = app()
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("key,value", [("wi_rooms", -3), ("wi_teams", -3), ("wi_beds", -4), ("wi_addons", 2.0),
                                       ("wi_inflation", 0.3), ("wi_cancel", 3.0)])
def test_each_slider_replans_and_changes_something(shared_trained, key, value):
    at = _open("../pages/whatif.py")
    at.selectbox(key="wi_solver").set_value("rules").run()
    before = _metrics(at)
    at.slider(key=key).set_value(value).run()
    assert not at.exception
    after = _metrics(at)
    assert after != before or any(d is not None for _, d in after.values())


def test_fewer_rooms_defers_more_and_more_addons_raise_overtime(shared_trained):
    at = _open("../pages/whatif.py")
    at.selectbox(key="wi_solver").set_value("rules").run()
    base_def = float(_metrics(at)["Deferred cases"][0])
    base_ot = float(_metrics(at)["P95 overtime (min)"][0])
    at.slider(key="wi_rooms").set_value(-4).run()
    assert float(_metrics(at)["Deferred cases"][0]) > base_def or float(_metrics(at)["P95 overtime (min)"][0]) > base_ot
    at.slider(key="wi_rooms").set_value(0).run()
    at.slider(key="wi_addons").set_value(2.0).run()
    assert float(_metrics(at)["P95 overtime (min)"][0]) >= base_ot


def test_saved_scenarios_compare_and_export(shared_trained):
    at = _open("../pages/whatif.py")
    at.selectbox(key="wi_solver").set_value("rules").run()
    at.slider(key="wi_rooms").set_value(-2).run()
    at.text_input(key="wi_name").input("two rooms down")
    at.button(key="wi_save").click().run()
    at.slider(key="wi_addons").set_value(1.5).run()
    at.text_input(key="wi_name").input("two down, more add-ons")
    at.button(key="wi_save").click().run()
    table = next(df.value for df in at.dataframe if "KPI" in df.value.columns)
    assert list(table.columns) == ["KPI", "baseline", "two rooms down", "two down, more add-ons"]
    # KPIs and settings in words, not code names.
    assert "P95 overtime (min)" in set(table["KPI"]) and not any("_" in k for k in table["KPI"])
    settings = next(df.value for df in at.dataframe if "scenario" in df.value.columns)
    assert "name" not in settings.columns and "Staffed rooms (change)" in settings.columns
    assert len(at.get("download_button")) == 1
    # Saving without a name is refused.
    at.text_input(key="wi_name").input("")
    at.button(key="wi_save").click().run()
    assert any("Give the scenario a name" in e.value for e in at.error)


@pytest.mark.slow  # plans, simulates and draws the frontier
def _open_tab(at, label):
    """Open one of the Overview page's lazy tabs (only the open tab's content runs)."""
    at.session_state[keys.OVERVIEW_TAB_KEY] = label
    at.run()
    assert not at.exception, at.exception
    return at


def test_overview_computes_the_frontier_and_risks_only_when_their_tab_opens(shared_trained, monkeypatch):
    import dashboard.overview_state as ovs
    import dashboard.state as state

    calls = []
    real_frontier, real_risks = state.frontier, ovs.week_risks
    monkeypatch.setattr(state, "frontier", lambda *a, **k: calls.append("frontier") or real_frontier(*a, **k))
    monkeypatch.setattr(ovs, "week_risks", lambda *a, **k: calls.append("risks") or real_risks(*a, **k))
    at = _open("../pages/overview.py")
    assert calls == [] and not any("Risk weight (x current)" in df.value.columns for df in at.dataframe)
    _open_tab(at, "Trade-off frontier")
    assert calls == ["frontier"]
    _open_tab(at, "Risks this week")
    assert calls == ["frontier", "risks"]


def test_overview_shows_kpis_risks_frontier(shared_trained):
    at = _open("../pages/overview.py")
    labels = set(_metrics(at))
    assert {"Prime-time utilization", "Overtime per week (min)", "Elective cancellations", "Add-ons per week",
            "On-time first cases"} <= labels
    verdicts = [m.value for m in (*at.warning, *at.info, *at.success)]
    _open_tab(at, "Trade-off frontier")
    frontier = next(df.value for df in at.dataframe if "Risk weight (x current)" in df.value.columns)
    assert frontier["Current policy"].sum() == 1 and len(frontier) >= 3
    assert {"rules", "current plan"} <= set(frontier["Plan"])  # the rules schedule is a point on it
    assert not any("_" in c for c in frontier.columns)  # columns in words
    # Each point's P95 comes with its chance band (same random days for every point).
    assert (frontier["P95 overtime, band low (min)"] <= frontier["P95 overtime (min, simulated)"] + 1e-9).all()
    assert (frontier["P95 overtime (min, simulated)"] <= frontier["P95 overtime, band high (min)"] + 1e-9).all()
    # The page opens with the verdict against the block rules; its risks tab gives a risk sentence or
    # the explicit all-clear.
    assert any("rules" in m for m in verdicts)
    _open_tab(at, "Risks this week")
    risks = [m.value for m in (*at.error, *at.warning, *at.info, *at.success) if m.value not in verdicts]
    assert any("No risk found" in m for m in risks) or any(m[:3] in ("Mon", "Tue", "Wed", "Thu", "Fri") for m in risks)


def test_optimizer_whatif_ends_on_the_final_answer(shared_trained):
    """With HiGHS a slider move shows a first answer and then the refined one; the run ends on the
    final answer, whose caption says so, with the KPI changes against the baseline."""
    at = _open("../pages/whatif.py")
    assert at.selectbox(key="wi_solver").value == "highs"
    at.slider(key="wi_rooms").set_value(-3).run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "Final answer" in captions and "refining" not in captions
    assert any(d is not None for _, d in _metrics(at).values())
