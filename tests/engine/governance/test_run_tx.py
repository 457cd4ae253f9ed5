"""Issue 18: run_tx retried every IntegrityError and OperationalError 40 times, real bugs included.
Only serialization conflicts (lost races) are retried now; any other database error surfaces at once."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.governance import Governance
from engine.governance.audit_store import Retry, is_serialization_conflict, run_tx, tables


def _counting(fn):
    calls = []

    def wrapped(conn):
        calls.append(1)
        return fn(conn, len(calls))

    return wrapped, calls


def test_a_not_null_violation_is_not_retried(gov: Governance, hid: str) -> None:
    log_t = tables()["gov_audit_log"]

    def bad(conn, n):  # a real bug: a required column left out
        conn.execute(log_t.insert().values(hospital_id=hid, seq=1, at="x", kind=None, actor="a", role="r",
                                           payload_json="{}", prev_hash="0", entry_hash="0"))

    fn, calls = _counting(bad)
    with pytest.raises(sa.exc.IntegrityError):
        run_tx(gov.engine, fn)
    assert len(calls) == 1


def test_a_missing_table_is_not_retried(gov: Governance) -> None:
    fn, calls = _counting(lambda conn, n: conn.execute(sa.text("SELECT * FROM no_such_table_here")))
    with pytest.raises((sa.exc.OperationalError, sa.exc.ProgrammingError)):
        run_tx(gov.engine, fn)
    assert len(calls) == 1


def test_lost_races_are_retried(gov: Governance, hid: str) -> None:
    log_t = tables()["gov_audit_log"]
    row = dict(hospital_id=hid, seq=1, at="x", kind="note", actor="a", role="r", payload_json="{}", prev_hash="0",
               entry_hash="0")
    run_tx(gov.engine, lambda conn: conn.execute(log_t.insert().values(**row)))

    def clash_then_ok(conn, n):
        if n == 1:
            conn.execute(log_t.insert().values(**row))  # the seq another appender took: the chain's race guard
        elif n == 2:
            raise Retry()
        return n

    fn, calls = _counting(clash_then_ok)
    assert run_tx(gov.engine, fn) == 3 and len(calls) == 3


def test_classification() -> None:
    assert is_serialization_conflict(Retry())
    assert not is_serialization_conflict(ValueError("x"))
    locked = sa.exc.OperationalError("UPDATE", {}, Exception("database is locked"))
    assert is_serialization_conflict(locked)
    other = sa.exc.OperationalError("SELECT", {}, Exception("no such table: x"))
    assert not is_serialization_conflict(other)

    class PgError(Exception):
        pgcode = "40001"

    assert is_serialization_conflict(sa.exc.OperationalError("UPDATE", {}, PgError("could not serialize access")))
