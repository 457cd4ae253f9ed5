"""The keyed audit chain (issue 19): an insider with the database but without the key cannot rewrite it.

The three tamper cases of the issue run on SQLite and PostgreSQL (``db_url``): an edited entry whose
digest is recomputed without the key, the last entries deleted with the head row rewound, and a key
that does not match. Each fails verification naming what is missing or altered; the CLI exits 3.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.governance import append, verify_chain
from engine.governance.audit import (
    AuditKeyMissing,
    audit_key,
    canonical,
    checkpoint_path,
    entry_hash,
    key_id,
    read_checkpoints,
)
from engine.governance.audit_store import run_tx, tables
from engine.governance.workflow import Governance
from tests.minihospital import write_mini_hospital

REPO = Path(__file__).resolve().parents[3]


def _fill(engine: sa.Engine, hid: str, n: int = 5) -> None:
    for i in range(n):
        append(engine, hid, "note", "carol", "coordinator", {"i": i})


def _rows(engine: sa.Engine, hid: str) -> list[sa.Row]:
    t = tables()["gov_audit_log"]
    with engine.connect() as conn:
        return conn.execute(sa.select(t).where(t.c.hospital_id == hid).order_by(t.c.seq)).all()


def test_edited_entry_with_a_recomputed_unkeyed_digest_fails(gov: Governance, hid: str) -> None:
    """The insider edits entry 3 and repairs every digest, link and the head with plain SHA-256 (no key)."""
    _fill(gov.engine, hid)
    t, head = tables()["gov_audit_log"], tables()["gov_audit_head"]
    rows = _rows(gov.engine, hid)
    prev = rows[1].entry_hash
    with gov.engine.begin() as conn:
        for r in rows[2:]:
            payload = {"i": 99} if r.seq == 3 else json.loads(r.payload_json)
            body = {"hospital_id": hid, "seq": r.seq, "at": r.at, "kind": r.kind, "actor": r.actor, "role": r.role,
                    "version_id": r.version_id, "payload": payload, "prev_hash": prev}
            h = hashlib.sha256(canonical(body).encode()).hexdigest()
            conn.execute(t.update().where(t.c.entry_id == r.entry_id).values(payload_json=json.dumps(payload),
                                                                             prev_hash=prev, entry_hash=h))
            prev = h
        conn.execute(head.update().where(head.c.hospital_id == hid).values(entry_hash=prev))
    res = verify_chain(gov.engine, hid)
    assert not res.ok and res.first_bad == rows[2].entry_id and res.first_bad_seq == 3
    assert "keyed digest" in res.message and "altered" in res.message


def test_truncated_chain_with_rewound_head_fails(gov: Governance, hid: str) -> None:
    """Entries 4 and 5 deleted and the head row set back to entry 3: only the outside checkpoint can tell."""
    _fill(gov.engine, hid)
    rows = _rows(gov.engine, hid)
    t, head = tables()["gov_audit_log"], tables()["gov_audit_head"]
    with gov.engine.begin() as conn:
        conn.execute(t.delete().where(t.c.hospital_id == hid, t.c.seq >= 4))
        conn.execute(head.update().where(head.c.hospital_id == hid).values(seq=3, entry_hash=rows[2].entry_hash))
    res = verify_chain(gov.engine, hid)
    assert not res.ok and res.first_bad_seq == 4
    assert "ends at seq 3" in res.message and "recorded seq 5" in res.message and "missing" in res.message
    assert checkpoint_path(gov.engine).name in res.message


def test_a_key_that_does_not_match_fails(gov: Governance, hid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(gov.engine, hid, 3)
    assert verify_chain(gov.engine, hid).ok
    good = key_id()
    monkeypatch.setenv("OR_AUDIT_KEY", "a-different-key-of-enough-length")
    res = verify_chain(gov.engine, hid)
    assert not res.ok and res.first_bad == _rows(gov.engine, hid)[0].entry_id
    assert "audit key does not match" in res.message and good in res.message and key_id() in res.message


def test_deleted_checkpoint_file_fails(gov: Governance, hid: str) -> None:
    _fill(gov.engine, hid, 2)
    path = checkpoint_path(gov.engine)
    lines = path.read_text().splitlines()
    path.write_text("".join(x + "\n" for x in lines if json.loads(x)["hospital_id"] != hid))
    res = verify_chain(gov.engine, hid)
    assert not res.ok and "no outside checkpoint" in res.message


def test_forged_checkpoint_line_fails(gov: Governance, hid: str) -> None:
    _fill(gov.engine, hid, 2)
    path = checkpoint_path(gov.engine)
    lines = path.read_text().splitlines()
    forged = [json.dumps({**json.loads(x), "seq": 1}) if json.loads(x)["hospital_id"] == hid and json.loads(x)["seq"] == 2 else x
              for x in lines]
    path.write_text("".join(x + "\n" for x in forged))
    res = verify_chain(gov.engine, hid)
    assert not res.ok and "checkpoint file was altered" in res.message


def test_checkpoint_written_after_commit_only(tmp_path: Path, hid: str) -> None:
    from engine.governance.audit import append_entry

    eng = sa.create_engine(f"sqlite:///{tmp_path / 'g.sqlite'}")
    _fill(eng, hid, 1)
    before = len(read_checkpoints(eng, hid))

    def tx(conn: sa.Connection) -> None:
        append_entry(conn, hid, "note", "carol", "coordinator", {"x": 1})
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        run_tx(eng, tx)
    assert len(read_checkpoints(eng, hid)) == before == 1
    assert verify_chain(eng, hid).ok


def test_missing_key_is_a_clear_error_and_writes_nothing(tmp_path: Path, hid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'g.sqlite'}")
    monkeypatch.delenv("OR_AUDIT_KEY", raising=False)
    monkeypatch.delenv("OR_AUDIT_KEY_FILE", raising=False)
    with pytest.raises(AuditKeyMissing, match="OR_AUDIT_KEY_FILE") as exc:
        append(eng, hid, "note", "carol", "coordinator", {})
    assert "OR_AUDIT_KEY" in str(exc.value) and "no unkeyed fallback" in str(exc.value)
    assert _rows(eng, hid) == []
    with pytest.raises(AuditKeyMissing):
        verify_chain(eng, hid)
    monkeypatch.setenv("OR_AUDIT_KEY", "short")
    with pytest.raises(AuditKeyMissing, match="shorter than 16"):
        audit_key()
    monkeypatch.delenv("OR_AUDIT_KEY")
    monkeypatch.setenv("OR_AUDIT_KEY_FILE", str(tmp_path / "nope.key"))
    with pytest.raises(AuditKeyMissing, match="cannot be read"):
        audit_key()
    (tmp_path / "k.key").write_text("file-key-0123456789abcdef\n")
    monkeypatch.setenv("OR_AUDIT_KEY_FILE", str(tmp_path / "k.key"))
    assert audit_key() == b"file-key-0123456789abcdef"
    e = append(eng, hid, "note", "carol", "coordinator", {"a": 1})
    assert e.entry_hash == entry_hash(hid, 1, e.at, "note", "carol", "coordinator", None, {"a": 1}, e.prev_hash,
                                      b"file-key-0123456789abcdef")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_cli_verify_exits_3_for_each_tamper_case(tmp_path: Path) -> None:
    folder = write_mini_hospital(tmp_path / "mini")
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    eng = sa.create_engine(url)
    _fill(eng, "mini", 4)
    assert _cli("audit", "verify", "--data", str(folder), "--db", url).returncode == 0
    wrong = _cli("audit", "verify", "--data", str(folder), "--db", url, env={"OR_AUDIT_KEY": "another-key-0123456789"})
    assert wrong.returncode == 3 and "audit key does not match" in wrong.stderr
    nokey = _cli("audit", "verify", "--data", str(folder), "--db", url, env={"OR_AUDIT_KEY": "", "OR_AUDIT_KEY_FILE": ""})
    assert nokey.returncode == 2 and "OR_AUDIT_KEY_FILE" in nokey.stderr
    rows = _rows(eng, "mini")
    t, head = tables()["gov_audit_log"], tables()["gov_audit_head"]
    with eng.begin() as conn:
        conn.execute(t.delete().where(t.c.hospital_id == "mini", t.c.seq == 4))
        conn.execute(head.update().where(head.c.hospital_id == "mini").values(seq=3, entry_hash=rows[2].entry_hash))
    cut = _cli("audit", "verify", "--data", str(folder), "--db", url, "--json", str(tmp_path / "v.json"))
    assert cut.returncode == 3 and "seq 4..4 are missing" in cut.stderr
    assert json.loads((tmp_path / "v.json").read_text())["first_bad_seq"] == 4
