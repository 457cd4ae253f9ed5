"""The audit log: append-only, hash-chained per hospital, verifiable and exportable as JSON lines.

Each entry stores the previous entry's hash and its own ``sha256`` over the canonical JSON of
``{hospital_id, seq, at, kind, actor, role, version_id, payload, prev_hash}``. The first entry of a
chain links to ``GENESIS`` (64 zeros). :func:`verify_chain` recomputes every hash and link and
compares the chain's end with the head row, so an altered payload, a broken link, a deleted entry
in the middle and entries cut from the end are all found, and the first bad entry is named.

What a chain cannot show: someone with write access who rewrites every later entry *and* the head.
Anchor against that by keeping the head hash elsewhere (``chain_heads`` / the export's last line).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import sqlalchemy as sa

from engine.governance.audit_store import Retry, ensure_tables, resolve_engine, run_tx, tables
from engine.governance.canonical import canonical, clean, sha256
from engine.io import atomic_write_file

GENESIS = "0" * 64

AUDIT_KINDS = (
    "recommendation", "approve", "reject", "publish", "publish_withheld", "override", "rollback", "gate_decision",
    "sign_in", "note", "rollback_proposed", "emergency_rollback", "rollback_withheld", "retrain", "replan", "import_data",
    "set_fairness_policy",
)


@dataclass(frozen=True)
class AuditEntry:
    entry_id: int
    hospital_id: str
    seq: int
    at: str
    kind: str
    actor: str
    role: str
    version_id: int | None
    payload: dict[str, Any]
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True)
class VerifyResult:
    """``ok``; entries checked; the first bad entry's id (None when intact, or when the bad spot is a
    missing tail with no entry left to name: then ``first_bad_seq`` says which seq is missing)."""

    ok: bool
    n_entries: int
    first_bad: int | None
    message: str
    hospital_id: str | None = None
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def entry_hash(hospital_id: str, seq: int, at: str, kind: str, actor: str, role: str, version_id: int | None,
               payload: Any, prev_hash: str) -> str:
    body = {"hospital_id": hospital_id, "seq": int(seq), "at": at, "kind": kind, "actor": actor, "role": role,
            "version_id": None if version_id is None else int(version_id), "payload": clean(payload), "prev_hash": prev_hash}
    return sha256(canonical(body))


def append_entry(conn: sa.Connection, hospital_id: str, kind: str, actor: str, role: str, payload: dict[str, Any],
                 version_id: int | None = None, at: str | None = None) -> AuditEntry:
    """Append one entry inside the caller's transaction.

    Serialisation: the hospital's head row is read ``FOR UPDATE`` (PostgreSQL blocks other
    appenders until commit) and moved with a compare-and-set; on SQLite, whose reads may run
    before the write lock is taken, a lost compare-and-set or a ``(hospital_id, seq)`` clash raises
    :class:`Retry`/IntegrityError and :func:`run_tx` runs the whole transaction again.
    """
    if kind not in AUDIT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(AUDIT_KINDS)}, got {kind!r}")
    t = tables()
    head_t, log_t = t["gov_audit_head"], t["gov_audit_log"]
    head = conn.execute(sa.select(head_t).where(head_t.c.hospital_id == hospital_id).with_for_update()).first()
    if head is None:
        conn.execute(head_t.insert().values(hospital_id=hospital_id, seq=0, entry_hash=GENESIS))
        prev_seq, prev_hash = 0, GENESIS
    else:
        prev_seq, prev_hash = int(head.seq), head.entry_hash
    seq = prev_seq + 1
    at = at or now_iso()
    payload = clean(payload)
    h = entry_hash(hospital_id, seq, at, kind, actor, role, version_id, payload, prev_hash)
    res = conn.execute(
        head_t.update().where(head_t.c.hospital_id == hospital_id, head_t.c.seq == prev_seq, head_t.c.entry_hash == prev_hash)
        .values(seq=seq, entry_hash=h)
    )
    if res.rowcount != 1:
        raise Retry()
    entry_id = conn.execute(
        log_t.insert().values(hospital_id=hospital_id, seq=seq, at=at, kind=kind, actor=actor, role=role,
                              version_id=version_id, payload_json=canonical(payload), prev_hash=prev_hash, entry_hash=h)
    ).inserted_primary_key[0]
    return AuditEntry(int(entry_id), hospital_id, seq, at, kind, actor, role, version_id, payload, prev_hash, h)


def append(store_or_url: Any, hospital_id: str, kind: str, actor: str, role: str, payload: dict[str, Any],
           version_id: int | None = None) -> AuditEntry:
    """Append one entry in its own transaction (safe under concurrent writers)."""
    engine, owned = resolve_engine(store_or_url)
    try:
        ensure_tables(engine)
        return run_tx(engine, lambda conn: append_entry(conn, hospital_id, kind, actor, role, payload, version_id))
    finally:
        if owned:
            engine.dispose()


def _rows(conn: sa.Connection, hospital_id: str | None) -> list[sa.Row]:
    log_t = tables()["gov_audit_log"]
    q = sa.select(log_t)
    if hospital_id is not None:
        q = q.where(log_t.c.hospital_id == hospital_id)
    return conn.execute(q.order_by(log_t.c.hospital_id, log_t.c.seq, log_t.c.entry_id)).all()


def _heads(conn: sa.Connection, hospital_id: str | None) -> dict[str, sa.Row]:
    head_t = tables()["gov_audit_head"]
    q = sa.select(head_t)
    if hospital_id is not None:
        q = q.where(head_t.c.hospital_id == hospital_id)
    return {r.hospital_id: r for r in conn.execute(q).all()}


def _verify_one(hid: str, rows: list[sa.Row], head: sa.Row | None) -> tuple[int | None, int | None, str] | None:
    """(first bad entry id, seq, why) for one chain, or None when intact."""
    prev_hash, prev_id, expect_seq = GENESIS, None, 1
    for r in rows:
        where = f"audit entry {r.entry_id} (hospital {hid}, seq {r.seq}, {r.kind} by {r.actor} at {r.at})"
        try:
            payload = json.loads(r.payload_json)
        except (TypeError, ValueError):
            return r.entry_id, r.seq, f"{where}: its payload is not valid JSON (altered)"
        recomputed = entry_hash(hid, r.seq, r.at, r.kind, r.actor, r.role, r.version_id, payload, r.prev_hash)
        if r.seq != expect_seq:
            missing = f"seq {expect_seq}" if r.seq == expect_seq + 1 else f"seqs {expect_seq}..{r.seq - 1}"
            return r.entry_id, r.seq, f"{where}: the entries before it ({missing}) are missing (deleted)"
        if r.prev_hash != prev_hash:
            after = f"entry {prev_id}" if prev_id is not None else "the start of the chain"
            return r.entry_id, r.seq, f"{where}: broken link: it does not point to {after} (an entry was removed or rewritten)"
        if recomputed != r.entry_hash:
            return r.entry_id, r.seq, f"{where}: its content no longer matches its hash (altered after it was written)"
        prev_hash, prev_id, expect_seq = r.entry_hash, r.entry_id, r.seq + 1
    last_seq = expect_seq - 1
    if head is None:
        if rows:
            return None, None, f"hospital {hid}: the chain head record is missing (deleted)"
        return None
    if int(head.seq) != last_seq or head.entry_hash != prev_hash:
        if int(head.seq) > last_seq:
            return None, last_seq + 1, (f"hospital {hid}: the chain ends at seq {last_seq} but its head records seq {head.seq}: "
                                        f"entries from seq {last_seq + 1} on were deleted")
        return (prev_id, last_seq, f"hospital {hid}: the last entry (seq {last_seq}) does not match the chain head "
                                   f"(head seq {head.seq}): the end of the chain was rewritten")
    return None


def verify_chain(store_or_url: Any, hospital_id: str | None = None) -> VerifyResult:
    """Walk the chain(s) and name the first bad entry. ``hospital_id`` None checks every hospital."""
    engine, owned = resolve_engine(store_or_url)
    try:
        ensure_tables(engine)
        with engine.connect() as conn:
            rows = _rows(conn, hospital_id)
            heads = _heads(conn, hospital_id)
    finally:
        if owned:
            engine.dispose()
    by_h: dict[str, list[sa.Row]] = {}
    for r in rows:
        by_h.setdefault(r.hospital_id, []).append(r)
    bad = []
    for hid in sorted(set(by_h) | set(heads)):
        res = _verify_one(hid, by_h.get(hid, []), heads.get(hid))
        if res:
            bad.append((hid, *res))
    n = len(rows)
    scope = f"hospital {hospital_id}" if hospital_id else f"{len(set(by_h) | set(heads))} hospital chain(s)"
    if not bad:
        return VerifyResult(True, n, None, f"audit chain intact: {n} entries checked ({scope})", hospital_id)
    # The earliest problem first: by entry id where there is one (time order), tails last.
    bad.sort(key=lambda b: (b[1] is None, b[1] if b[1] is not None else 0, b[0]))
    hid, first_id, first_seq, why = bad[0]
    more = f" ({len(bad) - 1} other chain(s) also broken)" if len(bad) > 1 else ""
    return VerifyResult(False, n, first_id, f"audit chain broken: {why}{more}", hid, first_seq, [b[3] for b in bad])


def read_log(store_or_url: Any, hospital_id: str | None = None) -> pd.DataFrame:
    """The log as a frame (payload parsed), in chain order."""
    engine, owned = resolve_engine(store_or_url)
    try:
        ensure_tables(engine)
        with engine.connect() as conn:
            rows = _rows(conn, hospital_id)
    finally:
        if owned:
            engine.dispose()
    cols = ["entry_id", "hospital_id", "seq", "at", "kind", "actor", "role", "version_id", "payload", "prev_hash", "entry_hash"]
    recs = []
    for r in rows:
        m = dict(r._mapping)
        try:
            m["payload"] = json.loads(m.pop("payload_json"))
        except (TypeError, ValueError):
            m["payload"] = {"unreadable": True}
        recs.append(m)
    return pd.DataFrame(recs, columns=cols)


def chain_heads(store_or_url: Any) -> pd.DataFrame:
    """hospital_id, seq, entry_hash of every chain: the values to anchor outside the database."""
    engine, owned = resolve_engine(store_or_url)
    try:
        ensure_tables(engine)
        with engine.connect() as conn:
            heads = _heads(conn, None)
    finally:
        if owned:
            engine.dispose()
    return pd.DataFrame([{"hospital_id": h, "seq": r.seq, "entry_hash": r.entry_hash} for h, r in sorted(heads.items())],
                        columns=["hospital_id", "seq", "entry_hash"])


def export_jsonl(store_or_url: Any, path: str | Path, hospital_id: str | None = None,
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> int:
    """Write the log as JSON lines (one entry per line, chain order), whole or not at all.

    Each line carries every hashed field plus ``entry_id`` and ``entry_hash``, so the chain can be
    re-verified from the file alone (:func:`verify_jsonl`). ``transform`` (e.g. masking for a role)
    changes lines after export; a masked export no longer verifies, by design. Returns the count.
    """
    log_df = read_log(store_or_url, hospital_id)
    lines = []
    for rec in log_df.to_dict("records"):
        rec = {k: clean(v) for k, v in rec.items()}
        if transform:
            rec = transform(rec)
        lines.append(json.dumps(rec, sort_keys=True, ensure_ascii=False))
    atomic_write_file(path, lambda p: p.write_text("".join(line + "\n" for line in lines), encoding="utf-8"))
    return len(lines)


def verify_jsonl(path: str | Path) -> VerifyResult:
    """Verify an exported file's chains on their own (no database): hashes and links, not the head."""
    by_h: dict[str, list[dict[str, Any]]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            by_h.setdefault(rec["hospital_id"], []).append(rec)
    n = sum(len(v) for v in by_h.values())
    for hid, recs in sorted(by_h.items()):
        prev = GENESIS
        for i, r in enumerate(sorted(recs, key=lambda x: x["seq"]), 1):
            h = entry_hash(hid, r["seq"], r["at"], r["kind"], r["actor"], r["role"], r["version_id"], r["payload"], r["prev_hash"])
            if r["seq"] != i or r["prev_hash"] != prev or h != r["entry_hash"]:
                return VerifyResult(False, n, r["entry_id"], f"exported entry {r['entry_id']} (hospital {hid}, seq {r['seq']}) does not verify", hid, r["seq"])
            prev = r["entry_hash"]
    return VerifyResult(True, n, None, f"exported audit chain intact: {n} entries")
