"""HL7 v2 SIU in: S15/S26 cancel, S12 book; ACKs parsed back with hl7apy; bad messages AE/AR naming the field."""
from __future__ import annotations

from hl7apy.parser import parse_message

from engine.governance import read_log
from tests.engine.api.conftest import auth, plan_and_publish

H = {"Content-Type": "x-application/hl7-v2+er7"}


def siu(trigger: str, control: str, case_id: str, extra: list[str] | None = None, when: str = "202701040700",
        duration: str = "60") -> str:
    segs = [f"MSH|^~\\&|EPIC|MAIN|ORALLOC|MAIN|{when}||SIU^{trigger}^SIU_S12|{control}|P|2.5",
            f"SCH|{case_id}|{case_id}|||||BOOK^Booking||{duration}|min|^^{duration}^{when}00"]
    return "\r".join(segs + (extra or [])) + "\r"


def post(client, text: str, who: str = "coordinator"):
    return client.post("/api/v1/hl7", content=text.encode(), headers={**H, **auth(who)})


def msa(r) -> tuple[str, str, str]:
    m = parse_message(r.text.replace("\n", "\r"), find_groups=False)
    err = m.err.err_2.to_er7() if "ERR" in [s.name for s in m.children] else ""
    return m.msa.msa_1.to_er7(), m.msa.msa_3.to_er7(), err


def test_cancel_message_replans_once_and_is_acknowledged(client, service) -> None:
    vid = plan_and_publish(client)
    sched = service.gov.version(vid).schedule
    gone = sched[sched["status"] == "scheduled"].sort_values("start").iloc[-1]["case_id"]
    r = post(client, siu("S15", "MSG001", gone))
    assert r.status_code == 200 and r.headers["content-type"].startswith("x-application/hl7-v2+er7")
    code, text, _ = msa(r)
    assert code == "AA" and f"case {gone} was cancelled" in text, text
    n = (read_log(service.gov.engine, service.hospital_id)["kind"] == "replan").sum()
    code2, text2, _ = msa(post(client, siu("S15", "MSG001", gone)))
    assert code2 == "AA" and text2.startswith("already applied")
    assert (read_log(service.gov.engine, service.hospital_id)["kind"] == "replan").sum() == n == 1


def test_booking_message_adds_the_case_to_the_day(client, service) -> None:
    plan_and_publish(client)
    r = post(client, siu("S12", "MSG100", "NEW1", ["AIS|1||47562", "AIL|1||OR3", "AIP|1||S3^Surgeon"], when="202701041000",
                         duration="45"))
    code, text, _ = msa(r)
    assert code == "AA", text
    latest = service.gov.history(service.hospital_id)["version_id"].max()
    s = service.gov.version(int(latest)).schedule
    assert "NEW1" in set(s["case_id"]) and s.set_index("case_id").loc["NEW1", "service_line"] == "General Surgery"


def test_bad_messages_get_ae_or_ar_naming_the_field(client) -> None:
    plan_and_publish(client)
    bad = [
        ("PID|1||123", "AR", "MSH^1"),
        ("MSH|bad", "AR", "MSH^1"),
        ("MSH|^~\\&|EPIC|MAIN|ORALLOC|MAIN|202701040700||ADT^A01|M1|P|2.5\rPID|1||123\r", "AR", "MSH^1^9"),
        (siu("S17", "M2", "C0041"), "AR", "MSH^1^9"),
        (siu("S15", "", "C0041"), "AR", "MSH^1^10"),
        (siu("S15", "M3", ""), "AE", "SCH^1^2"),
        (siu("S15", "M4", "C9999"), "AE", "SCH^1^2"),
        (siu("S15", "M5", "C0041", when="2027-01-04"), "AE", "MSH^1^7"),
        (siu("S12", "M6", "NEW2", ["AIP|1||S9"]), "AE", "AIP^1^3"),
        (siu("S12", "M7", "NEW3", ["AIP|1||S3"], duration="long"), "AE", "SCH^1^9"),
    ]
    first = _first_case(client)
    bad += [
        (siu("S13", "M10", first).replace("^^60^20270104070000", ""), "AE", "SCH^1^11"),  # no new start
        (siu("S13", "M11", first).replace("^^60^20270104070000", "^^60^202701041500"), "AE", "SCH^1^11"),  # same day
        (siu("S13", "M12", first).replace("^^60^20270104070000", "^^60^2027-01-06"), "AE", "SCH^1^11"),  # bad time
        (siu("S14", "M13", first, duration="1"), "AE", "SCH^1^9"),  # not longer than its forecast
        (siu("S14", "M14", first, duration=""), "AE", "SCH^1^9"),  # no duration
        (siu("S14", "M15", "C9999", duration="600"), "AE", "SCH^1^2"),  # unknown case
    ]
    before = client.get("/api/v1/schedule", params={"date": "2027-01-04"}, headers=auth("coordinator")).json()
    for text, want, where in bad:
        r = post(client, text)
        assert r.status_code == 200, text
        code, msg, err = msa(r)
        assert (code, err) == (want, where), (text, code, err, msg)
    after = client.get("/api/v1/schedule", params={"date": "2027-01-04"}, headers=auth("coordinator")).json()
    assert after == before  # nothing changed
    assert post(client, siu("S15", "M8", "C0041"), who="viewer").status_code == 403
    assert client.post("/api/v1/hl7", content=siu("S15", "M9", "C0041").encode(), headers=H).status_code == 401


def _first_case(client) -> str:
    s = client.get("/api/v1/schedule", params={"date": "2027-01-04"}, headers=auth("coordinator")).json()["schedule"]
    return sorted((r for r in s if r["status"] == "scheduled"), key=lambda r: r["start"])[0]["case_id"]


def test_reschedule_to_another_day_takes_the_case_off_the_day(client, service) -> None:
    plan_and_publish(client)
    cid = _first_case(client)
    r = post(client, siu("S13", "RS1", cid).replace("^^60^20270104070000", "^^60^202701061000"))
    code, text, _ = msa(r)
    assert code == "AA" and f"case {cid} was rescheduled to 2027-01-06 10:00" in text, text
    latest = service.gov.version(int(service.gov.history(service.hospital_id)["version_id"].max()))
    assert latest.status == "proposed" and cid not in set(latest.schedule["case_id"])
    log = read_log(service.gov.engine, service.hospital_id)
    assert "rescheduled to 2027-01-06" in log[log["kind"] == "replan"].astype(str).to_string()


def test_modification_booked_longer_pushes_the_room(client, service) -> None:
    vid = plan_and_publish(client)
    sched = service.gov.version(vid).schedule
    on = sched[sched["status"] == "scheduled"].sort_values("start")
    room = on.groupby("room_id").size().idxmax()  # a room with a case behind the first one
    cid = on[on["room_id"] == room].iloc[0]["case_id"]
    r = post(client, siu("S14", "MOD1", cid, duration="6", when="202701040600").replace("|6|min|", "|6|h|"))
    code, text, _ = msa(r)
    assert code == "AA", text
    new = service.gov.version(int(service.gov.history(service.hospital_id)["version_id"].max())).schedule.set_index("case_id")
    behind = on[(on["room_id"] == room)].iloc[1]["case_id"]
    old = on.set_index("case_id")
    assert new.loc[cid, "end_p50"] > old.loc[cid, "end_p50"]  # re-planned at the booked 6 h
    assert new.loc[behind, "status"] == "deferred" or new.loc[behind, "start"] > old.loc[behind, "start"] \
        or new.loc[behind, "room_id"] != room


def test_drop_folder_handles_messages_like_the_api(service, client, tmp_path, monkeypatch) -> None:
    from engine.api.app import _event_applier
    from engine.api.hl7 import DropFolder
    from engine.governance import User

    vid = plan_and_publish(client)
    sched = service.gov.version(vid).schedule
    gone = sched[sched["status"] == "scheduled"].sort_values("start").iloc[-1]["case_id"]
    drop = tmp_path / "drop"
    d = DropFolder(drop, service, _event_applier(service), User("carol", "coordinator"))
    (drop / "a.hl7").write_text(siu("S15", "DROP1", gone).replace("\r", "\n"))
    (drop / "b.hl7").write_text(siu("S15", "DROP2", "C9999"))
    got = dict(d.poll_once())
    assert got == {"a.hl7": "AA", "b.hl7": "AE"}
    assert (drop / "done" / "a.hl7").exists() and (drop / "error" / "b.hl7").exists() and not list(drop.glob("*.hl7"))
    m = parse_message((drop / "ack" / "a.ack").read_bytes().decode(), find_groups=False)
    assert m.msa.msa_1.to_er7() == "AA" and m.msa.msa_2.to_er7() == "DROP1"
    assert d.poll_once() == []
    import pytest

    with pytest.raises(PermissionError, match="may not re-plan"):
        DropFolder(drop, service, _event_applier(service), User("vic", "viewer"))
