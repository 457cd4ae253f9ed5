"""Calendar feeds of the published schedule (parsed back with icalendar)."""
from __future__ import annotations

from icalendar import Calendar

from tests.engine.api.conftest import DAY, auth, plan_and_publish


def test_surgeon_and_room_feeds_hold_the_published_cases_without_patient_details(client, service) -> None:
    r = client.get("/ical/surgeon/S1.ics", params={"date": DAY}, headers=auth("viewer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/calendar")
    assert Calendar.from_ical(r.content).walk("VEVENT") == []  # nothing published yet: an empty calendar
    vid = plan_and_publish(client)
    sched = service.gov.version(vid).schedule
    on = sched[sched["status"] == "scheduled"]
    for kind, col in (("surgeon", "surgeon_id"), ("room", "room_id")):
        for ident in sorted(set(on[col])):
            r = client.get(f"/ical/{kind}/{ident}.ics", params={"date": DAY, "days": 2}, headers=auth("viewer"))
            assert r.status_code == 200
            events = Calendar.from_ical(r.content).walk("VEVENT")
            want = on[on[col] == ident]
            assert sorted(str(e["uid"]).split("@")[0] for e in events) == sorted(want["case_id"])
            for e in events:
                row = want[want["case_id"] == str(e["uid"]).split("@")[0]].iloc[0]
                assert e.decoded("dtstart").strftime("%Y-%m-%dT%H:%M") == str(row["start"])[:16].replace(" ", "T")
                assert e.decoded("dtend") > e.decoded("dtstart")
    text = client.get("/ical/room/OR2.ics", params={"date": DAY, "days": 2}, headers=auth("coordinator")).text
    names = set(service.hospital.cases["procedure_name"].dropna())
    assert not any(n in text for n in names) and "patient" not in text.lower() and "ASA" not in text


def test_feed_errors(client) -> None:
    assert client.get("/ical/room/OR1.ics").status_code == 401
    assert client.get("/ical/room/OR9.ics", headers=auth("viewer")).status_code == 404
    assert client.get("/ical/surgeon/S9.ics", headers=auth("viewer")).status_code == 404
    r = client.get("/ical/room/OR1.ics", params={"date": "2027-1-4"}, headers=auth("viewer"))
    assert r.status_code == 422 and "date" in r.text
