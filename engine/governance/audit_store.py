"""Governance tables in the store's database (their own MetaData; engine/store.py is untouched).

Tables (all prefixed ``gov_``; no foreign keys to the store's tables, so deleting a hospital's data
never deletes its audit trail):

- ``gov_audit_log``: the append-only, hash-chained audit log, one chain per hospital;
  ``UNIQUE(hospital_id, seq)``.
- ``gov_audit_head``: one row per hospital with the chain's last ``seq`` and hash. Appends lock it
  (``SELECT ... FOR UPDATE`` on PostgreSQL) and move it with a compare-and-set update, so
  concurrent writers serialise on every database; it also reveals entries deleted from the tail.
- ``gov_schedule_versions``: every proposed/approved/published/... schedule with its provenance.
- ``gov_overrides``: one row per case override (who, when, justification).

Only portable constructs: plain types, autoincrement integer keys, ``FOR UPDATE`` through
SQLAlchemy (ignored by SQLite, which serialises writers itself), compare-and-set updates.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Callable, TypeVar

import sqlalchemy as sa

log = logging.getLogger(__name__)

T = TypeVar("T")

EDITABLE_STATUSES = ("proposed", "approved", "published")
VERSION_STATUSES = ("proposed", "approved", "published", "superseded", "rolled_back", "rejected")


def governance_metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "gov_audit_log",
        md,
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hospital_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", sa.String(40), nullable=False),  # ISO text: hashed exactly as stored
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("version_id", sa.Integer),
        sa.Column("payload_json", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("hospital_id", "seq", name="uq_gov_audit_hospital_seq"),
    )
    sa.Table(
        "gov_audit_head",
        md,
        sa.Column("hospital_id", sa.String(200), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    )
    sa.Table(
        "gov_schedule_versions",
        md,
        sa.Column("version_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hospital_id", sa.String(200), nullable=False, index=True),
        sa.Column("horizon_start", sa.Date, nullable=False),
        sa.Column("horizon_end", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),  # optimizer | rules | override | rollback | manual
        sa.Column("parent_id", sa.Integer),
        sa.Column("successor_id", sa.Integer),  # the override version derived from this one (CAS target)
        sa.Column("rollback_of", sa.Integer),
        sa.Column("superseded_by", sa.Integer),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_role", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("approved_by", sa.String(200)),
        sa.Column("approved_at", sa.DateTime),
        sa.Column("published_by", sa.String(200)),
        sa.Column("published_at", sa.DateTime),
        sa.Column("status_by", sa.String(200)),
        sa.Column("status_at", sa.DateTime),
        sa.Column("status_note", sa.Text),
        sa.Column("plan_json", sa.Text, nullable=False),
        sa.Column("data_hash", sa.String(64)),
        sa.Column("model_version", sa.String(200)),
        sa.Column("model_data_hash", sa.String(64)),
        sa.Column("rules_version", sa.String(64)),
        sa.Column("schedule_json", sa.Text, nullable=False),
        sa.Column("locks_json", sa.Text, nullable=False),
        sa.Column("deferred_json", sa.Text, nullable=False),
        sa.Column("n_cases", sa.Integer, nullable=False),
        sa.Column("note", sa.Text),
    )
    sa.Table(
        "gov_overrides",
        md,
        sa.Column("override_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hospital_id", sa.String(200), nullable=False, index=True),
        sa.Column("base_version_id", sa.Integer, nullable=False),
        sa.Column("new_version_id", sa.Integer, nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("service_line", sa.String(200)),
        sa.Column("surgeon_id", sa.String(200)),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("justification_text", sa.Text),
        sa.Column("rule_id", sa.String(60)),
        sa.Column("new_date", sa.String(10)),
        sa.Column("new_room_id", sa.String(200)),
        sa.Column("new_start", sa.String(19)),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    return md


_MD = governance_metadata()
_created: set[str] = set()
_created_lock = threading.Lock()


def tables() -> dict[str, sa.Table]:
    return dict(_MD.tables)


def resolve_engine(store_or_url: Any = None) -> tuple[sa.Engine, bool]:
    """(engine, owned): a Store, a Governance, an Engine, a URL, or None for the default store URL.

    ``owned`` is True when the engine was created here and should be disposed by the caller.
    """
    if store_or_url is None:
        from engine.store import default_url

        store_or_url = default_url()
    if isinstance(store_or_url, sa.Engine):
        return store_or_url, False
    eng = getattr(store_or_url, "engine", None)
    if isinstance(eng, sa.Engine):
        return eng, False
    if isinstance(store_or_url, str):
        url = store_or_url
        if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
            from pathlib import Path

            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(url), True
    raise TypeError(f"expected a Store, an Engine or a database URL, got {type(store_or_url).__name__}")


def ensure_tables(engine: sa.Engine) -> None:
    """Create the governance tables once per database (``CREATE TABLE IF NOT EXISTS`` semantics)."""
    key = f"{id(engine)}:{engine.url.render_as_string(hide_password=True)}"
    if key in _created:
        return
    with _created_lock:
        if key in _created:
            return
        try:
            _MD.create_all(engine)
        except sa.exc.DBAPIError:
            # Another process created them meanwhile; a second pass sees them and does nothing.
            _MD.create_all(engine)
        _created.add(key)


class Retry(Exception):
    """A compare-and-set lost a race: run the transaction again."""


# Only these failures mean "another writer got there first": retrying them is safe and useful.
# PostgreSQL SQLSTATEs: serialization_failure, deadlock_detected, lock_not_available.
_RETRY_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
# Unique clashes that are lost races of the audit chain (two appenders took the same seq or both
# created a hospital's head row), by constraint name (PostgreSQL) or by SQLite's message.
_RACE_CONSTRAINTS = frozenset({"uq_gov_audit_hospital_seq", "gov_audit_head_pkey"})
_SQLITE_RACE_MESSAGES = ("gov_audit_log.hospital_id, gov_audit_log.seq", "gov_audit_head.hospital_id")
_SQLITE_LOCKED = ("database is locked", "database table is locked")


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def is_serialization_conflict(exc: BaseException) -> bool:
    """True for a lost race (retry the transaction); False for every other database error (a bug or bad data).

    Retried: :class:`Retry` (a compare-and-set lost), PostgreSQL serialization failures, deadlocks and
    lock timeouts, SQLite's "database is locked", and unique clashes on the audit chain's seq or head
    row. Not retried: any other IntegrityError (NOT NULL, another unique key, ...) or OperationalError
    (no such table, disk full, connection refused, ...).
    """
    if isinstance(exc, Retry):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    state = _sqlstate(exc)
    if state in _RETRY_SQLSTATES:
        return True
    msg = str(getattr(exc, "orig", exc))
    if isinstance(exc, sa.exc.IntegrityError):
        diag = getattr(getattr(exc, "orig", None), "diag", None)
        name = getattr(diag, "constraint_name", None)
        if name in _RACE_CONSTRAINTS:
            return True
        return state is None and "UNIQUE constraint failed" in msg and any(m in msg for m in _SQLITE_RACE_MESSAGES)
    if isinstance(exc, sa.exc.OperationalError):
        return state is None and any(m in msg for m in _SQLITE_LOCKED)
    return False


_AFTER_COMMIT = "gov_after_commit"


def after_commit(conn: sa.Connection, fn: Callable[[], Any]) -> None:
    """Run ``fn`` once the transaction :func:`run_tx` runs on ``conn`` has committed (never after a rollback).

    Outside :func:`run_tx` there is no commit to wait for that this code can see: ``fn`` runs at once.
    """
    pending = conn.info.get(_AFTER_COMMIT)
    if pending is None:
        fn()
    else:
        pending.append(fn)


def run_tx(engine: sa.Engine, fn: Callable[[sa.Connection], T], attempts: int = 40) -> T:
    """Run ``fn(conn)`` in one transaction, retrying only serialization conflicts (:func:`is_serialization_conflict`).

    Every other error (ConflictError, PermissionError, a NOT NULL violation, a missing table, ...) passes
    straight through after rollback, on the first attempt. Callbacks registered with :func:`after_commit`
    (the audit checkpoint) run after the commit, once.
    """
    for i in range(attempts):
        pending: list[Callable[[], Any]] = []
        try:
            with engine.begin() as conn:
                conn.info[_AFTER_COMMIT] = pending
                try:
                    out = fn(conn)
                finally:
                    conn.info.pop(_AFTER_COMMIT, None)  # info lives with the pooled DBAPI connection
            for cb in pending:
                cb()
            return out
        except (Retry, sa.exc.DBAPIError) as exc:
            if i == attempts - 1 or not is_serialization_conflict(exc):
                raise
            log.debug("governance transaction retried after %s", type(exc).__name__)
            time.sleep(random.uniform(0, min(0.25, 0.004 * 2 ** min(i, 6))))
    raise AssertionError("unreachable")
