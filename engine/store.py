"""The store: validated hospitals in a relational database through SQLAlchemy Core.

SQLite (a file beside the project) is the embedded default; ``DATABASE_URL`` points the same
code at PostgreSQL. Only portable constructs are used: plain column types, no SQLite pragmas,
no ``INSERT OR REPLACE``; a hospital is replaced inside one transaction (delete, then insert),
so a failed save leaves the previous version intact.
"""
from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from engine import contract as C
from engine.hospital import FileReport, Hospital, LoadedHospital, QualityReport

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

# table name -> (contract file, column kinds)
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
        sa.Column("loaded_at", sa.DateTime, nullable=False),
    )
    for table, kinds in _TABLES.items():
        cols = [sa.Column("hospital_id", sa.String(200), sa.ForeignKey("hospitals.hospital_id"), nullable=False, index=True)]
        cols += [sa.Column(c, _SA_TYPES[k]) for c, k in kinds.items()]
        cols.append(sa.Column("extra_json", sa.Text))
        sa.Table(table, md, *cols)
    sa.Table(
        "quarantine",
        md,
        sa.Column("hospital_id", sa.String(200), sa.ForeignKey("hospitals.hospital_id"), nullable=False, index=True),
        sa.Column("file", sa.Text),
        sa.Column("row", sa.Integer),
        sa.Column("case_id", sa.Text),
        sa.Column("column", sa.Text),
        sa.Column("reason", sa.Text),
    )
    return md


def _records(df: pd.DataFrame, kinds: dict[str, str], hospital_id: str) -> list[dict[str, Any]]:
    """Frame -> insert rows: contract columns typed, unknown columns kept as JSON."""
    extra_cols = [c for c in df.columns if c not in kinds]
    out = df.copy()
    for col, kind in kinds.items():
        if col not in out.columns:
            out[col] = None
        elif kind == "date":
            out[col] = pd.to_datetime(out[col]).dt.date
        elif kind == "datetime":
            out[col] = pd.to_datetime(out[col]).dt.to_pydatetime()
    out = out.astype(object).where(out.notna(), None)
    rows = []
    for rec in out.to_dict("records"):
        row = {c: rec[c] for c in kinds}
        for c, kind in kinds.items():
            v = row[c]
            if v is not None and kind == "datetime" and isinstance(v, pd.Timestamp):
                row[c] = v.to_pydatetime()
        extras = {c: rec[c] for c in extra_cols if rec[c] is not None}
        row["extra_json"] = json.dumps(extras, default=str) if extras else None
        row["hospital_id"] = hospital_id
        rows.append(row)
    return rows


def _frame(rows: list[sa.Row], kinds: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame([dict(r._mapping) for r in rows], columns=["hospital_id", *kinds, "extra_json"])
    extras = df["extra_json"].dropna().map(json.loads)
    df = df.drop(columns=["hospital_id", "extra_json"])
    for col, kind in kinds.items():
        if kind in ("date", "datetime"):
            df[col] = pd.to_datetime(df[col]).astype("datetime64[us]")
        elif kind in ("float", "int"):
            df[col] = pd.to_numeric(df[col]).astype("float64")
        elif kind == "list":
            df[col] = df[col].fillna("").astype("str")
        else:
            df[col] = df[col].astype("str")
    if len(extras):
        extra_df = pd.DataFrame(list(extras.values), index=extras.index)
        df = df.join(extra_df)
    return df


class Store:
    """A hospital store at ``url`` (default :func:`default_url`)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(self.url, future=True)
        self.md = _metadata()
        self.md.create_all(self.engine)

    @property
    def url_safe(self) -> str:
        """The URL without a password, for messages."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def save_hospital(self, loaded: LoadedHospital, name: str | None = None) -> str:
        """Store a validated hospital (replacing one with the same id) in one transaction."""
        h = loaded.hospital
        hid = name or Path(h.source).name or h.name
        t = self.md.tables
        with self.engine.begin() as conn:
            for table in [*_TABLES, "quarantine"]:
                conn.execute(t[table].delete().where(t[table].c.hospital_id == hid))
            conn.execute(t["hospitals"].delete().where(t["hospitals"].c.hospital_id == hid))
            conn.execute(
                t["hospitals"].insert(),
                {
                    "hospital_id": hid,
                    "name": h.name,
                    "source": h.source,
                    "settings_json": json.dumps(h.settings, default=str),
                    "quality_json": json.dumps(loaded.report.to_dict()["files"]),
                    "loaded_at": datetime.now(timezone.utc).replace(tzinfo=None),
                },
            )
            for table, kinds in _TABLES.items():
                rows = _records(getattr(h, table), kinds, hid)
                if rows:
                    conn.execute(t[table].insert(), rows)
            q = loaded.report.quarantine
            if len(q):
                qrows = q.astype(object).where(q.notna(), None).to_dict("records")
                for r in qrows:
                    r["hospital_id"] = hid
                    r["row"] = int(r["row"]) if r["row"] is not None else None
                    r["case_id"] = None if r["case_id"] is None else str(r["case_id"])
                conn.execute(t["quarantine"].insert(), qrows)
        log.info("stored hospital %s (%d cases)", hid, len(h.cases))
        return hid

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
            frames = {}
            for table, kinds in _TABLES.items():
                rows = conn.execute(sa.select(t[table]).where(t[table].c.hospital_id == hospital_id)).all()
                frames[table] = _frame(rows, kinds)
            qrows = conn.execute(
                sa.select(t["quarantine"]).where(t["quarantine"].c.hospital_id == hospital_id)
            ).all()
        quarantine = pd.DataFrame(
            [dict(r._mapping) for r in qrows], columns=["hospital_id", "file", "row", "case_id", "column", "reason"]
        ).drop(columns=["hospital_id"])
        m = head._mapping
        hospital = Hospital(name=m["name"], settings=json.loads(m["settings_json"]), source=m["source"] or "", **frames)
        report = _quality_from_json(json.loads(m["quality_json"]), quarantine)
        return LoadedHospital(hospital, report)


def _quality_from_json(data: dict[str, Any], quarantine: pd.DataFrame) -> QualityReport:
    files = {
        name: FileReport(name, n_rows=v["rows"], n_quarantined=v["quarantined"], rejected=v["rejected"], warnings=v["warnings"])
        for name, v in data.items()
    }
    return QualityReport(files=files, quarantine=quarantine)
