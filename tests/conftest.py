"""Shared fixtures: the repository root, a mini hospital folder, the test PostgreSQL server."""
from __future__ import annotations

import contextlib
import os
import re
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


# How ``make test`` (``pytest -n 2 --dist loadgroup``) spreads the suite over two workers. pytest-xdist 3.8's
# loadgroup no longer groups anything under pytest 9.2 (it renames node ids through a field pytest no
# longer reads: pytest-xdist issue 1386), so the work units are made here, from each test's node id:
# - the browser tests: one unit (one Streamlit server and one trained model for all of them);
# - a test file that defines a module-, class- or package-scoped fixture (or whose conftest.py does): one
#   unit, so the fixture is made once;
# - every other test: a unit of its own, so both workers stay busy to the end.
# Units run costliest first (a long test started last leaves the other worker idle); the cost is a rough
# guess in seconds, for ordering only: an AppTest or browser journey (tests/dashboard, tests/browser) runs
# pages, plans and simulations; a test marked slow counts more again.
_HEAVY, _LIGHT = 30.0, 1.0
_SHARED_FIXTURE = re.compile(r"""scope\s*=\s*(["'](module|class|package)["']|[A-Za-z_])""")
_shares: dict[Path, bool] = {}


def _defines_shared_fixture(path: Path) -> bool:
    if path not in _shares:
        try:
            _shares[path] = bool(_SHARED_FIXTURE.search(path.read_text(encoding="utf-8")))
        except OSError:
            _shares[path] = False
    return _shares[path]


def work_unit(nodeid: str) -> str:
    """The unit of work (see above) that a test's node id belongs to."""
    path = nodeid.split("::")[0].split("@")[0]
    if path.startswith("tests/browser/"):
        return "browser"
    file = REPO_ROOT / path
    folders = [d for d in file.parents if d == REPO_ROOT / "tests" or REPO_ROOT / "tests" in d.parents]
    if _defines_shared_fixture(file) or any(_defines_shared_fixture(d / "conftest.py") for d in folders):
        return path
    return nodeid


def _cost(item) -> float:
    path = item.nodeid.split("::")[0]
    cost = _HEAVY if path.startswith(("tests/dashboard/", "tests/browser/")) else _LIGHT
    return cost + (_HEAVY if item.get_closest_marker("slow") is not None else 0.0)  # slow AppTests first of all


def pytest_collection_modifyitems(config, items) -> None:
    """Costliest work unit first, each unit's tests together and in file order."""
    unit = {item.nodeid: work_unit(item.nodeid) for item in items}
    cost: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        cost[unit[item.nodeid]] = cost.get(unit[item.nodeid], 0.0) + _cost(item)
        first.setdefault(unit[item.nodeid], i)
    items.sort(key=lambda it: (-cost[unit[it.nodeid]], first[unit[it.nodeid]]))


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # optional: `-p no:xdist` runs without it
def pytest_xdist_make_scheduler(config, log):
    """For ``--dist loadgroup``: the units above, handed out in collection order (costliest first)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the collection's order, not "most tests first"
    return UnitScheduling(config, log)


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
