"""Post-incident review: records classified as data/model/process defects, linked to existing audit
entries, audited in the same transaction; the board lists and exports incidents and drills."""
from __future__ import annotations

import json

import pytest

from engine.governance import User, append, read_log, verify_chain
from engine.pilot.incident import IncidentInput, add_incident, board, export_board, incidents

GOV = User("gina", "governance")
LEAD = User("lee", "leadership")
VIEWER = User("val", "viewer")


@pytest.fixture
def store(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    append(url, "pilot", "drill", "ops", "unauthenticated", {"fault": "stale-feed", "passed": True, "seconds": 3.5,
                                                             "report": "var/drills/x/drill-report.json"})
    append(url, "pilot", "publish_withheld", "cora", "coordinator", {"version_id": 4, "failed": ["feeds"]})
    return url


def test_input_is_checked_field_by_field() -> None:
    with pytest.raises(ValueError, match="defect_class must be one of data, model, process"):
        IncidentInput("t", "people", "d")
    with pytest.raises(ValueError, match="^title"):
        IncidentInput(" ", "data", "d")
    with pytest.raises(ValueError, match="^description"):
        IncidentInput("t", "data", "")
    with pytest.raises(ValueError, match="^occurred_on"):
        IncidentInput("t", "data", "d", occurred_on="last tuesday")
    with pytest.raises(ValueError, match="audit_entry_ids must be positive"):
        IncidentInput("t", "data", "d", (0,))
    assert IncidentInput("t", "data", "d", (2, 2, 1)).audit_entry_ids == (2, 1)


def test_add_links_existing_entries_and_is_audited(store) -> None:
    log = read_log(store, "pilot")
    ids = tuple(int(i) for i in log["entry_id"])
    rec = add_incident(store, "pilot", IncidentInput("staffing feed late", "data", "the roster export stopped", ids,
                                                     "re-ran the export", "2027-01-03"), GOV)
    assert rec["defect_class"] == "data" and rec["audit_entry_ids"] == list(ids) and rec["occurred_on"] == "2027-01-03"
    log = read_log(store, "pilot")
    last = log.iloc[-1]
    assert last["kind"] == "incident" and int(last["entry_id"]) == rec["entry_id"] and last["actor"] == "gina"
    assert last["payload"]["audit_entry_ids"] == list(ids) and last["payload"]["defect_class"] == "data"
    assert verify_chain(store, "pilot").ok
    with pytest.raises(ValueError, match="no audit entry 999"):
        add_incident(store, "pilot", IncidentInput("x", "model", "y", (ids[0], 999)), GOV)
    with pytest.raises(ValueError, match="no audit entry"):  # another hospital's chain does not hold them
        add_incident(store, "other", IncidentInput("x", "model", "y", ids[:1]), GOV)
    with pytest.raises(PermissionError):
        add_incident(store, "pilot", IncidentInput("x", "process", "y"), VIEWER)
    assert len(incidents(store, "pilot")) == 1 and len(read_log(store, "pilot")) == len(ids) + 1  # refusals wrote nothing


def test_board_lists_and_exports_incidents_with_their_entries_and_drills(store, tmp_path) -> None:
    add_incident(store, "pilot", IncidentInput("solver timed out", "process", "no optimizer plan by 18:00", (2,)), GOV)
    b = board(store, "pilot")
    assert b["n_incidents"] == 1 and b["by_class"] == {"data": 0, "model": 0, "process": 1}
    assert b["incidents"][0]["linked_entries"][0]["kind"] == "publish_withheld"
    assert b["n_drills"] == 1 and b["drills"][0]["fault"] == "stale-feed" and b["n_drills_passed"] == 1
    with pytest.raises(PermissionError):
        export_board(store, tmp_path / "b.json", "pilot", LEAD)  # leadership reads the log; the board exports it
    assert not (tmp_path / "b.json").exists()
    export_board(store, tmp_path / "b.json", "pilot", GOV)
    got = json.loads((tmp_path / "b.json").read_text())
    assert got["exported_by"] == "gina" and got["incidents"][0]["title"] == "solver timed out"
    assert got["drills"][0]["report"].endswith("drill-report.json")


def test_cli_add_list_export(pilot_folder, store, tmp_path, monkeypatch, capsys) -> None:
    from engine.cli import main

    monkeypatch.setenv("OR_API_TOKENS", "tok-g:gina:governance,tok-l:lee:leadership")
    monkeypatch.setenv("OR_TOKEN", "tok-l")
    base = ["--data", str(pilot_folder), "--db", store]
    assert main(["incident", "add", *base, "--title", "t", "--class", "data", "--description", "d", "--entries", "1,x"]) == 2
    assert "--entries" in capsys.readouterr().err
    assert main(["incident", "add", *base, "--title", "t", "--class", "data", "--description", "d", "--entries", "1,77"]) == 2
    err = capsys.readouterr().err
    assert "--entries" in err and "no audit entry 77" in err
    assert main(["incident", "add", *base, "--title", "", "--class", "data", "--description", "d"]) == 2
    assert "--title" in capsys.readouterr().err
    assert main(["incident", "add", *base, "--title", "feed late", "--class", "data", "--description", "d",
                 "--entries", "1,2"]) == 0
    assert main(["incident", "list", *base, "--json", str(tmp_path / "l.json")]) == 0
    assert json.loads((tmp_path / "l.json").read_text())["n_incidents"] == 1
    assert main(["incident", "export", *base, "--out", str(tmp_path / "e.json")]) == 2  # leadership may not export
    assert "not allowed" in capsys.readouterr().err and not (tmp_path / "e.json").exists()
    monkeypatch.setenv("OR_TOKEN", "tok-g")
    assert main(["incident", "export", *base, "--out", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["incidents"][0]["audit_entry_ids"] == [1, 2]
