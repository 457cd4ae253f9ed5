"""`python -m engine audit verify` exits 0 on an intact chain and 3 naming the first bad entry."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from engine.governance.audit import append
from tests.minihospital import write_mini_hospital

REPO = Path(__file__).resolve().parents[3]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_audit_verify_and_export_then_tamper(tmp_path):
    folder = write_mini_hospital(tmp_path / "mini")
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    for i in range(4):
        append(url, "mini", "note", f"user{i}", "leadership", {"note": f"entry {i}"})
    ok = _run("audit", "verify", "--data", str(folder), "--db", url, "--json", str(tmp_path / "v.json"))
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "v.json").read_text())["n_entries"] == 4
    exp = _run("audit", "export", "--data", str(folder), "--db", url, "--out", str(tmp_path / "log.jsonl"))
    assert exp.returncode == 0 and len((tmp_path / "log.jsonl").read_text().splitlines()) == 4
    # Tamper with the third entry's payload directly in the database.
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        table = sa.Table("gov_audit_log", sa.MetaData(), autoload_with=conn)
        third = conn.execute(sa.select(table).where(table.c.hospital_id == "mini").order_by(table.c.seq)).all()[2]
        payload_col = next(c for c in table.c if c.name in ("payload_json", "payload"))
        conn.execute(table.update().where(table.c.seq == third.seq).values({payload_col.name: '{"note": "forged"}'}))
    bad = _run("audit", "verify", "--data", str(folder), "--db", url)
    assert bad.returncode == 3
    assert "AUDIT CHAIN BROKEN" in bad.stderr
    assert f"seq {third.seq}" in bad.stderr or f"#{third.seq}" in bad.stderr or str(third.seq) in bad.stderr.split("BROKEN")[1]
    missing = _run("audit", "verify", "--data", str(tmp_path / "nope"), "--db", url)
    assert missing.returncode == 2
