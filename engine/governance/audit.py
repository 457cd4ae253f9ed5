"""The audit log: append-only, keyed hash chain per hospital, checkpointed outside the database.

Each entry stores the previous entry's digest and its own **HMAC-SHA256** over the canonical JSON of
``{hospital_id, seq, at, kind, actor, role, version_id, payload, prev_hash}`` (the ``entry_hash``
column: same schema as the unkeyed chain before it). The key is never in the database: it comes from
``OR_AUDIT_KEY`` (the key text) or ``OR_AUDIT_KEY_FILE`` (a file holding it); with neither,
:func:`audit_key` raises :class:`AuditKeyMissing` naming both, and nothing is appended (there is
no unkeyed fallback). The first entry links to ``GENESIS`` (64 zeros).

After each committed append the chain's new head ``(hospital, seq, digest)`` is appended, with its
own HMAC and the key's id, as one line of an append-only JSON-lines **checkpoint file** outside the
database (:func:`checkpoint_path`: ``OR_AUDIT_CHECKPOINT_DIR`` when set, else next to a SQLite
file, else ``var/audit/``).

:func:`verify_chain` recomputes every digest and link, compares the chain's end with the head row
and then with every checkpoint line, so an altered entry (an insider without the key cannot
recompute its digest), a broken link, a deleted entry, entries cut from the end (with or without the
head row rewound) and a key that does not match are all found, and the first bad entry is named.

What it cannot show: someone who holds the key *and* can rewrite the checkpoint file.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import sqlalchemy as sa

from engine.governance.audit_store import Retry, after_commit, ensure_tables, resolve_engine, run_tx, tables
from engine.errors import InputError, Problem
from engine.governance.canonical import canonical, clean
from engine.io import atomic_write_file

GENESIS = "0" * 64

KEY_ENV, KEY_FILE_ENV, CHECKPOINT_DIR_ENV = "OR_AUDIT_KEY", "OR_AUDIT_KEY_FILE", "OR_AUDIT_CHECKPOINT_DIR"
MIN_KEY_BYTES = 16
CHECKPOINT_SUFFIX = ".audit-checkpoints.jsonl"


class AuditKeyMissing(InputError):
    """No usable audit key: the command exits 2 and nothing is appended or verified."""

    def __init__(self, why: str) -> None:
        super().__init__([Problem(f"{KEY_ENV} / {KEY_FILE_ENV}", None, None,
                                  f"{why}. The audit chain is keyed (HMAC-SHA256) with a key kept outside the database: set "
                                  f"{KEY_ENV} to the key text or {KEY_FILE_ENV} to a file holding it (at least "
                                  f"{MIN_KEY_BYTES} bytes; `make run` creates var/audit.key). There is no unkeyed fallback.")])


def audit_key() -> bytes:
    """The chain key from ``OR_AUDIT_KEY`` (wins) or the file named by ``OR_AUDIT_KEY_FILE``; read on every call."""
    text = os.environ.get(KEY_ENV)
    if text:
        key, source = text.strip().encode("utf-8"), KEY_ENV
    else:
        path = os.environ.get(KEY_FILE_ENV)
        if not path:
            raise AuditKeyMissing(f"no audit key: neither {KEY_ENV} nor {KEY_FILE_ENV} is set")
        try:
            key = Path(path).read_bytes().strip()
        except OSError as exc:
            raise AuditKeyMissing(f"{KEY_FILE_ENV}={path!r} cannot be read ({exc.strerror or exc})") from exc
        source = f"{KEY_FILE_ENV} ({path})"
    if len(key) < MIN_KEY_BYTES:
        raise AuditKeyMissing(f"the key from {source} is {len(key)} bytes long, shorter than {MIN_KEY_BYTES}")
    return key


def key_id(key: bytes | None = None) -> str:
    """A short public fingerprint of the key (recorded in checkpoints, so a wrong key is named as such)."""
    return hmac.new(key or audit_key(), b"or-audit key id", hashlib.sha256).hexdigest()[:16]


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()

AUDIT_KINDS = (
    "recommendation", "approve", "reject", "publish", "publish_withheld", "override", "rollback", "gate_decision",
    "sign_in", "note", "rollback_proposed", "emergency_rollback", "rollback_withheld", "retrain", "replan", "import_data",
    "set_fairness_policy",
    # issue 19 (engine/pilot): replays, shadow runs, daily monitoring, drills, incidents, canary
    "replay", "shadow_run", "shadow_report", "monitor", "drill", "incident", "canary_start", "canary_stop",
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
               payload: Any, prev_hash: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 (hex) of the entry's canonical JSON under ``key`` (default :func:`audit_key`)."""
    body = {"hospital_id": hospital_id, "seq": int(seq), "at": at, "kind": kind, "actor": actor, "role": role,
            "version_id": None if version_id is None else int(version_id), "payload": clean(payload), "prev_hash": prev_hash}
    return _mac(key if key is not None else audit_key(), canonical(body))


# ------------------------------------------------------------------ the checkpoint file (outside the database)


def db_label(engine: sa.Engine) -> str:
    """The database's identity in checkpoint lines: its URL without password (a SQLite path made absolute)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).resolve()))
    return url.render_as_string(hide_password=True)


def checkpoint_path(engine: sa.Engine) -> Path:
    """Where this database's chain heads are checkpointed: ``$OR_AUDIT_CHECKPOINT_DIR/audit-checkpoints-<id>.jsonl``
    when set; else ``<sqlite file>.audit-checkpoints.jsonl`` beside a SQLite file; else ``var/audit/``."""
    label = db_label(engine)
    slug = hashlib.sha256(label.encode("utf-8")).hexdigest()[:12]
    folder = os.environ.get(CHECKPOINT_DIR_ENV)
    if folder:
        return Path(folder) / f"audit-checkpoints-{slug}.jsonl"
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database).resolve()
        return db.with_name(db.name + CHECKPOINT_SUFFIX)
    from engine.store import DEFAULT_SQLITE_PATH

    return DEFAULT_SQLITE_PATH.parent / "audit" / f"audit-checkpoints-{slug}.jsonl"


def _checkpoint_line(engine: sa.Engine, entry: "AuditEntry", key: bytes) -> str:
    body = {"db": db_label(engine), "hospital_id": entry.hospital_id, "seq": entry.seq, "entry_hash": entry.entry_hash,
            "at": entry.at, "key_id": key_id(key)}
    return json.dumps({**body, "mac": _mac(key, canonical(body))}, sort_keys=True)


def write_checkpoint(engine: sa.Engine, entry: "AuditEntry", key: bytes | None = None) -> Path:
    """Append the chain's new head to the checkpoint file (one ``O_APPEND`` write and fsync: lines never interleave)."""
    path = checkpoint_path(engine)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (_checkpoint_line(engine, entry, key or audit_key()) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_checkpoints(engine: sa.Engine, hospital_id: str | None = None) -> list[dict[str, Any]]:
    """This database's checkpoint lines (of one hospital when given), each with its ``line`` number."""
    path = checkpoint_path(engine)
    if not path.exists():
        return []
    label, out = db_label(engine), []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            rec = {"db": label, "hospital_id": hospital_id, "unreadable": True}
        if rec.get("db") == label and (hospital_id is None or rec.get("hospital_id") == hospital_id):
            out.append({**rec, "line": n})
    return out


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
    key = audit_key()  # before any write: no key, no entry
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
    h = entry_hash(hospital_id, seq, at, kind, actor, role, version_id, payload, prev_hash, key)
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
    entry = AuditEntry(int(entry_id), hospital_id, seq, at, kind, actor, role, version_id, payload, prev_hash, h)
    # The head goes outside the database only once the transaction has committed (run_tx runs these).
    after_commit(conn, lambda: write_checkpoint(conn.engine, entry, key))
    return entry


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


def _verify_one(hid: str, rows: list[sa.Row], head: sa.Row | None, key: bytes,
                checkpoints: list[dict[str, Any]], where_cp: Path) -> tuple[int | None, int | None, str] | None:
    """(first bad entry id, seq, why) for one chain, or None when intact."""
    kid = key_id(key)
    other_keys = sorted({c.get("key_id") for c in checkpoints if c.get("key_id") and c.get("key_id") != kid})
    wrong_key = (f"the audit key does not match: this key's id is {kid}, the chain's checkpoints were written with key id "
                 f"{', '.join(other_keys)} (set {KEY_ENV} or {KEY_FILE_ENV} to the key the chain was written with)")
    prev_hash, prev_id, expect_seq = GENESIS, None, 1
    by_seq: dict[int, sa.Row] = {}
    for r in rows:
        where = f"audit entry {r.entry_id} (hospital {hid}, seq {r.seq}, {r.kind} by {r.actor} at {r.at})"
        try:
            payload = json.loads(r.payload_json)
        except (TypeError, ValueError):
            return r.entry_id, r.seq, f"{where}: its payload is not valid JSON (altered)"
        recomputed = entry_hash(hid, r.seq, r.at, r.kind, r.actor, r.role, r.version_id, payload, r.prev_hash, key)
        if r.seq != expect_seq:
            missing = f"seq {expect_seq}" if r.seq == expect_seq + 1 else f"seqs {expect_seq}..{r.seq - 1}"
            return r.entry_id, r.seq, f"{where}: the entries before it ({missing}) are missing (deleted)"
        if r.prev_hash != prev_hash:
            after = f"entry {prev_id}" if prev_id is not None else "the start of the chain"
            return r.entry_id, r.seq, f"{where}: broken link: it does not point to {after} (an entry was removed or rewritten)"
        if not hmac.compare_digest(recomputed, r.entry_hash):
            if other_keys:
                return r.entry_id, r.seq, f"hospital {hid}: {wrong_key}"
            if prev_id is None and all(_mac_fails(hid, x, key) for x in rows):
                return r.entry_id, r.seq, (f"{where}: none of the chain's {len(rows)} entries matches its keyed digest: the "
                                           f"audit key does not match the one the chain was written with (or every "
                                           f"entry was rewritten)")
            return r.entry_id, r.seq, (f"{where}: its content no longer matches its keyed digest (altered after it was "
                                       f"written)")
        prev_hash, prev_id, expect_seq = r.entry_hash, r.entry_id, r.seq + 1
        by_seq[int(r.seq)] = r
    last_seq = expect_seq - 1
    if head is None:
        if rows:
            return None, None, f"hospital {hid}: the chain head record is missing (deleted)"
    elif int(head.seq) != last_seq or head.entry_hash != prev_hash:
        if int(head.seq) > last_seq:
            return None, last_seq + 1, (f"hospital {hid}: the chain ends at seq {last_seq} but its head records seq {head.seq}: "
                                        f"entries from seq {last_seq + 1} on were deleted")
        return (prev_id, last_seq, f"hospital {hid}: the last entry (seq {last_seq}) does not match the chain head "
                                   f"(head seq {head.seq}): the end of the chain was rewritten")
    return _against_checkpoints(hid, by_seq, last_seq, key, kid, checkpoints, where_cp, wrong_key)


def _mac_fails(hid: str, r: sa.Row, key: bytes) -> bool:
    try:
        payload = json.loads(r.payload_json)
    except (TypeError, ValueError):
        return True
    return not hmac.compare_digest(entry_hash(hid, r.seq, r.at, r.kind, r.actor, r.role, r.version_id, payload, r.prev_hash,
                                              key), r.entry_hash)


def _against_checkpoints(hid: str, by_seq: dict[int, sa.Row], last_seq: int, key: bytes, kid: str,
                         checkpoints: list[dict[str, Any]], where_cp: Path, wrong_key: str
                         ) -> tuple[int | None, int | None, str] | None:
    """Every checkpointed head must still be in the chain, with the same digest."""
    if by_seq and not checkpoints:
        return None, None, (f"hospital {hid}: no outside checkpoint of this chain in {where_cp} (the file was deleted or "
                            f"moved, or {CHECKPOINT_DIR_ENV} points elsewhere): its end cannot be confirmed")
    furthest = None
    for c in checkpoints:
        cp = f"checkpoint {where_cp.name} line {c['line']}"
        if c.get("unreadable"):
            return None, None, f"hospital {hid}: {cp} is not valid JSON (the checkpoint file was altered)"
        if c.get("key_id") != kid:
            return None, None, f"hospital {hid}: {wrong_key}"
        body = {k: c.get(k) for k in ("db", "hospital_id", "seq", "entry_hash", "at", "key_id")}
        if not hmac.compare_digest(_mac(key, canonical(body)), str(c.get("mac"))):
            return None, None, f"hospital {hid}: {cp} does not match its keyed digest (the checkpoint file was altered)"
        seq = int(c["seq"])
        r = by_seq.get(seq)
        if r is None:
            if furthest is None or seq > int(furthest["seq"]):
                furthest = c
            continue
        if r.entry_hash != c["entry_hash"]:
            return r.entry_id, seq, (f"audit entry {r.entry_id} (hospital {hid}, seq {seq}) differs from the digest the "
                                     f"outside {cp} recorded for it: the entry was rewritten")
    if furthest is not None:
        return None, last_seq + 1, (f"hospital {hid}: the database's chain ends at seq {last_seq}, but the outside {where_cp.name} "
                                    f"(line {furthest['line']}) recorded seq {furthest['seq']} written at {furthest['at']}: "
                                    f"entries seq {last_seq + 1}..{furthest['seq']} are missing (deleted, the head row rewound)")
    return None


def verify_chain(store_or_url: Any, hospital_id: str | None = None) -> VerifyResult:
    """Walk the chain(s) and name the first bad entry. ``hospital_id`` None checks every hospital.

    Needs the audit key (:class:`AuditKeyMissing` otherwise) and reads the checkpoint file."""
    key = audit_key()
    engine, owned = resolve_engine(store_or_url)
    try:
        ensure_tables(engine)
        with engine.connect() as conn:
            rows = _rows(conn, hospital_id)
            heads = _heads(conn, hospital_id)
        checkpoints = read_checkpoints(engine, hospital_id)
        where_cp = checkpoint_path(engine)
    finally:
        if owned:
            engine.dispose()
    by_h: dict[str, list[sa.Row]] = {}
    for r in rows:
        by_h.setdefault(r.hospital_id, []).append(r)
    cps: dict[str, list[dict[str, Any]]] = {}
    for c in checkpoints:
        cps.setdefault(str(c.get("hospital_id")), []).append(c)
    bad = []
    for hid in sorted(set(by_h) | set(heads) | set(cps)):
        res = _verify_one(hid, by_h.get(hid, []), heads.get(hid), key, cps.get(hid, []), where_cp)
        if res:
            bad.append((hid, *res))
    n = len(rows)
    scope = f"hospital {hospital_id}" if hospital_id else f"{len(set(by_h) | set(heads))} hospital chain(s)"
    if not bad:
        return VerifyResult(True, n, None, f"audit chain intact: {n} entries checked ({scope}; keyed, against {where_cp})",
                            hospital_id)
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
    """Verify an exported file's chains on their own (no database, with the key): digests and links, not the head."""
    key = audit_key()
    by_h: dict[str, list[dict[str, Any]]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            by_h.setdefault(rec["hospital_id"], []).append(rec)
    n = sum(len(v) for v in by_h.values())
    for hid, recs in sorted(by_h.items()):
        prev = GENESIS
        for i, r in enumerate(sorted(recs, key=lambda x: x["seq"]), 1):
            h = entry_hash(hid, r["seq"], r["at"], r["kind"], r["actor"], r["role"], r["version_id"], r["payload"],
                           r["prev_hash"], key)
            if r["seq"] != i or r["prev_hash"] != prev or h != r["entry_hash"]:
                return VerifyResult(False, n, r["entry_id"], f"exported entry {r['entry_id']} (hospital {hid}, seq {r['seq']}) does not verify", hid, r["seq"])
            prev = r["entry_hash"]
    return VerifyResult(True, n, None, f"exported audit chain intact: {n} entries")
