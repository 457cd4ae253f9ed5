"""The hash-chained audit log: intact chains verify; tampering, deletion and truncation are named."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.governance import append, chain_heads, export_jsonl, read_log, verify_chain, verify_jsonl
from engine.governance.audit import GENESIS, entry_hash
from engine.governance.audit_store import tables
from engine.governance.workflow import Governance


def _fill(gov: Governance, hid: str, n: int = 5) -> list[int]:
    return [append(gov.engine, hid, "note", "carol", "coordinator", {"i": i, "text": f"entry {i}", "x": [1.5, None]}).entry_id
            for i in range(n)]


def test_chain_links_and_verifies(gov: Governance, hid: str) -> None:
    ids = _fill(gov, hid)
    log = read_log(gov.engine, hid)
    assert list(log["seq"]) == [1, 2, 3, 4, 5] and list(log["entry_id"]) == ids
    assert log.iloc[0]["prev_hash"] == GENESIS
    assert all(log["prev_hash"].iloc[1:].to_numpy() == log["entry_hash"].iloc[:-1].to_numpy())
    r0 = log.iloc[0]
    assert r0["entry_hash"] == entry_hash(hid, 1, r0["at"], "note", "carol", "coordinator", None, r0["payload"], GENESIS)
    res = verify_chain(gov.engine, hid)
    assert res.ok and res.n_entries == 5 and res.first_bad is None and "intact" in res.message
    heads = chain_heads(gov.engine).set_index("hospital_id")
    assert heads.loc[hid, "seq"] == 5 and heads.loc[hid, "entry_hash"] == log.iloc[-1]["entry_hash"]
    with pytest.raises(ValueError, match="kind must be one of"):
        append(gov.engine, hid, "whatever", "carol", "coordinator", {})
    # verify_chain takes a URL as the CLI passes it
    assert verify_chain(gov.engine.url.render_as_string(hide_password=False), hid).ok


def test_tampered_payload_is_named(gov: Governance, hid: str) -> None:
    ids = _fill(gov, hid)
    t = tables()["gov_audit_log"]
    with gov.engine.begin() as conn:  # direct SQL, as an intruder would
        conn.execute(t.update().where(t.c.entry_id == ids[2]).values(payload_json=json.dumps({"i": 99, "text": "entry 2", "x": [1.5, None]})))
    res = verify_chain(gov.engine, hid)
    assert not res.ok and res.first_bad == ids[2] and res.first_bad_seq == 3
    assert f"audit entry {ids[2]}" in res.message and "altered" in res.message


def test_rewritten_hash_breaks_the_next_link(gov: Governance, hid: str) -> None:
    ids = _fill(gov, hid)
    t = tables()["gov_audit_log"]
    with gov.engine.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.entry_id == ids[1])).first()
        payload = {"i": 42}
        h = entry_hash(hid, row.seq, row.at, row.kind, row.actor, row.role, row.version_id, payload, row.prev_hash)
        conn.execute(t.update().where(t.c.entry_id == ids[1]).values(payload_json=json.dumps(payload), entry_hash=h))
    res = verify_chain(gov.engine, hid)
    assert not res.ok and res.first_bad == ids[2] and "broken link" in res.message


def test_deleted_entry_is_named(gov: Governance, hid: str) -> None:
    ids = _fill(gov, hid)
    t = tables()["gov_audit_log"]
    with gov.engine.begin() as conn:
        conn.execute(t.delete().where(t.c.entry_id == ids[1]))
    res = verify_chain(gov.engine, hid)
    assert not res.ok and res.first_bad == ids[2]
    assert "seq 2" in res.message and "missing (deleted)" in res.message


def test_deleted_tail_is_found_through_the_head(gov: Governance, hid: str) -> None:
    _fill(gov, hid)
    t = tables()["gov_audit_log"]
    with gov.engine.begin() as conn:
        conn.execute(t.delete().where(t.c.hospital_id == hid, t.c.seq >= 4))
    res = verify_chain(gov.engine, hid)
    assert not res.ok and res.first_bad is None and res.first_bad_seq == 4
    assert "entries from seq 4 on were deleted" in res.message


def test_only_the_broken_chain_is_blamed(gov: Governance, hid: str) -> None:
    other = hid + "-b"
    _fill(gov, other, 3)
    ids = _fill(gov, hid, 3)
    t = tables()["gov_audit_log"]
    with gov.engine.begin() as conn:
        conn.execute(t.update().where(t.c.entry_id == ids[0]).values(actor="mallory"))
    assert verify_chain(gov.engine, other).ok
    res = verify_chain(gov.engine, hid)
    assert not res.ok and res.first_bad == ids[0] and res.hospital_id == hid


def test_export_jsonl(gov: Governance, hid: str, tmp_path: Path) -> None:
    _fill(gov, hid, 4)
    path = tmp_path / "audit.jsonl"
    assert export_jsonl(gov.engine, path, hid) == 4
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["seq"] for x in lines] == [1, 2, 3, 4]
    assert set(lines[0]) >= {"entry_id", "hospital_id", "seq", "at", "kind", "actor", "role", "payload", "prev_hash", "entry_hash"}
    assert lines[1]["payload"]["text"] == "entry 1"
    assert verify_jsonl(path).ok
    lines[2]["payload"]["text"] = "changed"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    bad = verify_jsonl(path)
    assert not bad.ok and bad.first_bad == lines[2]["entry_id"]


def test_concurrent_appenders_keep_one_chain(gov: Governance, hid: str, db_url: str) -> None:
    """Eight threads, each with its own engine (as separate processes would), append at once."""
    n_threads, per = 8, 6
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def work(k: int) -> None:
        eng = sa.create_engine(db_url)
        try:
            barrier.wait()
            for i in range(per):
                append(eng, hid, "note", f"user{k}", "coordinator", {"k": k, "i": i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    log = read_log(gov.engine, hid)
    assert list(log["seq"]) == list(range(1, n_threads * per + 1))
    assert len({(p["k"], p["i"]) for p in log["payload"]}) == n_threads * per  # nothing lost, nothing doubled
    assert verify_chain(gov.engine, hid).ok
