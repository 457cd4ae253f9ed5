"""The store: validated hospitals in a relational database through SQLAlchemy Core.

SQLite (a file beside the project) is the embedded default; ``DATABASE_URL`` points the same
code at PostgreSQL. Only portable constructs are used: plain column types and plain
DELETE/INSERT/SELECT/UPDATE, nothing dialect-specific. A hospital is replaced inside one
transaction, so a failed save leaves the previous version intact.

Nothing is lost by a replacement: the version a save replaces is kept (its rows move, by a plain
UPDATE of ``hospital_id``, to an archive id ``<id>@v<N>`` whose ``hospitals`` row names the
hospital in ``archived_of``). :meth:`Store.list_versions` lists a hospital's versions,
:meth:`Store.restore_version` makes an earlier one current again (keeping the one it replaces), and
:meth:`Store.list_hospitals` shows only current versions.

Each table keeps the contract columns typed, a ``row_no`` that restores the row order, and the
file's extra columns as JSON (``extra_json``); their names and order are kept per hospital, so
a saved hospital loads back equal to what was saved.
"""
from __future__ import annotations

import io
import json
import logging
import os
import threading
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from engine import contract as C
from engine.errors import Problem
from engine.hospital import FileReport, Hospital, LoadedHospital, QualityReport, quarantine_frame
from engine.settings import HospitalSettings

log = logging.getLogger(__name__)

DEFAULT_SQLITE_PATH = Path(__file__).resolve().parent.parent / "var" / "store.sqlite"

_SA_TYPES = {
    "str": sa.Text,
    "list": sa.Text,
    "time": sa.String(5),
    "date": sa.Date,
    "datetime": sa.DateTime,
    "float": sa.Float,
    "int": sa.Float,
}

# table name -> column kinds of its contract file
_TABLES = {
    "cases": C.CASES_COLUMNS,
    "rooms": C.ROOMS_COLUMNS,
    "surgeons": C.SURGEONS_COLUMNS,
    "blocks": C.BLOCKS_COLUMNS,
    "staffing": C.STAFFING_COLUMNS,
}


def _now() -> datetime:
    """UTC now, naive (portable DateTime columns)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def default_url() -> str:
    """``DATABASE_URL`` when set, else the embedded SQLite file."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def _metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "hospitals",
        md,
        sa.Column("hospital_id", sa.String(200), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("settings_json", sa.Text, nullable=False),
        sa.Column("quality_json", sa.Text, nullable=False),
        sa.Column("layout_json", sa.Text, nullable=False),
        sa.Column("loaded_at", sa.DateTime, nullable=False),
        # Versions: the current row has archived_of NULL; a kept earlier version of hospital H has
        # archived_of = H, its own version number and when it was replaced.
        sa.Column("version", sa.Integer),
        sa.Column("archived_of", sa.String(200), index=True),
        sa.Column("replaced_at", sa.DateTime),
    )
    for table, kinds in _TABLES.items():
        cols = [
            sa.Column("hospital_id", sa.String(200), sa.ForeignKey("hospitals.hospital_id"), nullable=False, index=True),
            sa.Column("row_no", sa.Integer, nullable=False),
        ]
        cols += [sa.Column(c, _SA_TYPES[k]) for c, k in kinds.items()]
        cols.append(sa.Column("extra_json", sa.Text))
        sa.Table(table, md, *cols)
    # The queries pages and the API make (migration 0002): a day's cases, a surgeon's history.
    cases = md.tables["cases"]
    sa.Index("ix_cases_hospital_date", cases.c.hospital_id, cases.c.surgery_date)
    sa.Index("ix_cases_hospital_surgeon", cases.c.hospital_id, cases.c.surgeon_id, cases.c.surgery_date)
    blocks = md.tables["blocks"]
    sa.Index("ix_blocks_hospital_date", blocks.c.hospital_id, blocks.c.date)
    sa.Table(
        "quarantine",
        md,
        sa.Column("hospital_id", sa.String(200), sa.ForeignKey("hospitals.hospital_id"), nullable=False, index=True),
        sa.Column("row_no", sa.Integer, nullable=False),
        sa.Column("file", sa.Text),
        sa.Column("row", sa.Integer),
        sa.Column("case_id", sa.Text),
        sa.Column("column", sa.Text),
        sa.Column("reason", sa.Text),
    )
    return md


def store_metadata() -> sa.MetaData:
    """The store's own tables (hospitals, their five tables, quarantine)."""
    return _metadata()


def application_metadata() -> sa.MetaData:
    """Every table the application keeps in the store's database: the store's own, governance and audit
    (engine/governance/audit_store.py), the API's idempotent events (engine/api/service.py), the pilot's
    shadow runs, monitored days, canaries and incidents (engine/pilot/). The target of the Alembic
    migrations (migrations/; revision 0003 brought in all but the store's own). Each module still
    declares its tables and creates them itself on first use (``create_all``): they stay the one
    definition, copied here, not duplicated."""
    from engine.api.service import _events_table
    from engine.governance.audit_store import governance_metadata
    from engine.pilot.canary import CANARIES
    from engine.pilot.incident import INCIDENTS
    from engine.pilot.store import MONITOR_DAYS, SHADOW_RUNS

    md = _metadata()
    for table in governance_metadata().tables.values():
        table.to_metadata(md)
    _events_table(md)
    for table in (SHADOW_RUNS, MONITOR_DAYS, CANARIES, INCIDENTS):
        table.to_metadata(md)
    return md


# ---------------------------------------------------------------- settings as JSON
# TOML has dates and times that JSON has not: tag them so settings load back as they were.


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return {"$datetime": o.isoformat()}
    if isinstance(o, date):
        return {"$date": o.isoformat()}
    if isinstance(o, time):
        return {"$time": o.isoformat()}
    return str(o)


def _json_hook(d: dict[str, Any]) -> Any:
    if len(d) == 1:
        (k, v), = d.items()
        if k == "$datetime":
            return datetime.fromisoformat(v)
        if k == "$date":
            return date.fromisoformat(v)
        if k == "$time":
            return time.fromisoformat(v)
    return d


# ---------------------------------------------------------------- frames <-> rows


def _records(df: pd.DataFrame, kinds: dict[str, str], hospital_id: str) -> list[dict[str, Any]]:
    """Frame -> insert rows: contract columns typed, unknown columns kept as JSON."""
    extra_cols = [c for c in df.columns if c not in kinds]
    out = df.reset_index(drop=True).copy()
    for col, kind in kinds.items():
        if col not in out.columns:
            out[col] = None
        elif kind == "date":
            out[col] = pd.to_datetime(out[col]).dt.date
        elif kind == "datetime":
            out[col] = pd.Series(pd.to_datetime(out[col]).dt.to_pydatetime(), index=out.index, dtype=object)
    out = out.astype(object).where(out.notna(), None)
    rows = []
    for i, rec in enumerate(out.to_dict("records")):
        row = {c: rec[c] for c in kinds}
        for c, kind in kinds.items():
            v = row[c]
            if v is None:
                continue
            if kind == "datetime" and isinstance(v, pd.Timestamp):
                row[c] = v.to_pydatetime()
            elif kind in ("float", "int"):
                row[c] = float(v)
            elif kind in ("str", "list", "time"):
                row[c] = str(v)
        extras = {c: rec[c] for c in extra_cols if rec[c] is not None}
        row["extra_json"] = json.dumps(extras, default=str) if extras else None
        row["hospital_id"] = hospital_id
        row["row_no"] = i
        rows.append(row)
    return rows


def _frame(rows: list[sa.Row], kinds: dict[str, str], extra_cols: list[str]) -> pd.DataFrame:
    df = pd.DataFrame([dict(r._mapping) for r in rows], columns=["hospital_id", "row_no", *kinds, "extra_json"])
    extras = df["extra_json"].map(json.loads, na_action="ignore")
    df = df.drop(columns=["hospital_id", "row_no", "extra_json"])
    for col, kind in kinds.items():
        if kind in ("date", "datetime"):
            df[col] = pd.to_datetime(df[col]).astype("datetime64[us]")
        elif kind in ("float", "int"):
            df[col] = pd.to_numeric(df[col]).astype("float64")
        elif kind == "list":
            df[col] = df[col].fillna("").astype("str")
        else:
            df[col] = df[col].astype("str")
    names = list(extra_cols)
    for d in extras.dropna():
        names += [k for k in d if k not in names]  # extras of stores written without a layout
    for col in names:
        df[col] = extras.map(lambda d, c=col: d.get(c) if isinstance(d, dict) else None).astype("str")
    return df


def _quality_to_json(report: QualityReport) -> str:
    return json.dumps(
        {
            name: {
                "file": f.file,
                "rows": f.n_rows,
                "quarantined": f.n_quarantined,
                "rejected": f.rejected,
                "warnings": f.warnings,
                "problems": [[p.file, p.row, p.column, p.problem] for p in f.problems],
            }
            for name, f in report.files.items()
        }
    )


def _quality_from_json(data: dict[str, Any], quarantine: pd.DataFrame) -> QualityReport:
    files = {
        name: FileReport(
            v.get("file", name),
            n_rows=v["rows"],
            n_quarantined=v["quarantined"],
            rejected=v["rejected"],
            warnings=list(v["warnings"]),
            problems=[Problem(*p) for p in v.get("problems", [])],
        )
        for name, v in data.items()
    }
    return QualityReport(files=files, quarantine=quarantine)


# ---------------------------------------------------------------- engines, pooling, bulk loading

_ENGINES: dict[str, sa.Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str) -> sa.Engine:
    """One engine (one connection pool) per URL in a process, shared by every ``Store(url)``.

    PostgreSQL: a ``QueuePool`` of ``DATABASE_POOL_SIZE`` (default 5) connections plus
    ``DATABASE_MAX_OVERFLOW`` (default 10), checked before use (``pool_pre_ping``, so a restarted
    server costs one retry, not an error) and recycled after 30 minutes. SQLite keeps SQLAlchemy's
    default pool.
    """
    with _ENGINES_LOCK:
        eng = _ENGINES.get(url)
        if eng is None:
            kw: dict[str, Any] = {}
            if sa.engine.make_url(url).get_backend_name() == "postgresql":
                kw = {"pool_size": int(os.environ.get("DATABASE_POOL_SIZE", "5")),
                      "max_overflow": int(os.environ.get("DATABASE_MAX_OVERFLOW", "10")),
                      "pool_pre_ping": True, "pool_recycle": 1800}
            eng = _ENGINES[url] = sa.create_engine(url, **kw)
        return eng


def _copy_value(v: Any) -> str:
    r"""One field of a PostgreSQL ``COPY ... CSV NULL '\N'`` line: NULL unquoted, text quoted."""
    if v is None:
        return r"\N"
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return repr(v)
    return '"' + str(v).replace('"', '""') + '"'


def _bulk_insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` in bulk: ``COPY FROM STDIN`` on PostgreSQL (psycopg2's ``copy_expert``),
    else one executemany (SQLAlchemy batches it: "insertmanyvalues")."""
    if not rows:
        return
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg2":
        conn.execute(table.insert(), rows)
        return
    cols = [c.name for c in table.columns]
    buf = io.StringIO()
    for r in rows:
        buf.write(",".join(_copy_value(r.get(c)) for c in cols))
        buf.write("\n")
    buf.seek(0)
    quote = conn.dialect.identifier_preparer.quote
    sql = (f"COPY {quote(table.name)} ({', '.join(quote(c) for c in cols)}) FROM STDIN "
           "WITH (FORMAT csv, NULL '\\N')")
    with conn.connection.cursor() as cur:  # the DBAPI connection of this transaction
        cur.copy_expert(sql, buf)


class Store:
    """A hospital store at ``url`` (default :func:`default_url`)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        if self.url.startswith("sqlite:///") and len(self.url) > len("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = _engine(self.url)
        self.md = _metadata()
        self.md.create_all(self.engine)
        self._upgrade_schema()

    def _upgrade_schema(self) -> None:
        """Add columns that a store made by an earlier version lacks (nullable, so old rows stay).

        Plain ``ALTER TABLE ... ADD COLUMN``, which every supported database understands.
        """
        insp = sa.inspect(self.engine)
        quote = self.engine.dialect.identifier_preparer.quote
        for name, table in self.md.tables.items():
            have = {c["name"] for c in insp.get_columns(name)}
            for col in table.columns:
                if col.name in have:
                    continue
                ddl = f"ALTER TABLE {quote(name)} ADD COLUMN {quote(col.name)} {col.type.compile(dialect=self.engine.dialect)}"
                try:
                    with self.engine.begin() as conn:
                        conn.execute(sa.text(ddl))
                    log.info("store %s: added column %s.%s", self.url_safe, name, col.name)
                except sa.exc.DBAPIError:
                    # Another process may have added it meanwhile; fail only if it is still absent.
                    if col.name not in {c["name"] for c in sa.inspect(self.engine).get_columns(name)}:
                        raise
        # Indexes added since a store was made (create_all only creates those of new tables).
        for table in self.md.tables.values():
            have = {ix["name"] for ix in sa.inspect(self.engine).get_indexes(table.name)}
            for ix in table.indexes:
                if ix.name not in have:
                    try:
                        ix.create(self.engine, checkfirst=True)
                    except sa.exc.DBAPIError:
                        if ix.name not in {i["name"] for i in sa.inspect(self.engine).get_indexes(table.name)}:
                            raise

    @property
    def url_safe(self) -> str:
        """The URL without a password, for messages."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the pool's idle connections (the engine stays usable; it is shared per URL)."""
        self.engine.dispose()

    def save_hospital(self, loaded: LoadedHospital, name: str | None = None) -> str:
        """Store a validated hospital in one transaction; one with the same id is replaced and
        kept as an earlier version (:meth:`list_versions`, :meth:`restore_version`).

        The id is ``name``, else the source folder's name, else the hospital's name.
        """
        h = loaded.hospital
        hid = name or Path(h.source).name or h.name
        t = self.md.tables
        frames = h.tables()
        layout = {table: [c for c in frames[table].columns if c not in kinds] for table, kinds in _TABLES.items()}
        with self.engine.begin() as conn:
            head = self._head(conn, hid)
            if head is not None:
                self._archive(conn, hid, head)
            conn.execute(
                t["hospitals"].insert(),
                {
                    "hospital_id": hid,
                    "name": h.name,
                    "source": h.source,
                    "settings_json": json.dumps(h.settings.to_dict(), default=_json_default),
                    "quality_json": _quality_to_json(loaded.report),
                    "layout_json": json.dumps({"extra_columns": layout}),
                    "loaded_at": _now(),
                    "version": self._next_version(conn, hid),
                },
            )
            for table, kinds in _TABLES.items():
                _bulk_insert(conn, t[table], _records(frames[table], kinds, hid))
            q = loaded.report.quarantine
            if len(q):
                qrows = q.reset_index(drop=True).astype(object).where(q.notna().to_numpy(), None).to_dict("records")
                for i, r in enumerate(qrows):
                    r["hospital_id"] = hid
                    r["row_no"] = i
                    r["row"] = int(r["row"]) if r["row"] is not None else None
                    for c in ("file", "case_id", "column", "reason"):
                        r[c] = None if r[c] is None else str(r[c])
                conn.execute(t["quarantine"].insert(), qrows)
        log.info("stored hospital %s (%d cases)", hid, len(h.cases))
        return hid

    def _delete(self, conn: sa.Connection, hospital_id: str) -> int:
        t = self.md.tables
        for table in [*_TABLES, "quarantine"]:
            conn.execute(t[table].delete().where(t[table].c.hospital_id == hospital_id))
        return conn.execute(t["hospitals"].delete().where(t["hospitals"].c.hospital_id == hospital_id)).rowcount

    # ------------------------------------------------------------ versions

    def _head(self, conn: sa.Connection, hospital_id: str) -> sa.Row | None:
        """The current ``hospitals`` row of ``hospital_id`` (None when there is none)."""
        t = self.md.tables["hospitals"]
        return conn.execute(
            sa.select(t).where(t.c.hospital_id == hospital_id, t.c.archived_of.is_(None))
        ).first()

    def _next_version(self, conn: sa.Connection, hospital_id: str) -> int:
        t = self.md.tables["hospitals"]
        top = conn.execute(
            sa.select(sa.func.max(t.c.version)).where(
                sa.or_(t.c.hospital_id == hospital_id, t.c.archived_of == hospital_id))
        ).scalar()
        return int(top or 0) + 1

    def _move_rows(self, conn: sa.Connection, from_id: str, to_id: str) -> None:
        """Re-label every data row of ``from_id`` as ``to_id`` (whose hospitals row must exist)."""
        t = self.md.tables
        for table in [*_TABLES, "quarantine"]:
            conn.execute(t[table].update().where(t[table].c.hospital_id == from_id).values(hospital_id=to_id))

    def _archive(self, conn: sa.Connection, hospital_id: str, head: sa.Row) -> int:
        """Keep the current version of ``hospital_id`` as an earlier version; returns its number."""
        t = self.md.tables["hospitals"]
        version = head._mapping["version"] or self._next_version(conn, hospital_id)  # stores made before versions
        archive_id = f"{hospital_id[:180]}@v{version}"
        row = dict(head._mapping)
        row.update(hospital_id=archive_id, archived_of=hospital_id, version=version, replaced_at=_now())
        conn.execute(t.insert(), row)
        self._move_rows(conn, hospital_id, archive_id)
        conn.execute(t.delete().where(t.c.hospital_id == hospital_id))
        log.info("kept version %d of hospital %s as %s", version, hospital_id, archive_id)
        return int(version)

    def list_versions(self, hospital_id: str) -> pd.DataFrame:
        """Every stored version of a hospital, newest first: ``version, current, name, source,
        loaded_at, replaced_at, n_cases`` (empty when the hospital is unknown)."""
        t = self.md.tables
        h = t["hospitals"]
        cols = ["version", "current", "name", "source", "loaded_at", "replaced_at", "n_cases"]
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(h.c.hospital_id, h.c.version, h.c.archived_of, h.c.name, h.c.source, h.c.loaded_at,
                          h.c.replaced_at)
                .where(sa.or_(sa.and_(h.c.hospital_id == hospital_id, h.c.archived_of.is_(None)),
                              h.c.archived_of == hospital_id))
            ).all()
            ids = [r.hospital_id for r in rows]
            counts = dict(conn.execute(
                sa.select(t["cases"].c.hospital_id, sa.func.count())
                .where(t["cases"].c.hospital_id.in_(ids)).group_by(t["cases"].c.hospital_id)
            ).all()) if ids else {}
        out = pd.DataFrame(
            [{"version": int(r.version or 0), "current": r.archived_of is None, "name": r.name, "source": r.source,
              "loaded_at": r.loaded_at, "replaced_at": r.replaced_at, "n_cases": int(counts.get(r.hospital_id, 0))}
             for r in rows], columns=cols)
        return out.sort_values("version", ascending=False, kind="stable").reset_index(drop=True)

    def _archived_row(self, conn: sa.Connection, hospital_id: str, version: int) -> sa.Row:
        h = self.md.tables["hospitals"]
        row = conn.execute(sa.select(h).where(h.c.archived_of == hospital_id, h.c.version == int(version))).first()
        if row is None:
            raise KeyError(f"hospital {hospital_id!r} has no earlier version {version} in the store")
        return row

    def load_version(self, hospital_id: str, version: int) -> LoadedHospital:
        """An earlier (kept) version of a hospital, or the current one. KeyError if absent."""
        with self.engine.connect() as conn:
            head = self._head(conn, hospital_id)
            if head is not None and head._mapping["version"] == int(version):
                archive_id = hospital_id
            else:
                archive_id = self._archived_row(conn, hospital_id, version)._mapping["hospital_id"]
        return self.load_hospital(archive_id)

    def restore_version(self, hospital_id: str, version: int) -> int:
        """Make an earlier version of a hospital current again, in one transaction. The version it
        replaces is kept in turn, so a restore can itself be undone. Returns the number of the version
        that was current before (0 when there was none). KeyError for an unknown version,
        ValueError when that version is already current."""
        h = self.md.tables["hospitals"]
        with self.engine.begin() as conn:
            head = self._head(conn, hospital_id)
            if head is not None and head._mapping["version"] == int(version):
                raise ValueError(f"version {version} of hospital {hospital_id!r} is already the current one")
            old = self._archived_row(conn, hospital_id, version)
            replaced = self._archive(conn, hospital_id, head) if head is not None else 0
            row = dict(old._mapping)
            archive_id = row["hospital_id"]
            # loaded_at = now: it is the version's stamp for caches and for HOSPITAL_DIR's re-ingest check.
            row.update(hospital_id=hospital_id, archived_of=None, replaced_at=None, loaded_at=_now())
            conn.execute(h.insert(), row)
            self._move_rows(conn, archive_id, hospital_id)
            conn.execute(h.delete().where(h.c.hospital_id == archive_id))
        log.info("restored version %s of hospital %s (version %s kept)", version, hospital_id, replaced)
        return replaced

    def delete_hospital(self, hospital_id: str) -> bool:
        """Remove a hospital, its earlier versions and all their rows; False when there was none."""
        h = self.md.tables["hospitals"]
        with self.engine.begin() as conn:
            archived = conn.execute(sa.select(h.c.hospital_id).where(h.c.archived_of == hospital_id)).scalars().all()
            for aid in archived:
                self._delete(conn, aid)
            return self._delete(conn, hospital_id) > 0

    def upsert_cases(self, hospital_id: str, cases: pd.DataFrame, surgeons: pd.DataFrame | None = None,
                     quarantine: pd.DataFrame | None = None) -> None:
        """Add or replace (by ``case_id``) cases of a stored hospital in one transaction, in place:
        an incremental feed, not a new version. A replaced case keeps its place in the row order;
        new cases go last. ``surgeons`` (when given) replaces the surgeons table; ``quarantine`` rows
        are added to the hospital's; ``loaded_at`` moves to now. KeyError when the hospital is absent."""
        t = self.md.tables
        kinds = _TABLES["cases"]
        with self.engine.begin() as conn:
            head = self._head(conn, hospital_id)
            if head is None:
                raise KeyError(f"no hospital {hospital_id!r} in the store")
            layout = json.loads(head._mapping["layout_json"] or "{}").get("extra_columns", {})
            extra = list(layout.get("cases", []))
            extra += [c for c in cases.columns if c not in kinds and c not in extra]
            ids = [str(i) for i in cases["case_id"]]
            have: dict[str, int] = {}
            for chunk in range(0, len(ids), 500):  # IN lists of a portable size
                part = ids[chunk:chunk + 500]
                have.update(conn.execute(sa.select(t["cases"].c.case_id, t["cases"].c.row_no).where(
                    t["cases"].c.hospital_id == hospital_id, t["cases"].c.case_id.in_(part))).all())
                conn.execute(t["cases"].delete().where(t["cases"].c.hospital_id == hospital_id,
                                                       t["cases"].c.case_id.in_(part)))
            top = conn.execute(sa.select(sa.func.max(t["cases"].c.row_no))
                               .where(t["cases"].c.hospital_id == hospital_id)).scalar()
            nxt = max([int(top) if top is not None else -1, *have.values()]) + 1
            rows = _records(cases, kinds, hospital_id)
            for r in rows:
                if r["case_id"] in have:
                    r["row_no"] = have[r["case_id"]]
                else:
                    r["row_no"], nxt = nxt, nxt + 1
            _bulk_insert(conn, t["cases"], rows)
            if surgeons is not None:
                conn.execute(t["surgeons"].delete().where(t["surgeons"].c.hospital_id == hospital_id))
                srows = _records(surgeons, _TABLES["surgeons"], hospital_id)
                if srows:
                    conn.execute(t["surgeons"].insert(), srows)
            if quarantine is not None and len(quarantine):
                start = conn.execute(sa.select(sa.func.max(t["quarantine"].c.row_no))
                                     .where(t["quarantine"].c.hospital_id == hospital_id)).scalar()
                start = -1 if start is None else int(start)
                qrows = quarantine.reset_index(drop=True).astype(object).where(quarantine.notna().to_numpy(), None) \
                    .to_dict("records")
                for i, r in enumerate(qrows):
                    r["hospital_id"], r["row_no"] = hospital_id, start + 1 + i
                    r["row"] = int(r["row"]) if r["row"] is not None else None
                    for c in ("file", "case_id", "column", "reason"):
                        r[c] = None if r[c] is None else str(r[c])
                conn.execute(t["quarantine"].insert(), qrows)
            layout["cases"] = extra
            # The quality report counts the feed too: its new cases and the rows it set aside.
            quality = json.loads(head._mapping["quality_json"] or "{}")
            cq = quality.setdefault("cases.csv", {"file": "cases.csv", "rows": 0, "quarantined": 0, "rejected": False,
                                              "warnings": [], "problems": []})
            cq["rows"] = int(cq.get("rows", 0)) + sum(1 for r in rows if r["case_id"] not in have) \
                + (len(quarantine) if quarantine is not None else 0)
            cq["quarantined"] = int(cq.get("quarantined", 0)) + (len(quarantine) if quarantine is not None else 0)
            conn.execute(t["hospitals"].update().where(t["hospitals"].c.hospital_id == hospital_id)
                         .values(loaded_at=_now(), layout_json=json.dumps({"extra_columns": layout}),
                                 quality_json=json.dumps(quality)))
        log.info("upserted %d cases into hospital %s", len(cases), hospital_id)

    def list_hospitals(self) -> pd.DataFrame:
        """The current version of every stored hospital (earlier versions: :meth:`list_versions`)."""
        t = self.md.tables["hospitals"]
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.hospital_id, t.c.name, t.c.source, t.c.loaded_at)
                .where(t.c.archived_of.is_(None)).order_by(t.c.hospital_id)
            ).all()
        return pd.DataFrame([dict(r._mapping) for r in rows], columns=["hospital_id", "name", "source", "loaded_at"])

    def has_hospital(self, hospital_id: str) -> bool:
        """True when a current version of ``hospital_id`` is stored."""
        with self.engine.connect() as conn:
            return self._head(conn, hospital_id) is not None

    def current_version(self, hospital_id: str) -> int | None:
        """The current version number of a stored hospital (None when absent)."""
        with self.engine.connect() as conn:
            head = self._head(conn, hospital_id)
        return None if head is None else int(head._mapping["version"] or 1)

    def load_hospital(self, hospital_id: str) -> LoadedHospital:
        """Read a stored hospital back, with its quality report. KeyError if absent."""
        t = self.md.tables
        with self.engine.connect() as conn:
            head = conn.execute(sa.select(t["hospitals"]).where(t["hospitals"].c.hospital_id == hospital_id)).first()
            if head is None:
                raise KeyError(f"no hospital {hospital_id!r} in the store")
            layout = json.loads(head._mapping["layout_json"] or "{}").get("extra_columns", {})
            frames = {}
            for table, kinds in _TABLES.items():
                rows = conn.execute(
                    sa.select(t[table]).where(t[table].c.hospital_id == hospital_id).order_by(t[table].c.row_no)
                ).all()
                frames[table] = _frame(rows, kinds, layout.get(table, []))
            qrows = conn.execute(
                sa.select(t["quarantine"]).where(t["quarantine"].c.hospital_id == hospital_id).order_by(t["quarantine"].c.row_no)
            ).all()
        quarantine = quarantine_frame([{k: r._mapping[k] for k in ("file", "row", "case_id", "column", "reason")} for r in qrows])
        m = head._mapping
        hospital = Hospital(
            name=m["name"], settings=HospitalSettings.model_validate(json.loads(m["settings_json"], object_hook=_json_hook)),
            source=m["source"] or "", **frames
        )
        report = _quality_from_json(json.loads(m["quality_json"]), quarantine)
        return LoadedHospital(hospital, report)

    def _cases_where(self, hospital_id: str, *conds: Any) -> pd.DataFrame:
        t = self.md.tables
        c = t["cases"]
        with self.engine.connect() as conn:
            head = self._head(conn, hospital_id)
            if head is None:
                raise KeyError(f"no hospital {hospital_id!r} in the store")
            extra = json.loads(head._mapping["layout_json"] or "{}").get("extra_columns", {}).get("cases", [])
            rows = conn.execute(sa.select(c).where(c.c.hospital_id == hospital_id, *conds).order_by(c.c.row_no)).all()
        return _frame(rows, _TABLES["cases"], extra)

    def cases_on(self, hospital_id: str, day: date | str | pd.Timestamp) -> pd.DataFrame:
        """One day's cases of a stored hospital, in file order (index ``ix_cases_hospital_date``)."""
        d = pd.Timestamp(day).date()
        return self._cases_where(hospital_id, self.md.tables["cases"].c.surgery_date == d)

    def surgeon_history(self, hospital_id: str, surgeon_id: str) -> pd.DataFrame:
        """Every case of one surgeon at a stored hospital, in file order (``ix_cases_hospital_surgeon``)."""
        return self._cases_where(hospital_id, self.md.tables["cases"].c.surgeon_id == surgeon_id)
