"""Shared fixtures: the repository root, a mini hospital folder, the test PostgreSQL server."""
from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.minihospital import write_mini_hospital

REPO_ROOT = Path(__file__).resolve().parent.parent
# The audit chain is keyed (engine/governance/audit.py): every test, and every process a test starts,
# gets a test key and its own checkpoint folder (never the developer's var/).
if not (os.environ.get("OR_AUDIT_KEY") or os.environ.get("OR_AUDIT_KEY_FILE")):
    os.environ["OR_AUDIT_KEY"] = "test-audit-key-not-a-secret-0123456789"
if not os.environ.get("OR_AUDIT_CHECKPOINT_DIR"):
    import tempfile

    os.environ["OR_AUDIT_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="or-audit-checkpoints-")
# `plan` and `replay` audit their recommendation in the default store: a test that names no store
# writes to a temporary one, never to the developer's var/store.sqlite.
if not os.environ.get("DATABASE_URL"):
    import tempfile

    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='or-test-store-')}/store.sqlite"
PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")

_pg_status: dict[str, str | None] = {}


def pg_unavailable_reason() -> str | None:
    """None when a server answers at the test PostgreSQL address, else why not.

    Only "nobody listens" skips: a server that answers but refuses the login or lacks the
    database makes the tests fail, so a broken set-up is not mistaken for a missing one.
    """
    if "reason" not in _pg_status:
        import socket

        from sqlalchemy.engine import make_url

        url = make_url(PG_URL)
        host, port = url.host or "127.0.0.1", url.port or 5432
        try:
            socket.create_connection((host, port), timeout=3).close()
            _pg_status["reason"] = None
        except OSError as exc:
            _pg_status["reason"] = f"no PostgreSQL server answers at {host}:{port} ({exc.strerror or exc})"
    return _pg_status["reason"]


def pytest_collection_modifyitems(config, items) -> None:
    """Groups for pytest-xdist's ``--dist loadgroup`` (``make test``): a test file stays on one worker,
    so its module fixtures are made once; the browser tests share one worker, so one server."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            path = item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group("browser" if path.startswith("tests/browser/") else path))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def mini_hospital(tmp_path: Path) -> Path:
    """A fresh copy of the valid mini hospital folder (tests may damage it)."""
    return write_mini_hospital(tmp_path / "mini")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test PostgreSQL URL; skips the test when no server answers."""
    reason = pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return PG_URL


@contextlib.contextmanager
def pg_private_schema(prefix: str):
    """A fresh PostgreSQL schema, yielded as a URL whose search_path points at it; dropped after.

    Tests share the server's `test` database, so each session works in its own schema."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
