from __future__ import annotations

import re


from tests.dashboard.conftest import app


def _open_schedule():
    at = app()
    at.run()
    at.switch_page("../pages/schedule.py").run()
    assert not at.exception, at.exception
    return at


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_schedule_page_without_model_says_what_to_do(small_env):
    at = _open_schedule()
    assert any("Train one on the Forecasts page" in w.value for w in at.warning)


def test_schedule_page_plans_and_shows_gantt_pacu_deferred_exports(trained):
    at = _open_schedule()
    assert _metric(at, "Solver") == "highs"
    n_sched = int(_metric(at, "Scheduled"))
    assert n_sched > 0
    charts = at.get("plotly_chart")
    assert len(charts) >= 2  # Gantt and PACU curve
    assert any("Why this room and time" in m.value for m in at.markdown)
    downloads = at.get("download_button")
    assert len(downloads) == 3  # schedule.csv and two printable day lists
    assert any("deferred cases" in m.value for m in at.markdown)
    # Tables in words (issue 14, defects 9: `end_p50` was shown raw in the day list).
    day_list = next(df.value for df in at.dataframe if "Procedure" in df.value.columns)
    assert {"End at P50", "End at P80"} <= set(day_list.columns) and "end_p50" not in day_list.columns


def test_switching_to_rules_solver_replans(trained):
    at = _open_schedule()
    at.selectbox(key="plan_solver").set_value("rules")
    at.get("form_submit_button")[0].click().run()
    assert not at.exception
    assert _metric(at, "Solver") == "rules"


def test_case_details_follow_the_selection(trained):
    at = _open_schedule()
    sel = at.selectbox(key="plan_case")
    first = [m.value for m in at.markdown if m.value.startswith("**C")]
    # Options read "case id · start room · service line · surgeon".
    assert all(" · surgeon " in o for o in sel.options)
    at.selectbox(key="plan_case").set_value(sel.options[-1].split(" · ")[0]).run()
    second = [m.value for m in at.markdown if m.value.startswith("**C")]
    assert first and second and first != second


def test_alternatives_side_by_side(trained):
    at = _open_schedule()
    at.button(key="alternatives_button").click().run()
    assert not at.exception
    table = next(df.value for df in at.dataframe if "Alternative" in df.value.columns)
    assert list(table["Alternative"]) == ["utilization-first", "balanced", "overtime-averse"]
    # Every row says where its schedule comes from; balanced is the plan the page already shows.
    assert table["Schedule from"].str.len().gt(0).all()
    assert int(table.set_index("Alternative").at["balanced", "Scheduled"]) == int(_metric(at, "Scheduled"))
    assert not any("_" in c for c in table.columns)


def test_replan_a_cancellation_lists_the_change(trained):
    at = _open_schedule()
    at.selectbox(key="replan_kind").set_value("cancellation")
    forms = at.get("form_submit_button")
    forms[-1].click().run()
    assert not at.exception
    changes = next(df.value for df in at.dataframe if "Change" in df.value.columns)
    assert "removed" in set(changes["Change"])
    assert not any(re.fullmatch(r"[a-z0-9_]+", c) for c in changes.columns)  # columns in words
    assert not changes["start moved (min)"].isna().any()  # blank, not None, where no start moved


def test_alternatives_chart_titles_are_words():
    import pandas as pd

    from dashboard.charts import alternatives_bars

    table = pd.DataFrame({"alternative": ["utilization-first", "balanced"], "utilization": [0.8, 0.7],
                          "expected_overtime_minutes": [40.0, 20.0], "n_deferred": [1, 2]})
    titles = [a.text for a in alternatives_bars(table).layout.annotations]
    assert titles == ["Prime-time utilization", "Expected overtime (min)", "Deferred cases"]
