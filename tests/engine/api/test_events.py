"""case_started and staffing_changed: validated (422 naming the field, nothing changed), re-planned, audited;
a staffing change stays in force for the day's later events and plans."""
from __future__ import annotations

import pandas as pd

from engine.governance import read_log
from tests.engine.api.conftest import DAY, auth, plan_and_publish, wait_job


def _post(client, body: dict, who: str = "coordinator"):
    return client.post("/api/v1/events", json=body, headers=auth(who))


def _scheduled(service, vid: int) -> pd.DataFrame:
    s = service.gov.version(vid).schedule
    return s[s["status"] == "scheduled"].sort_values("start")


def _n_replans(service) -> int:
    return int((read_log(service.gov.engine, service.hospital_id)["kind"] == "replan").sum())


def test_late_start_pushes_its_room_and_says_why(client, service) -> None:
    vid = plan_and_publish(client)
    on = _scheduled(service, vid)
    room = on.groupby("room_id").size().idxmax()
    first, behind = on[on["room_id"] == room].iloc[0], on[on["room_id"] == room].iloc[1]
    planned = pd.Timestamp(first["start"])
    started = planned + pd.Timedelta(minutes=90)
    r = _post(client, {"type": "case_started", "case_id": first["case_id"], "started_at": started.isoformat(),
                       "at": (started + pd.Timedelta(minutes=2)).isoformat(), "idempotency_key": "st-1"})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["event_type"] == "case_started" and a["minutes_late"] == 90.0
    assert a["event"] == f"case {first['case_id']} started at {started:%H:%M} in {room} (90 min late)"
    new = service.gov.version(a["version_id"]).schedule.set_index("case_id")
    # its P50 end is the real start + its P50 (the booked minutes here): 90 min later than planned
    assert pd.Timestamp(new.loc[first["case_id"], "end_p50"]) - pd.Timestamp(first["end_p50"]) == pd.Timedelta(minutes=90)
    moved = {c["case_id"]: c for c in a["changes"]}
    assert behind["case_id"] in moved and "started at" in moved[behind["case_id"]]["why"]
    log = read_log(service.gov.engine, service.hospital_id)
    assert "90 min late" in log[log["kind"] == "replan"].astype(str).to_string()


def test_case_started_bad_fields_change_nothing(client, service) -> None:
    vid = plan_and_publish(client)
    on = _scheduled(service, vid)
    cid, room = on.iloc[0]["case_id"], on.iloc[0]["room_id"]
    other_room = next(r for r in service.hospital.rooms["room_id"] if r != room)
    n, versions = _n_replans(service), len(service.gov.history(service.hospital_id))
    bad = [
        ({"case_id": "C9999"}, "case_id"),
        ({"case_id": cid, "started_at": f"{DAY}T11:00", "at": f"{DAY}T10:00"}, "started_at"),  # after the event
        ({"case_id": cid, "started_at": "2027-01-03T08:00", "at": f"{DAY}T10:00"}, "started_at"),  # another day
        ({"case_id": cid, "room_id": other_room, "at": f"{DAY}T10:00"}, "room_id"),
    ]
    for i, (fields, where) in enumerate(bad):
        r = _post(client, {"type": "case_started", "idempotency_key": f"bad-{i}", **fields})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == where, (fields, r.text)
    assert _n_replans(service) == n and len(service.gov.history(service.hospital_id)) == versions


def test_staffing_cut_replans_with_fewer_rooms_and_stays_for_the_day(client, service) -> None:
    vid = plan_and_publish(client)
    on = _scheduled(service, vid)
    used = on["room_id"].nunique()
    assert used >= 2, "the fixture day must use two rooms or more"
    r = _post(client, {"type": "staffing_changed", "staffed_rooms": used - 1, "at": f"{DAY}T06:30",
                       "idempotency_key": "staff-1"})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["event_type"] == "staffing_changed" and a["staffing"]["staffed_rooms"] == used - 1
    assert f"staffed rooms {a['staffing_before']['staffed_rooms']} -> {used - 1}" in a["event"]
    new = _scheduled(service, a["version_id"])
    assert new["room_id"].nunique() <= used - 1 and a["n_changes"] > 0
    # a later event of the day keeps the cut (the staffing is not read back from staffing.csv)
    cid = new.iloc[-1]["case_id"]
    r2 = _post(client, {"type": "case_running_long", "case_id": cid, "extra_minutes": 5, "at": f"{DAY}T06:40",
                        "idempotency_key": "staff-2"})
    assert r2.status_code == 200, r2.text
    assert _scheduled(service, r2.json()["version_id"])["room_id"].nunique() <= used - 1
    # and so does a new plan job of that day
    j = client.post("/api/v1/plan", json={"date": DAY, "days": 1, "solver": "rules"}, headers=auth("coordinator"))
    res = wait_job(client, j.json()["id"])
    assert res["status"] == "done", res
    assert _scheduled(service, res["result"]["version_id"])["room_id"].nunique() <= used - 1


def test_staffing_below_the_rooms_already_running_is_refused(client, service) -> None:
    vid = plan_and_publish(client)
    on = _scheduled(service, vid)
    late = pd.Timestamp(on["start"].max()) + pd.Timedelta(minutes=1)  # every case has started by then
    busy = on["room_id"].nunique()
    n = _n_replans(service)
    r = _post(client, {"type": "staffing_changed", "anesthesia_teams": busy - 1, "at": late.isoformat(),
                       "idempotency_key": "staff-x"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "anesthesia_teams", r.text
    assert "room_down" in r.text and _n_replans(service) == n
