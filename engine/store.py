"""The store: validated hospitals in a relational database through SQLAlchemy Core.

SQLite (a file beside the project) is the embedded default; ``DATABASE_URL`` points the same
code at PostgreSQL. Only portable constructs are used: plain column types and plain
DELETE/INSERT/SELECT, nothing dialect-specific. A hospital is replaced inside one transaction
(delete, then insert), so a failed save leaves the previous version intact.

Each table keeps the contract columns typed, a ``row_no`` that restores the row order, and the
file's extra columns as JSON (``extra_json``); their names and order are kept per hospital, so
a saved hospital loads back equal to what was saved.
"""
from __future__ import annotations

import json
import logging
import os
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from engine import contract as C
from engine.errors import Problem
from engine.hospital import FileReport, Hospital, LoadedHospital, QualityReport, quarantine_frame

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
    )
    for table, kinds in _TABLES.items():
        cols = [
            sa.Column("hospital_id", sa.String(200), sa.ForeignKey("hospitals.hospital_id"), nullable=False, index=True),
            sa.Column("row_no", sa.Integer, nullable=False),
        ]
        cols += [sa.Column(c, _SA_TYPES[k]) for c, k in kinds.items()]
        cols.append(sa.Column("extra_json", sa.Text))
        sa.Table(table, md, *cols)
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


class Store:
    """A hospital store at ``url`` (default :func:`default_url`)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        if self.url.startswith("sqlite:///") and len(self.url) > len("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(self.url)
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

    @property
    def url_safe(self) -> str:
        """The URL without a password, for messages."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def save_hospital(self, loaded: LoadedHospital, name: str | None = None) -> str:
        """Store a validated hospital (replacing one with the same id) in one transaction.

        The id is ``name``, else the source folder's name, else the hospital's name.
        """
        h = loaded.hospital
        hid = name or Path(h.source).name or h.name
        t = self.md.tables
        frames = h.tables()
        layout = {table: [c for c in frames[table].columns if c not in kinds] for table, kinds in _TABLES.items()}
        with self.engine.begin() as conn:
            self._delete(conn, hid)
            conn.execute(
                t["hospitals"].insert(),
                {
                    "hospital_id": hid,
                    "name": h.name,
                    "source": h.source,
                    "settings_json": json.dumps(h.settings, default=_json_default),
                    "quality_json": _quality_to_json(loaded.report),
                    "layout_json": json.dumps({"extra_columns": layout}),
                    "loaded_at": datetime.now(timezone.utc).replace(tzinfo=None),
                },
            )
            for table, kinds in _TABLES.items():
                rows = _records(frames[table], kinds, hid)
                if rows:
                    conn.execute(t[table].insert(), rows)
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

    def delete_hospital(self, hospital_id: str) -> bool:
        """Remove a hospital and all its rows; False when there was none."""
        with self.engine.begin() as conn:
            return self._delete(conn, hospital_id) > 0

    def list_hospitals(self) -> pd.DataFrame:
        t = self.md.tables["hospitals"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.hospital_id, t.c.name, t.c.source, t.c.loaded_at).order_by(t.c.hospital_id)).all()
        return pd.DataFrame([dict(r._mapping) for r in rows], columns=["hospital_id", "name", "source", "loaded_at"])

    def has_hospital(self, hospital_id: str) -> bool:
        t = self.md.tables["hospitals"]
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.c.hospital_id).where(t.c.hospital_id == hospital_id)).first() is not None

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
            name=m["name"], settings=json.loads(m["settings_json"], object_hook=_json_hook), source=m["source"] or "", **frames
        )
        report = _quality_from_json(json.loads(m["quality_json"]), quarantine)
        return LoadedHospital(hospital, report)
