"""Two coordinators overriding the same version: the second gets ConflictError and no update is lost."""
from __future__ import annotations

import threading

import pytest

from engine.governance import ConflictError, Governance, Override, read_log, verify_chain
from tests.engine.governance.conftest import COORD, COORD2, LEAD


def _two_cases(planned):
    s = planned.schedule[planned.schedule["status"] == "scheduled"]
    return s.iloc[0]["case_id"], s.iloc[1]["case_id"]


def test_second_override_on_the_same_version_conflicts(gov: Governance, hid: str, planned, hospital) -> None:
    a, b = _two_cases(planned)
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    first = gov.override(v.version_id, Override(a, "lock", "surgeon_request"), COORD)
    with pytest.raises(ConflictError) as exc:
        gov.override(v.version_id, Override(b, "defer", "patient_factor"), COORD2)  # dave still looks at version v
    msg = str(exc.value)
    assert f"version {v.version_id} was already changed by carol" in msg and f"now version {first.version_id}" in msg
    assert "Nothing was saved" in msg and exc.value.current_version == first.version_id
    # dave reloads and re-applies: both changes are in the result, nothing was lost
    second = gov.override(exc.value.current_version, Override(b, "defer", "patient_factor"), COORD2)
    s = second.schedule.set_index("case_id")
    assert s.loc[b, "status"] == "deferred" and a in set(second.locks["case_id"])
    assert len(gov.overrides(hid)) == 2
    # an approval made against the stale version conflicts too
    with pytest.raises(ConflictError, match="reload version"):
        gov.approve(v.version_id, LEAD)
    # a rejected proposal frees its parent for the next override
    gov.reject(second.version_id, LEAD, "keep the case")
    third = gov.override(first.version_id, Override(b, "lock", "equipment"), COORD2)
    assert third.parent_id == first.version_id


def test_superseded_version_cannot_be_overridden(gov: Governance, hid: str, planned, hospital) -> None:
    from engine.governance import GateResult

    a, _ = _two_cases(planned)
    v1 = gov.propose(hid, planned, COORD, hospital=hospital)
    gov.approve(v1.version_id, LEAD)
    gov.publish(v1.version_id, COORD, [GateResult("feeds", True, "ok")], hospital=hospital)
    v2 = gov.propose(hid, planned, COORD, hospital=hospital)
    gov.approve(v2.version_id, LEAD)
    gov.publish(v2.version_id, COORD, [GateResult("feeds", True, "ok")], hospital=hospital)
    with pytest.raises(ConflictError, match=f"version {v1.version_id} is now superseded by carol"):
        gov.override(v1.version_id, Override(a, "lock", "equipment"), COORD2)


def test_two_threads_override_the_same_version(gov: Governance, hid: str, planned, hospital, db_url: str) -> None:
    a, b = _two_cases(planned)
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    outcome: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def work(user, case) -> None:
        g = Governance(db_url)  # its own engine, as two dashboard sessions would have
        try:
            barrier.wait()
            outcome[user.name] = g.override(v.version_id, Override(case, "lock", "surgeon_request"), user)
        except ConflictError as exc:
            outcome[user.name] = exc
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome[user.name] = exc
        finally:
            g.close()

    threads = [threading.Thread(target=work, args=(COORD, a)), threading.Thread(target=work, args=(COORD2, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conflicts = [u for u, o in outcome.items() if isinstance(o, ConflictError)]
    wins = [u for u, o in outcome.items() if not isinstance(o, BaseException)]
    assert len(conflicts) == 1 and len(wins) == 1, outcome
    winner = outcome[wins[0]]
    hist = gov.history(hid)
    assert len(hist) == 2 and gov.version(v.version_id).successor_id == winner.version_id
    assert len(gov.overrides(hid)) == 1  # the loser wrote nothing
    loser = conflicts[0]
    retry_case = b if loser == COORD2.name else a
    user = COORD2 if loser == COORD2.name else COORD
    final = gov.override(outcome[loser].current_version, Override(retry_case, "lock", "surgeon_request"), user)
    assert set(final.locks["case_id"]) == {a, b}  # both updates present
    assert list(read_log(gov.engine, hid)["kind"]) == ["recommendation", "override", "override"]
    assert verify_chain(gov.engine, hid).ok
