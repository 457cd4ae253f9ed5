"""The store, on SQLite and on PostgreSQL: what is saved loads back equal, saves are atomic.

Every test runs on both databases. The PostgreSQL variant uses a schema of its own (dropped at
the end), so reruns and other users of the test database do not see each other; it is skipped
only when no PostgreSQL server answers.
"""
from __future__ import annotations

import contextlib
import re
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import engine.store as store_mod
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from engine.hospital import LoadedHospital, load_hospital
from engine.store import Store, application_metadata, default_url, store_metadata
from tests.conftest import pg_private_schema
from tests.minihospital import CASES_HEADER, SETTINGS, case_rows, write_mini_hospital

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def pg_schema_url(pg_url: str):
    """A fresh PostgreSQL schema for this test session, as a URL whose search_path points at it."""
    with pg_private_schema("store_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(db_url: str):
    s = Store(db_url)
    yield s
    s.close()


@pytest.fixture
def hid(store: Store):
    """A hospital id no other run uses; removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    store.delete_hospital(name)


def _rich_hospital(folder: Path) -> LoadedHospital:
    """The mini hospital with a quarantined row, extra columns and TOML dates in settings."""
    rows = case_rows()
    cells = rows[4].split(",")
    cells[1] = "2026-02-30"  # quarantined
    rows[4] = ",".join(cells)
    rows = [r + (f",bed {i}," if i % 2 else ",,x") for i, r in enumerate(rows)]
    write_mini_hospital(
        folder,
        cases_csv="\n".join([CASES_HEADER + ",bed,flag", *rows]) + "\n",
        settings_toml=SETTINGS + "review_date = 2027-02-01\nlast_sync = 2027-01-03T18:30:00\nnotes = { a = 1, b = [1.5, 2] }\n",
    )
    return load_hospital(folder)


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> LoadedHospital:
    loaded = _rich_hospital(tmp_path_factory.mktemp("rich") / "rich")
    assert loaded.report.n_quarantined == 1
    return loaded


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> LoadedHospital:
    """A different, smaller hospital: no blocks, no staffing, no quarantine."""
    folder = write_mini_hospital(tmp_path_factory.mktemp("plain") / "plain", case_rows()[:20])
    (folder / "blocks.csv").unlink()
    (folder / "staffing.csv").unlink()
    (folder / "settings.toml").write_text(SETTINGS.replace("Mini Test Hospital", "Plain Hospital"))
    return load_hospital(folder)


def assert_same(a: LoadedHospital, b: LoadedHospital) -> None:
    """Equal tables (dtypes, column order, row order), settings and quality report."""
    for name, df in a.hospital.tables().items():
        pd.testing.assert_frame_equal(getattr(b.hospital, name), df, check_exact=True, obj=name)
    assert b.hospital.settings == a.hospital.settings
    assert (b.hospital.name, b.hospital.source) == (a.hospital.name, a.hospital.source)
    pd.testing.assert_frame_equal(b.report.quarantine, a.report.quarantine, obj="quarantine")
    pd.testing.assert_frame_equal(b.report.summary(), a.report.summary(), obj="summary")
    assert b.report.n_quarantined == a.report.n_quarantined
    for fname, f in a.report.files.items():
        assert b.report.files[fname].problems == f.problems


def _count_rows(store: Store, hid: str) -> dict[str, int]:
    t = store.md.tables
    with store.engine.connect() as conn:
        return {
            name: conn.execute(sa.select(sa.func.count()).select_from(t[name]).where(t[name].c.hospital_id == hid)).scalar_one()
            for name in ("hospitals", "cases", "rooms", "surgeons", "blocks", "staffing", "quarantine")
        }


# --------------------------------------------------------------------------- tests


def test_round_trip_keeps_everything(store: Store, hid: str, rich: LoadedHospital) -> None:
    assert store.save_hospital(rich, name=hid) == hid
    back = store.load_hospital(hid)
    assert_same(rich, back)
    cases = back.hospital.cases
    assert list(cases.columns[-2:]) == ["bed", "flag"]  # extra columns kept, in file order
    assert str(cases["wheels_in"].dtype) == "datetime64[us]" and cases["booked_minutes"].dtype == "float64"
    assert back.hospital.settings.get("review_date").isoformat() == "2027-02-01"  # a TOML date stays a date
    q = back.report.quarantine
    assert q[["row", "case_id", "column"]].values.tolist() == [[5, "C0005", "surgery_date"]]


def test_round_trip_of_empty_tables(store: Store, hid: str, plain: LoadedHospital) -> None:
    store.save_hospital(plain, name=hid)
    back = store.load_hospital(hid)
    assert_same(plain, back)
    assert len(back.hospital.blocks) == 0 and len(back.report.quarantine) == 0


def test_saving_again_replaces_the_hospital(store: Store, hid: str, rich: LoadedHospital, plain: LoadedHospital) -> None:
    store.save_hospital(rich, name=hid)
    store.save_hospital(plain, name=hid)
    assert_same(plain, store.load_hospital(hid))
    counts = _count_rows(store, hid)
    assert counts == {"hospitals": 1, "cases": 20, "rooms": 3, "surgeons": 4, "blocks": 0, "staffing": 0, "quarantine": 0}


def test_failed_save_leaves_previous_version(
    store: Store, hid: str, rich: LoadedHospital, plain: LoadedHospital, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save_hospital(rich, name=hid)
    before = _count_rows(store, hid)
    real = store_mod._records

    def failing(df, kinds, hospital_id):
        if kinds is store_mod._TABLES["surgeons"]:  # after the delete and the cases insert
            raise RuntimeError("disk full")
        return real(df, kinds, hospital_id)

    monkeypatch.setattr(store_mod, "_records", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        store.save_hospital(plain, name=hid)
    monkeypatch.undo()
    assert _count_rows(store, hid) == before
    assert_same(rich, store.load_hospital(hid))


def test_list_has_and_delete(store: Store, hid: str, rich: LoadedHospital) -> None:
    assert not store.has_hospital(hid)
    with pytest.raises(KeyError, match=hid):
        store.load_hospital(hid)
    store.save_hospital(rich, name=hid)
    assert store.has_hospital(hid)
    listed = store.list_hospitals()
    assert list(listed.columns) == ["hospital_id", "name", "source", "loaded_at"]
    row = listed.set_index("hospital_id").loc[hid]
    assert row["name"] == "Mini Test Hospital" and row["source"] == rich.hospital.source
    assert store.delete_hospital(hid) is True
    assert not store.has_hospital(hid) and hid not in set(store.list_hospitals()["hospital_id"])
    assert store.delete_hospital(hid) is False


def test_default_id_is_the_folder_name(store: Store, rich: LoadedHospital) -> None:
    hid = store.save_hospital(rich)
    try:
        assert hid == Path(rich.hospital.source).name
        assert store.has_hospital(hid)
    finally:
        store.delete_hospital(hid)


def test_database_url_env_is_honoured(db_url: str, store: Store, hid: str, rich: LoadedHospital, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert default_url() == db_url
    env_store = Store()
    try:
        assert env_store.url == db_url
        env_store.save_hospital(rich, name=hid)
    finally:
        env_store.close()
    assert store.has_hospital(hid)  # the store named by URL sees what the env-configured one saved
    monkeypatch.delenv("DATABASE_URL")
    assert default_url().startswith("sqlite:///") and default_url().endswith("store.sqlite")


@pytest.fixture
def empty_db_url(request: pytest.FixtureRequest, db_url: str, tmp_path: Path):
    """A database with no tables yet: a new SQLite file, or a new PostgreSQL schema."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        return
    with pg_private_schema("store_fresh") as url:
        yield url


def test_store_made_by_an_older_version_is_upgraded(empty_db_url: str, rich: LoadedHospital) -> None:
    """Tables from before ``row_no`` and ``layout_json`` get the columns; their rows still load."""
    new = ("row_no", "layout_json", "version", "archived_of", "replaced_at")
    old_md = sa.MetaData()
    for table in store_mod._metadata().tables.values():
        sa.Table(table.name, old_md, *[c._copy() for c in table.columns if c.name not in new])
    engine = sa.create_engine(empty_db_url)
    old_md.create_all(engine)
    t = old_md.tables
    with engine.begin() as conn:
        conn.execute(t["hospitals"].insert(), {"hospital_id": "old", "name": "Old", "source": "",
                                               "settings_json": '{"turnover_minutes": 30, "pacu_minutes": 75, "prime_time": "07:30-15:30"}',
                                               "quality_json": "{}", "loaded_at": pd.Timestamp("2026-01-01").to_pydatetime()})
        conn.execute(t["rooms"].insert(), [{"hospital_id": "old", "room_id": "OR1", "site": "Main", "capabilities": "",
                                            "open_time": "07:30", "close_time": "17:00", "extra_json": '{"floor": "2"}'}])
    engine.dispose()
    store = Store(empty_db_url)
    try:
        insp = sa.inspect(store.engine)
        assert "layout_json" in {c["name"] for c in insp.get_columns("hospitals")}
        assert "row_no" in {c["name"] for c in insp.get_columns("cases")}
        old = store.load_hospital("old")
        assert old.hospital.rooms[["room_id", "floor"]].values.tolist() == [["OR1", "2"]]
        store.save_hospital(rich, name="new")
        assert_same(rich, store.load_hospital("new"))
        again = Store(empty_db_url)  # opening it again changes nothing
        assert again.has_hospital("old") and again.has_hospital("new")
        again.close()
        # A hospital stored before versions existed is version 1 once replaced, and restorable.
        store.save_hospital(rich, name="old")
        assert store.list_versions("old")[["version", "current"]].values.tolist() == [[2, True], [1, False]]
        store.restore_version("old", 1)
        assert store.load_hospital("old").hospital.rooms["room_id"].tolist() == ["OR1"]
    finally:
        store.close()


def test_no_sqlite_only_constructs_in_store() -> None:
    source = Path(store_mod.__file__).read_text()
    checks = [("sqlite_", False), ("INSERT OR", True), ("PRAGMA", True), ("AUTOINCREMENT", True), ("dialects.sqlite", False)]
    bad = []
    for n, line in enumerate(source.splitlines(), 1):
        if "DEFAULT_SQLITE_PATH" in line or "sqlite:///" in line:
            continue  # the embedded default URL
        for token, any_case in checks:
            hit = re.search(re.escape(token), line, re.IGNORECASE if any_case else 0)
            if hit:
                bad.append(f"line {n}: {line.strip()}")
    assert not bad, "SQLite-only constructs in engine/store.py:\n" + "\n".join(bad)


# --------------------------------------------------------------------------- versions (nothing lost by a save)


def test_replacing_keeps_the_previous_version_and_lists_it(store: Store, hid: str, rich: LoadedHospital,
                                                           plain: LoadedHospital) -> None:
    store.save_hospital(rich, name=hid)
    assert store.current_version(hid) == 1
    store.save_hospital(plain, name=hid)
    assert store.current_version(hid) == 2
    versions = store.list_versions(hid)
    assert versions[["version", "current", "name", "n_cases"]].values.tolist() == [
        [2, True, "Plain Hospital", 20], [1, False, "Mini Test Hospital", len(rich.hospital.cases)]]
    assert versions.loc[1, "replaced_at"] is not None and pd.isna(versions.loc[0, "replaced_at"])
    assert_same(rich, store.load_version(hid, 1))  # the replaced data is all there
    assert_same(plain, store.load_hospital(hid))
    # Earlier versions are not hospitals of their own in the listing.
    assert [i for i in store.list_hospitals()["hospital_id"] if i.startswith(hid)] == [hid]


def test_restore_brings_back_the_previous_data_and_can_be_undone(store: Store, hid: str, rich: LoadedHospital,
                                                                 plain: LoadedHospital) -> None:
    store.save_hospital(rich, name=hid)
    store.save_hospital(plain, name=hid)
    assert store.restore_version(hid, 1) == 2  # version 2 was current and is kept
    assert_same(rich, store.load_hospital(hid))
    assert store.list_versions(hid)[["version", "current"]].values.tolist() == [[2, False], [1, True]]
    assert _count_rows(store, hid)["cases"] == len(rich.hospital.cases)
    store.restore_version(hid, 2)
    assert_same(plain, store.load_hospital(hid))
    store.save_hospital(rich, name=hid)  # a new save after restores gets a new number
    assert store.list_versions(hid)["version"].tolist() == [3, 2, 1]
    with pytest.raises(ValueError, match="already the current"):
        store.restore_version(hid, 3)
    with pytest.raises(KeyError, match="no earlier version 7"):
        store.restore_version(hid, 7)


def test_failed_restore_changes_nothing(store: Store, hid: str, rich: LoadedHospital, plain: LoadedHospital,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store.save_hospital(rich, name=hid)
    store.save_hospital(plain, name=hid)
    real = Store._move_rows
    calls = []

    def failing(self, conn, from_id, to_id):
        calls.append(from_id)
        if len(calls) == 2:  # after the current version was archived
            raise RuntimeError("connection lost")
        return real(self, conn, from_id, to_id)

    monkeypatch.setattr(Store, "_move_rows", failing)
    with pytest.raises(RuntimeError, match="connection lost"):
        store.restore_version(hid, 1)
    monkeypatch.undo()
    assert_same(plain, store.load_hospital(hid))
    assert store.list_versions(hid)[["version", "current"]].values.tolist() == [[2, True], [1, False]]


def test_delete_removes_the_earlier_versions_too(store: Store, hid: str, rich: LoadedHospital,
                                                 plain: LoadedHospital) -> None:
    store.save_hospital(rich, name=hid)
    store.save_hospital(plain, name=hid)
    assert store.delete_hospital(hid)
    assert len(store.list_versions(hid)) == 0
    assert _count_rows(store, f"{hid}@v1")["cases"] == 0


# --------------------------------------------------------------------------- guarded imports (engine.ingest)


def _roles_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grant: bool) -> None:
    """data/roles.toml with import_data given to the coordinator (grant) or absent altogether."""
    from tests.dashboard.test_data_page import roles_with_import

    if grant:
        roles_with_import(tmp_path, monkeypatch)
        return
    text = (Path(store_mod.__file__).parents[1] / "data" / "roles.toml").read_text()
    text = re.sub(r'^import_data\s*=.*\n', "", text, flags=re.M)
    text = re.sub(r'"import_data"\s*,\s*|,\s*"import_data"', "", text)
    (tmp_path / "roles.toml").write_text(text)
    monkeypatch.setenv("OR_ROLES_FILE", str(tmp_path / "roles.toml"))


@pytest.fixture
def export_files(tmp_path: Path):
    from tests.foreign_exports import ISO_MAPPING, make_export, write_export

    src = write_export(make_export("iso", weeks=2), tmp_path / "theatre.csv")
    mp = tmp_path / "theatre.yaml"
    mp.write_text(ISO_MAPPING)
    return src, mp


def test_import_over_a_stored_hospital_needs_confirmation_and_a_role(
    store: Store, hid: str, rich: LoadedHospital, export_files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.governance import User, read_log
    from engine.ingest import ReplaceNotConfirmed, import_and_store

    _roles_file(tmp_path, monkeypatch, grant=True)
    src, mp = export_files
    store.save_hospital(rich, name=hid)
    coordinator, viewer = User("cora", "coordinator"), User("vic", "viewer")
    with pytest.raises(PermissionError, match="may not"):
        import_and_store(src, mp, tmp_path / "out", store, hid, viewer, replace=True)
    with pytest.raises(ReplaceNotConfirmed, match="already stored"):
        import_and_store(src, mp, tmp_path / "out", store, hid, coordinator)
    assert not (tmp_path / "out").exists()  # refused before anything was read or written
    assert_same(rich, store.load_hospital(hid))
    done = import_and_store(src, mp, tmp_path / "out", store, hid, coordinator, replace=True)
    assert (done.version, done.replaced_version) == (2, 1)
    assert_same(rich, store.load_version(hid, 1))
    log = read_log(store, hid)
    last = log.iloc[-1]
    assert last["actor"] == "cora" and last["payload"]["event"] == "hospital_replaced"
    assert last["payload"]["source"] == "theatre.csv" and last["payload"]["replaced_version"] == 1


def test_without_an_import_data_action_nobody_may_import(
    store: Store, hid: str, export_files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.governance import User
    from engine.ingest import import_and_store

    _roles_file(tmp_path, monkeypatch, grant=False)
    src, mp = export_files
    with pytest.raises(PermissionError, match="import_data"):
        import_and_store(src, mp, tmp_path / "out", store, hid, User("cora", "coordinator"))
    assert not store.has_hospital(hid)


def test_restore_through_the_engine_needs_the_role_and_is_audited(
    store: Store, hid: str, rich: LoadedHospital, plain: LoadedHospital, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.governance import User, read_log
    from engine.ingest import restore_version

    _roles_file(tmp_path, monkeypatch, grant=True)
    store.save_hospital(rich, name=hid)
    store.save_hospital(plain, name=hid)
    with pytest.raises(PermissionError):
        restore_version(store, hid, 1, User("vic", "viewer"))
    assert restore_version(store, hid, 1, User("cora", "coordinator")) == 2
    assert_same(rich, store.load_hospital(hid))
    assert read_log(store, hid).iloc[-1]["payload"] == {"event": "hospital_restored", "version": 1, "replaced_version": 2}


# --------------------------------------------------------------------------- incremental feeds (ingest --append)

INC_HEADER = "case_id,surgery_date,status,service_line,procedure_code,surgeon_id,room_id,wheels_in,wheels_out"


def _increment(path: Path, *rows: str) -> Path:
    path.write_text("\n".join([INC_HEADER, *rows]) + "\n")
    return path


@pytest.fixture
def fed(store: Store, hid: str, tmp_path: Path):
    """The mini hospital as a folder and in the store under ``hid``."""
    from engine.ingest import ingest_folder

    folder = write_mini_hospital(tmp_path / "feed")
    ingest_folder(folder, store, name=hid)
    return folder


def test_append_adds_and_updates_by_case_id_and_is_idempotent(store: Store, hid: str, fed: Path, tmp_path: Path) -> None:
    from engine.ingest import append_cases

    before = store.load_hospital(hid).hospital.cases
    inc = _increment(tmp_path / "feed-0104.csv",
                     "C0062,2027-01-04,completed,Orthopedics,27130,S1,OR2,2027-01-04T07:35,2027-01-04T09:50",  # done
                     "N0001,2027-01-06,booked,Urology,55866,S4,,,",  # new booking
                     "N0002,2027-01-06,booked,Urology,55866,S9,,,")  # new booking by a new surgeon
    r = append_cases(fed, inc, store, name=hid)
    assert (r.added, r.updated, r.unchanged, len(r.quarantine)) == (2, 1, 0, 0)
    assert r.new_surgeons == ["S9"]
    after = store.load_hospital(hid).hospital
    cases = after.cases.set_index("case_id")
    assert len(cases) == len(before) + 2
    assert cases.at["C0062", "status"] == "completed" and str(cases.at["C0062", "wheels_out"]) == "2027-01-04 09:50:00"
    assert cases.at["C0062", "procedure_name"] == "Total hip arthroplasty"  # columns the increment lacks are kept
    assert list(after.cases["case_id"]).index("C0062") == list(before["case_id"]).index("C0062")  # keeps its place
    assert "S9" in set(after.surgeons["surgeon_id"])
    folder_cases = load_hospital(fed).hospital.cases  # the folder follows the feed too
    assert set(folder_cases["case_id"]) == set(after.cases["case_id"])
    stamp = store.list_hospitals().set_index("hospital_id").at[hid, "loaded_at"]
    mtime = (fed / "cases.csv").stat().st_mtime
    again = append_cases(fed, inc, store, name=hid)  # the same file again: nothing changes
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3) and not again.changed
    assert store.list_hospitals().set_index("hospital_id").at[hid, "loaded_at"] == stamp
    assert (fed / "cases.csv").stat().st_mtime == mtime
    assert len(store.list_versions(hid)) == 1  # a feed updates in place, it is not a new version


def test_append_quarantines_a_status_going_backwards(store: Store, hid: str, fed: Path, tmp_path: Path) -> None:
    from engine.ingest import append_cases

    inc = _increment(tmp_path / "inc.csv",
                     "N0001,2027-01-06,booked,Urology,55866,S4,,,",
                     "C0001,2026-12-01,booked,Orthopedics,27130,S1,OR2,,")  # completed -> booked
    quarantined_before = store.load_hospital(hid).report.n_quarantined
    r = append_cases(fed, inc, store, name=hid)
    assert store.load_hospital(hid).report.n_quarantined == quarantined_before + 1  # the report counts the feed
    q = r.quarantine
    assert q[["file", "row", "case_id", "column"]].values.tolist() == [["inc.csv", 2, "C0001", "status"]]
    assert "already completed" in q.at[0, "reason"]
    assert store.load_hospital(hid).hospital.cases.set_index("case_id").at["C0001", "status"] == "completed"
    assert r.added == 1
    stored_q = store.load_hospital(hid).report.quarantine
    assert ("inc.csv", 2) in set(zip(stored_q["file"], stored_q["row"]))


def test_append_quarantines_an_unknown_room(store: Store, hid: str, fed: Path, tmp_path: Path) -> None:
    from engine.ingest import append_cases

    inc = _increment(tmp_path / "inc.csv",
                     "N0001,2027-01-06,booked,Urology,55866,S4,OR9,,",
                     "N0002,2027-01-06,booked,Urology,55866,S4,OR1,,")
    r = append_cases(fed, inc, store, name=hid)
    assert r.quarantine[["row", "case_id", "column"]].values.tolist() == [[1, "N0001", "room_id"]]
    ids = set(store.load_hospital(hid).hospital.cases["case_id"])
    assert "N0002" in ids and "N0001" not in ids


def test_append_quarantines_a_duplicate_case_id_with_conflicting_data(store: Store, hid: str, fed: Path,
                                                                       tmp_path: Path) -> None:
    from engine.ingest import append_cases

    inc = _increment(tmp_path / "inc.csv",
                     "N0001,2027-01-06,booked,Urology,55866,S4,,,",
                     "N0001,2027-01-07,booked,Urology,55866,S4,,,",  # same id, another date
                     "N0002,2027-01-06,booked,Urology,55866,S4,,,",
                     "N0002,2027-01-06,booked,Urology,55866,S4,,,")  # an identical resend: harmless
    r = append_cases(fed, inc, store, name=hid)
    q = r.quarantine.sort_values("row")
    assert sorted(zip(q["row"], q["case_id"])) == [(1, "N0001"), (2, "N0001"), (4, "N0002")]
    ids = set(store.load_hospital(hid).hospital.cases["case_id"])
    assert "N0001" not in ids and "N0002" in ids


def test_cli_ingest_append(store: Store, hid: str, fed: Path, tmp_path: Path, db_url: str) -> None:
    import json

    from engine.cli import main

    inc = _increment(tmp_path / "inc.csv", "N0001,2027-01-06,booked,Urology,55866,S4,,,")
    out = tmp_path / "r.json"
    assert main(["ingest", "--data", str(fed), "--db", db_url, "--name", hid, "--append", str(inc), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["added"] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("surgery_date,status\n2027-01-06,booked\n")
    assert main(["ingest", "--data", str(fed), "--db", db_url, "--name", hid, "--append", str(bad)]) == 2


# --------------------------------------------------------------------------- Alembic migrations, query indexes (issue 21)

MIGRATIONS_REPO = Path(__file__).resolve().parents[2]
NEW_IN_0002 = {"ix_cases_hospital_date", "ix_cases_hospital_surgeon", "ix_blocks_hospital_date"}


def _config(url: str) -> Config:
    cfg = Config(str(MIGRATIONS_REPO / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_REPO / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _diff(url: str, metadata: sa.MetaData | None = None) -> list:
    """What the database at ``url`` lacks or has more than ``metadata`` (default: every application table)."""
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata if metadata is not None else application_metadata())
    eng.dispose()
    return diff


def _schema(url: str) -> dict:
    """Every table as the database reports it: columns (name, type, nullable), key, uniques, indexes."""
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    insp = sa.inspect(eng)
    out = {}
    for t in set(insp.get_table_names()) - {"alembic_version"}:
        out[t] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)],
            "pk": insp.get_pk_constraint(t)["constrained_columns"],
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(t)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t)),
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"]) for f in insp.get_foreign_keys(t)),
        }
    eng.dispose()
    return out


@pytest.fixture
def empty_pg(pg_url: str):
    with pg_private_schema("alembic_test") as url:
        yield url


def test_upgrade_head_on_an_empty_schema_gives_todays_metadata(empty_pg: str) -> None:
    command.upgrade(_config(empty_pg), "head")
    assert _diff(empty_pg) == []
    eng = sa.create_engine(empty_pg, poolclass=sa.pool.NullPool)
    with eng.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar() == "0003"
        names = {ix["name"] for t in ("cases", "blocks") for ix in sa.inspect(conn).get_indexes(t)}
    eng.dispose()
    assert NEW_IN_0002 <= names


def test_base_revision_is_the_schema_before_migrations(empty_pg: str) -> None:
    command.upgrade(_config(empty_pg), "0001")
    diff = _diff(empty_pg, store_metadata())
    # the base lacks exactly the indexes revision 0002 adds, nothing else
    assert sorted(d[1].name for d in diff if d[0] == "add_index") == sorted(NEW_IN_0002)
    assert all(d[0] == "add_index" for d in diff)
    command.downgrade(_config(empty_pg), "base")
    eng = sa.create_engine(empty_pg, poolclass=sa.pool.NullPool)
    assert set(sa.inspect(eng).get_table_names()) == {"alembic_version"}
    eng.dispose()


def test_a_store_made_at_the_base_gains_the_indexes(empty_pg: str) -> None:
    command.upgrade(_config(empty_pg), "0001")
    Store(empty_pg)  # Store() adds what an older store lacks
    assert _diff(empty_pg, store_metadata()) == []


GOVERNANCE_AND_API = {"gov_audit_log", "gov_audit_head", "gov_schedule_versions", "gov_overrides", "api_events",
                      "pilot_shadow_runs", "pilot_monitor_days", "gov_canaries", "gov_incidents"}


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_upgrade_head_gives_the_tables_create_all_gives(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Alembic at head and each module's own create_all (what a database got before 0003) agree, table by table."""
    from engine.api.service import _events_table
    from engine.governance.audit_store import ensure_tables
    from engine.pilot.canary import CANARIES
    from engine.pilot.incident import INCIDENTS
    from engine.pilot.store import MONITOR_DAYS, SHADOW_RUNS

    with contextlib.ExitStack() as stack:
        if kind == "postgresql":
            request.getfixturevalue("pg_url")  # skips when no server answers
            migrated, created = (stack.enter_context(pg_private_schema(p)) for p in ("alembic_head", "create_all"))
        else:
            migrated, created = f"sqlite:///{tmp_path / 'migrated.sqlite'}", f"sqlite:///{tmp_path / 'created.sqlite'}"
        command.upgrade(_config(migrated), "head")
        Store(created).close()
        eng = sa.create_engine(created, poolclass=sa.pool.NullPool)
        ensure_tables(eng)
        events_md = sa.MetaData()
        _events_table(events_md)
        events_md.create_all(eng)
        for table in (SHADOW_RUNS, MONITOR_DAYS, CANARIES, INCIDENTS):
            table.metadata.create_all(eng)  # what each module runs on first use
        eng.dispose()
        want, got = _schema(created), _schema(migrated)
        assert GOVERNANCE_AND_API <= set(want)
        assert sorted(got) == sorted(want)
        for table in want:
            assert got[table] == want[table], table
        assert _diff(migrated) == []
        command.downgrade(_config(migrated), "0002")
        assert set(_schema(migrated)) == set(store_metadata().tables)


def test_day_and_surgeon_queries(tmp_path: Path) -> None:
    from engine.ingest import ingest_folder
    from tests.minihospital import case_rows, write_mini_hospital

    folder = write_mini_hospital(tmp_path / "mini", case_rows())
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    hid, loaded = ingest_folder(folder, store)
    cases = loaded.hospital.cases
    day = cases["surgery_date"].iloc[0]
    got = store.cases_on(hid, day)
    assert list(got["case_id"]) == list(cases.loc[cases["surgery_date"] == day, "case_id"])
    sid = cases["surgeon_id"].iloc[0]
    hist = store.surgeon_history(hid, sid)
    assert list(hist["case_id"]) == list(cases.loc[cases["surgeon_id"] == sid, "case_id"]) and len(hist)
    with pytest.raises(KeyError):
        store.cases_on("nobody", day)
