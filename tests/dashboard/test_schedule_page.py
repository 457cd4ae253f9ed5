from __future__ import annotations

import json
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


def verdict_first(at) -> str:
    """The verdict sentence, asserted to open the page: before any widget of the page's form."""
    order = [n for n in at.main if n.type in ("alert", "success", "warning", "info", "date_input", "selectbox")]
    first = next(i for i, n in enumerate(order) if getattr(n, "value", None) and "Against your block rules" in str(n.value))
    assert all(n.type not in ("date_input", "selectbox") for n in order[:first]), [n.type for n in order[:first]]
    return order[first].value


def decision_table(at):
    return next(df.value for df in at.dataframe if "Measure" in df.value.columns and "Optimized is" in df.value.columns)


def _plain(v):
    """Plotly's JSON keeps numeric arrays as {"dtype", "bdata"} (base64); tests compare plain lists."""
    if isinstance(v, dict) and set(v) >= {"dtype", "bdata"}:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def chart_spec(at, key):
    return _plain(json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key) or key in c.proto.id).proto.spec))


def check_paired_intervals_and_axes(at, chart_key):
    """The decision table's intervals hold their difference; minutes and utilization points are on
    separate axes of the chart, and the verdict's case count follows the table."""
    t = decision_table(at).set_index("Measure")
    assert {"P95 overtime (minutes)", "mean overtime (minutes)", "mean PACU hold (minutes)", "cases scheduled (cases)",
            "deferrals (cases)", "prime-time utilization (points)", "rooms past close (rooms)"} <= set(t.index)
    assert (t["95% interval low"] <= t["Difference"] + 1e-6).all() and (t["Difference"] <= t["95% interval high"] + 1e-6).all()
    spec = chart_spec(at, chart_key)
    axis_of = {}
    for tr in spec["data"]:
        for y in tr["y"]:
            axis_of[y] = tr.get("xaxis", "x")
    minutes = {axis_of[m] for m in ("P95 overtime", "mean overtime", "mean PACU hold")}
    assert len(minutes) == 1 and axis_of["prime-time utilization"] not in minutes
    assert axis_of["cases scheduled"] not in minutes | {axis_of["prime-time utilization"]}
    return t


def test_schedule_page_without_model_plans_on_booked_minutes_and_says_so(small_env):
    at = _open_schedule()
    assert not at.exception
    assert any("uses booked minutes" in i.value and "Train one on the Forecasts page" in i.value for i in at.info)
    assert int(_metric(at, "Scheduled")) > 0


def test_schedule_page_plans_and_shows_gantt_pacu_deferred_exports(shared_trained):
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


def test_schedule_page_opens_with_the_verdict_against_the_rules(shared_trained):
    """The verdict compares the page's own plan with the rules plan of the same days: the table's
    cases scheduled are the page's Scheduled metric and, after switching to the rules, the rules'."""
    at = _open_schedule()
    verdict = verdict_first(at)
    t = check_paired_intervals_and_axes(at, "decision_chart")
    opt, rules = int(t.at["cases scheduled (cases)", "Optimized"]), int(t.at["cases scheduled (cases)", "Rules"])
    assert opt == int(_metric(at, "Scheduled"))
    n = opt - rules
    assert (f"{abs(n)} {'more' if n > 0 else 'fewer'} case" in verdict) if n else ("same number of cases" in verdict)
    if (t["Optimized is"].isin(["worse"]) & t.index.isin(["P95 overtime (minutes)", "mean PACU hold (minutes)",
                                                          "prime-time utilization (points)"])).any():
        assert "worse" in verdict or ", but " in verdict
    # The service levels in force and the weights that follow from them.
    levels = next(df.value for df in at.dataframe if "Item" in df.value.columns).set_index("Item")
    assert levels.at["a room finishes by close +", "Value"].endswith(" min")
    assert float(levels.at["cost of a minute past the level", "Value"]) > 0
    # Switching to the rules: the page says there is nothing to compare, and shows the rules' count.
    at.selectbox(key="plan_solver").set_value("rules")
    at.get("form_submit_button")[0].click().run()
    assert not at.exception
    assert _metric(at, "Solver") == "rules"
    assert int(_metric(at, "Scheduled")) == rules
    assert any("block rules schedule itself" in i.value for i in at.info)
    assert not any("Against your block rules" in str(n.value) for n in [*at.success, *at.warning])


def test_case_details_follow_the_selection(shared_trained):
    at = _open_schedule()
    sel = at.selectbox(key="plan_case")
    first = [m.value for m in at.markdown if m.value.startswith("**C")]
    # Options read "case id · start room · service line · surgeon".
    assert all(" · surgeon " in o for o in sel.options)
    at.selectbox(key="plan_case").set_value(sel.options[-1].split(" · ")[0]).run()
    second = [m.value for m in at.markdown if m.value.startswith("**C")]
    assert first and second and first != second


def test_alternatives_side_by_side(shared_trained):
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


def test_frontier_on_request_holds_the_rules_point_and_this_plan(shared_trained):
    at = _open_schedule()
    assert not any("schedule_frontier" in c.proto.id for c in at.get("plotly_chart"))  # planned only on request
    at.button(key="frontier_button").click().run()
    assert not at.exception
    spec = chart_spec(at, "schedule_frontier")
    points = {tr["name"]: tr for tr in spec["data"] if tr.get("name")}
    assert {"rules", "current plan", "other trade-off"} <= set(points)
    t = decision_table(at).set_index("Measure")
    # The rules point and this plan sit at the verdict's own numbers (same plans, same random days).
    assert points["rules"]["y"] == [int(t.at["cases scheduled (cases)", "Rules"])]
    assert points["current plan"]["y"] == [int(t.at["cases scheduled (cases)", "Optimized"])]
    assert round(points["rules"]["x"][0], 1) == t.at["P95 overtime (minutes)", "Rules"]
