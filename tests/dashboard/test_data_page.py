from __future__ import annotations

import io
import re

import pandas as pd
import pytest

from tests.dashboard.conftest import REPO, app
from tests.foreign_exports import ISO_MAPPING, make_export

SAMPLE = REPO / "data" / "samples" / "or_utilization_export.csv"


def roles_with_import(tmp_path, monkeypatch):
    """data/roles.toml with the coordinator granted import_data (whether or not it already is)."""
    text = (REPO / "data" / "roles.toml").read_text()
    if not re.search(r"^import_data\s*=", text, re.M):
        text = text.replace("[actions]\n", '[actions]\nimport_data = "import or replace a hospital\'s data"\n', 1)
        text = re.sub(r'(\[roles\.coordinator\][^\[]*?can = \[)', r'\1"import_data", ', text, count=1, flags=re.S)
    path = tmp_path / "roles.toml"
    path.write_text(text)
    monkeypatch.setenv("OR_ROLES_FILE", str(path))
    return path


@pytest.fixture
def env(mini_env, monkeypatch):
    roles_with_import(mini_env, monkeypatch)
    return mini_env


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
    before = _weekly_total(at)
    at.multiselect(key="data_statuses").set_value(["cancelled"]).run()
    assert not at.exception
    after = _weekly_total(at)
    # The chart itself changed: only cancelled cases are stacked now, fewer than completed + booked.
    assert 0 < after < before


def _weekly_total(at) -> float:
    """Sum of the weekly-cases chart's bars (plotly may ship the numbers as typed base64 arrays)."""
    import base64
    import json

    import numpy as np

    spec = json.loads(next(c for c in at.get("plotly_chart") if "week starting" in c.proto.spec).proto.spec)
    total = 0.0
    for trace in spec["data"]:
        y = trace["y"]
        if isinstance(y, dict):
            y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"]))
        total += float(np.sum(y))
    return total


def test_upload_with_shipped_mapping_imports_and_switches(env):
    mini_env = env
    at = app()
    at.run()
    at.file_uploader(key="import_source").upload(SAMPLE.name, SAMPLE.read_bytes(), "text/csv")
    at.text_input(key="import_name").input("uploaded-test").run()
    at.button(key="import_submit").click().run()
    assert not at.exception
    assert any("Imported `uploaded-test`" in s.value for s in at.success), [e.value for e in at.error]
    at.button(key="switch_imported").click().run()
    assert at.session_state["hospital_id"] == "uploaded-test"
    assert int(_labels(at)["Cases"].replace(",", "")) > 100
    assert (mini_env / "imports" / "uploaded-test" / "cases.csv").exists()


def test_upload_of_bad_file_shows_errors_inline_and_stores_nothing(env):
    at = app()
    at.run()
    bad = b"Encounter ID,Date\n1,01/04/2027\n"
    at.file_uploader(key="import_source").upload("bad.csv", bad, "text/csv")
    at.text_input(key="import_name").input("bad-import").run()
    at.button(key="import_submit").click().run()
    assert not at.exception
    assert any("Import rejected" in e.value for e in at.error)
    errors = [df.value for df in at.dataframe if "problem" in df.value.columns]
    assert errors and errors[0]["file"].str.len().gt(0).all()
    assert "bad-import" not in at.selectbox(key="hospital_id").options


def _csv(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue().encode()


def test_uploaded_mapping_is_used_without_changing_the_select(env):
    """Issue 14: an uploaded mapping was ignored unless the Mapping select was changed too."""
    at = app()
    at.run()
    at.file_uploader(key="import_source").upload("theatre.csv", _csv(make_export("iso", weeks=3)), "text/csv")
    at.file_uploader(key="import_mapping_file").upload("theatre.yaml", ISO_MAPPING.encode(), "application/x-yaml")
    at.text_input(key="import_name").input("theatre").run()
    assert at.selectbox(key="import_mapping_choice").value == "or_utilization_export"  # left as it was
    at.button(key="import_submit").click().run()
    assert not at.exception
    assert any("Imported `theatre`" in s.value for s in at.success), [e.value for e in at.error]


def test_import_errors_name_the_users_files_and_rows(env):
    """Issue 14: errors showed temporary paths and "row None"."""
    at = app()
    at.run()
    df = make_export("iso", weeks=2)
    df.loc[3, "date_of_surgery"] = "not a date"
    df.loc[list(range(5, 20)), "outcome"] = "lost"  # 16 bad rows of ~150: over 5%, so rejected
    at.file_uploader(key="import_source").upload("theatre.csv", _csv(df), "text/csv")
    at.file_uploader(key="import_mapping_file").upload("theatre.yaml", ISO_MAPPING.encode(), "application/x-yaml")
    at.text_input(key="import_name").input("theatre").run()
    at.button(key="import_submit").click().run()
    assert any("Import rejected" in e.value for e in at.error)
    table = next(df.value for df in at.dataframe if "where" in df.value.columns)
    cells = " ".join(table.astype(str).to_numpy().ravel())
    assert "/tmp" not in cells and "None" not in cells and "nan" not in cells
    assert set(table["file"]) == {"theatre.csv"}
    assert "whole file" in set(table["where"])  # the over-threshold summary
    assert "row 4 (line 5)" in set(table["where"])  # the bad date, in the user's numbering


def test_import_over_a_stored_hospital_needs_confirmation_and_is_restorable(env):
    """Issue 14: importing under an existing name replaced it with no confirmation."""
    at = app()
    at.run()
    assert at.session_state["hospital_id"] == "mini"
    before = _labels(at)["Cases"]
    at.file_uploader(key="import_source").upload(SAMPLE.name, SAMPLE.read_bytes(), "text/csv")
    at.text_input(key="import_name").input("mini").run()
    assert any("already stored" in w.value for w in at.warning)
    at.button(key="import_submit").click().run()  # not confirmed
    assert any("Confirm that the import replaces it" in e.value for e in at.error)
    assert _labels(at)["Cases"] == before  # the mini hospital is untouched
    at.checkbox(key="import_replace").check().run()
    at.button(key="import_submit").click().run()
    assert any("Imported `mini`" in s.value for s in at.success), [e.value for e in at.error]
    at.run()
    assert int(_labels(at)["Cases"].replace(",", "")) > 100
    versions = next(df.value for df in at.dataframe if "current" in df.value.columns)
    assert versions[["version", "current"]].values.tolist() == [[2, True], [1, False]]
    at.checkbox(key="restore_confirm").check().run()
    at.button(key="restore_button").click().run()
    assert not at.exception
    assert _labels(at)["Cases"] == before  # the previous data is back
    from engine.governance import read_log
    from engine.store import Store

    log = read_log(Store(f"sqlite:///{env / 'store.sqlite'}"), "mini")
    events = [p["event"] for p in log["payload"]] if "payload" in log else []
    assert events[-2:] == ["hospital_replaced", "hospital_restored"], log.to_dict("records")


def test_a_viewer_cannot_import(env):
    at = app()
    at.run()
    at.selectbox(key="demo_role").set_value("viewer").run()
    assert at.button(key="import_submit").disabled
    assert any("not available to you" in i.value for i in at.info)


def test_upload_review_suggested_mapping_edit_and_import(env):
    """Issue 17: upload an export no mapping exists for, review the suggestion, edit it, import."""
    at = app()
    at.run()
    at.file_uploader(key="import_source").upload("theatre.csv", _csv(make_export("euro", weeks=3)), "text/csv")
    at.selectbox(key="import_mapping_choice").select_index(1).run()  # the suggestion
    assert "suggest" in at.selectbox(key="import_mapping_choice").value
    area = at.text_area[0]
    assert "Fallnummer" in area.value and "CHECK" in area.value
    area.set_value(area.value.replace('hospital_name: "theatre"', 'hospital_name: "Klinikum Nord"')).run()
    at.text_input(key="import_name").input("nord").run()
    at.button(key="import_submit").click().run()
    assert not at.exception
    assert any("Imported `nord`" in s.value for s in at.success), [e.value for e in at.error]
    at.button(key="switch_imported").click().run()
    assert any("Klinikum Nord" in c.value for c in at.caption)  # the edit was used


def test_inferred_blocks_and_staffing_are_shown_for_review(env):
    at = app()
    at.run()
    at.file_uploader(key="import_source").upload("theatre.csv", _csv(make_export("iso", weeks=6)), "text/csv")
    at.file_uploader(key="import_mapping_file").upload("theatre.yaml", ISO_MAPPING.encode(), "application/x-yaml")
    at.text_input(key="import_name").input("theatre").run()
    at.button(key="import_submit").click().run()
    at.button(key="switch_imported").click().run()
    assert not at.exception
    assert any("inferred from the case history" in i.value for i in at.info)
    assert any(s.value == "blocks.csv (inferred)" for s in at.subheader)
    frames = [df.value for df in at.dataframe]
    assert any("staffed_rooms" in f.columns and f["staffed_rooms"].max() == 4 for f in frames)
