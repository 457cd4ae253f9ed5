from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dashboard import charts
from engine.settings import DEFAULT_MIN_GROUP_CASES
from tests.dashboard.conftest import app


def _open():
    at = app()
    at.run()
    at.switch_page("../pages/fairness.py").run()
    assert not at.exception, at.exception
    return at


def test_fairness_page_breakdowns_flags_and_pack(shared_trained):
    at = _open()
    table = next(df.value for df in at.dataframe if "Prime-time gap (points)" in df.value.columns)
    assert abs(table["Demand share"].sum() - 1) < 0.01
    assert "Cases (n)" in table.columns  # the board sees each group's size
    assert not any("_" in str(c) for c in table.columns)  # plain words, no code names
    shortfall = next(m for m in at.metric if m.label == "Largest prime-time shortfall")
    assert not shortfall.delta  # the group name is a caption, not an arrow badge
    heat = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert "Prime-time gap (points)" in heat["x"] and not any("_" in x for x in heat["x"])
    assert all("(n=" in y for y in heat["y"])
    assert "nan" not in json.dumps(heat["text"]).lower()
    assert len(at.get("plotly_chart")) >= 2
    assert len(at.get("download_button")) == 1
    # A zero threshold flags every group (large enough to judge) short of its demand share, and the
    # drill-down lists the flagged group's cases. On the last 4 weeks of history (actual times, no solver)
    # the schedule is the same on any machine: the optimizer's plan, stopped by its time limit on a loaded
    # machine, can leave every such group at or above its share, and then there is nothing to flag.
    at.selectbox(key="fair_source").set_value("history (last 4 weeks)")
    at.number_input(key="fair_threshold").set_value(0.0).run()
    assert not at.exception, at.exception
    shown = next(df.value for df in at.dataframe if "Prime-time gap (points)" in df.value.columns)
    short = shown[(shown["Cases (n)"] >= DEFAULT_MIN_GROUP_CASES) & (shown["Prime-time gap (points)"] > 0)]
    assert len(short) >= 1
    prime_flags = [w.value for w in at.warning if "points short" in w.value]
    assert sorted(m.split(" asks for ")[0] for m in prime_flags) == sorted(short["Service line"])
    assert int(next(m.value for m in at.metric if m.label == "Flags")) >= len(short)
    behind = next(md.value for md in at.markdown if "Cases behind the flag" in md.value)
    pick = at.selectbox(key="fair_flag")
    group = pick.options[pick.index].split(": ")[0]  # "<group>: <metric>"
    drill = next(df.value for df in at.dataframe if "case_id" in df.value.columns)
    assert len(drill) >= 1 and f"({len(drill)})" in behind
    assert set(drill["service_line"]) == {group}


@pytest.mark.parametrize("source,by", [("rules-based baseline", "surgeon_id"), ("history (last 4 weeks)", "site")])
def test_sources_and_groupings(shared_trained, source, by):
    at = _open()
    at.selectbox(key="fair_source").set_value(source)
    at.selectbox(key="fair_by").set_value(by).run()
    assert not at.exception
    assert any(charts.fairness_label(by) in df.value.columns for df in at.dataframe)


def test_fairness_term_cost_shown(shared_trained):
    at = _open()
    at.number_input(key="fair_threshold").set_value(1.0).run()
    at.button(key="fair_term_button").click().run()
    assert not at.exception
    cost = next(df.value for df in at.dataframe if "max_prime_time_gap_points" in df.value.columns)
    assert len(cost) == 2
    assert any("Cost of the policy" in md.value for md in at.markdown)
    assert any("Policy in force" in md.value for md in at.markdown)


def _table_with_empty_group():
    return pd.DataFrame({
        "service_line": ["Cardiac Surgery", "Orthopedics", "Urology"],
        "demand_minutes": [200.0, 600.0, 400.0], "prime_minutes": [0.0, 500.0, 400.0],
        "overtime_burden_minutes": [0.0, 30.0, 0.0], "late_slot_share": [np.nan, 0.25, 0.0],
        "deferral_rate": [1.0, 0.1, 0.0], "demand_share": [0.2, 0.5, 0.3], "prime_time_share": [0.0, 0.55, 0.45],
        "prime_time_gap": [0.2, -0.05, -0.15], "n_cases": [1, 10, 8], "n_scheduled": [0, 9, 8],
    })


def test_heatmap_says_na_with_the_reason_and_case_counts():
    heat = charts.fairness_heatmap(_table_with_empty_group(), "service_line").data[0]
    text = np.asarray(heat.text)
    assert text[0][1] == "n/a" and "nan" not in " ".join(map(str, text.ravel())).lower()
    assert "no scheduled cases" in heat.customdata[0][1] and "1 cases booked, 0 scheduled" in heat.customdata[0][1]
    assert list(heat.x) == ["Prime-time gap (points)", "Late-slot share", "Overtime burden (min)", "Deferral rate"]
    assert heat.y[0] == "Cardiac Surgery (n=1)"
    assert text[0][0] == "+20.0"  # the gap in points, as the axis says


def test_display_table_shows_na_not_none_and_keeps_numbers():
    styler = charts.fairness_display_table(_table_with_empty_group(), "service_line")
    assert styler.data["Late-slot share"].dtype == float  # still sortable numbers
    html = styler.to_html()
    assert "n/a" in html and "None" not in html and "nan" not in html.lower()
    assert list(styler.data.columns)[:3] == ["Service line", "Cases (n)", "Scheduled (n)"]


def test_kpi_and_addon_titles_are_plain_words():
    k = pd.DataFrame({"period": pd.date_range("2027-01-04", periods=3, freq="W"), "addon_cases": [3, 4, 5]})
    assert charts.kpi_trend(k, "addon_cases").layout.title.text == "Add-on cases"


@pytest.mark.slow
def test_policy_shown_and_changed_only_by_the_board(small_folder, small_models, tmp_path, monkeypatch):
    """The Fairness page states the policy in force and its source; the governance board (and no one
    else) changes it, audited, and the folder's settings.toml then carries it."""
    import shutil

    from engine.governance import read_log
    from engine.hospital import load_hospital
    from tests.dashboard.conftest import copy_models, sign_in_as, use_hospital

    folder = tmp_path / small_folder.name
    shutil.copytree(small_folder, folder)  # the session's folder stays as it is
    copy_models(small_models, tmp_path)  # the session's model of this same folder
    use_hospital(monkeypatch, folder, tmp_path)
    at = _open()
    assert any("Policy in force" in md.value and "shipped default" in md.value and "5 points" in md.value
               for md in at.markdown)
    submit = next(b for b in at.button if b.label == "Change the policy")
    assert submit.disabled  # the demo's first role is not the board
    sign_in_as(at, "governance")
    at.number_input(key="fair_policy_gap").set_value(3.0)
    at.text_input(key="fair_policy_note").input("board meeting")
    next(b for b in at.button if b.label == "Change the policy").click().run()
    assert not at.exception, at.exception
    assert load_hospital(folder).hospital.settings.fairness.max_prime_time_gap_points == 3.0
    log = read_log(f"sqlite:///{tmp_path / 'store.sqlite'}", folder.name)
    assert "set_fairness_policy" in set(log["kind"])
