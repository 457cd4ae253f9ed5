from __future__ import annotations


from tests.dashboard.conftest import REPO, app

SAMPLE = REPO / "data" / "samples" / "or_utilization_export.csv"


def _labels(at):
    return {m.label: m.value for m in at.metric}


def test_data_page_shows_hospital_freshness_quality_and_charts(mini_env):
    at = app()
    at.run()
    assert not at.exception
    assert at.title[0].value == "Data"
    assert _labels(at)["Rooms"] == "3"
    assert any("Mini Test Hospital" in c.value for c in at.caption)
    # Freshness table, quality summary, and the two charts.
    frames = [df.value for df in at.dataframe]
    assert any("feed" in f.columns and set(f["status"]) <= {"ok", "stale"} for f in frames)
    assert any("quarantined" in f.columns for f in frames)
    assert len(at.get("plotly_chart")) == 2


def test_status_filter_changes_weekly_chart(mini_env):
    at = app()
    at.run()
    ms = at.multiselect(key="data_statuses")
    ms.set_value(["cancelled"]).run()
    assert not at.exception
    assert at.multiselect(key="data_statuses").value == ["cancelled"]


def test_upload_with_shipped_mapping_imports_and_switches(mini_env):
    at = app()
    at.run()
    at.file_uploader(key="import_source").upload(SAMPLE.name, SAMPLE.read_bytes(), "text/csv")
    at.text_input(key="import_name").input("uploaded-test")
    at.get("form_submit_button")[0].click().run()
    assert not at.exception
    assert any("Imported `uploaded-test`" in s.value for s in at.success), [e.value for e in at.error]
    at.button(key="switch_imported").click().run()
    assert at.session_state["hospital_id"] == "uploaded-test"
    assert int(_labels(at)["Cases"].replace(",", "")) > 100
    assert (mini_env / "imports" / "uploaded-test" / "cases.csv").exists()


def test_upload_of_bad_file_shows_errors_inline_and_stores_nothing(mini_env):
    at = app()
    at.run()
    bad = b"Encounter ID,Date\n1,01/04/2027\n"
    at.file_uploader(key="import_source").upload("bad.csv", bad, "text/csv")
    at.text_input(key="import_name").input("bad-import")
    at.get("form_submit_button")[0].click().run()
    assert not at.exception
    assert any("Import rejected" in e.value for e in at.error)
    errors = [df.value for df in at.dataframe if "problem" in df.value.columns]
    assert errors and errors[0]["file"].str.len().gt(0).all()
    assert "bad-import" not in at.selectbox(key="hospital_id").options
