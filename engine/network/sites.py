"""A network on disk, its cross-site surgeons, and who owns a cross-site surgeon's day.

A network folder holds ``network.toml`` (``name``, ``[[sites]] name, folder``) and one hospital
folder per site; a plain hospital folder is a network of one site. Each site keeps its own rooms,
blocks, staffing, PACU beds and settings, so a site can be validated, forecast and planned on its
own (:mod:`engine.network.plan` runs one Dask task per site).

Cross-site surgeons (the same ``surgeon_id`` in two sites' surgeons.csv) are the only link
between sites. They are kept in one room at a time *before* the tasks start: for every horizon
date on which such a surgeon has work (blocks or booked cases) at more than one site, one site owns
that surgeon-day (:func:`owners`) -- the site with the most of the surgeon's block minutes that
day, then the most booked minutes, then the first in network order. The other sites leave that
surgeon's cases of that day out of their plan (they are listed as deferred, with the reason), and
plans keep cases on their booked dates, so the tasks stay independent and no two sites can place
the surgeon on the same day. The union of the site schedules is checked afterwards by the
independent checker (:func:`engine.network.plan.check_network`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd
from pydantic import BaseModel, ConfigDict

from engine.config import read_toml, validate
from engine.contract import UNKNOWN_SURGEON
from engine.errors import InputError
from engine.network.generate import NETWORK_FILE


class _SiteEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    folder: str


class _NetworkFile(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    sites: list[_SiteEntry]


@dataclass(frozen=True)
class Site:
    """One site of a network: its display name and hospital folder."""

    name: str
    folder: Path

    @property
    def hospital_id(self) -> str:
        """The site's id in the store and the model registry: its folder's name."""
        return Path(self.folder).resolve().name


@dataclass(frozen=True)
class Network:
    name: str
    root: Path
    sites: tuple[Site, ...]

    @property
    def is_single(self) -> bool:
        return not (self.root / NETWORK_FILE).exists()


def load_network(root: str | Path) -> Network:
    """The network at ``root`` (``network.toml``), or a plain hospital folder as a one-site network."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"folder {str(root)!r} does not exist", file=str(root))
    path = root / NETWORK_FILE
    if not path.exists():
        return Network(root.resolve().name, root, (Site(root.resolve().name, root),))
    doc = validate(_NetworkFile, read_toml(path), str(path))
    if not doc.sites:
        raise InputError("lists no sites", file=str(path), column="sites")
    seen: set[str] = set()
    sites = []
    for i, s in enumerate(doc.sites):
        if s.name in seen:
            raise InputError(f"site {s.name!r} is listed twice", file=str(path), column=f"sites.{i}.name")
        seen.add(s.name)
        sites.append(Site(s.name, root / s.folder))
    return Network(doc.name, root, tuple(sites))


def _read(folder: Path, fname: str, cols: Iterable[str]) -> pd.DataFrame:
    path = folder / fname
    if not path.exists():
        return pd.DataFrame(columns=list(cols))
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in cols:
        if c not in df.columns:
            df[c] = ""
    return df[list(cols)]


def cross_site_surgeons(network: Network) -> dict[str, tuple[str, ...]]:
    """{surgeon_id: the sites whose surgeons.csv list them} for surgeons at two or more sites."""
    where: dict[str, list[str]] = {}
    for site in network.sites:
        for sid in _read(site.folder, "surgeons.csv", ["surgeon_id"])["surgeon_id"].str.strip().unique():
            if sid and sid != UNKNOWN_SURGEON:
                where.setdefault(sid, []).append(site.name)
    return {s: tuple(v) for s, v in where.items() if len(v) > 1}


def _minutes(hhmm: pd.Series) -> pd.Series:
    parts = hhmm.str.split(":", expand=True)
    return pd.to_numeric(parts[0], errors="coerce") * 60 + pd.to_numeric(parts[1], errors="coerce")


OWNED_COLUMNS = ["surgeon_id", "date", "owner", "sites", "block_minutes", "booked_minutes"]


def _no_owned(cols: list[str] = OWNED_COLUMNS) -> pd.DataFrame:
    """An empty owners/released frame with the columns' real types: an untyped empty ``date`` column
    (object) cannot be merged with the cases' dates, which failed every one-site network plan."""
    kinds = {"date": "datetime64[ns]", "block_minutes": "float64", "booked_minutes": "float64"}
    return pd.DataFrame({c: pd.Series(dtype=kinds.get(c, object)) for c in cols})


def owners(network: Network, dates: list[pd.Timestamp]) -> pd.DataFrame:
    """``surgeon_id, date, owner, sites, block_minutes, booked_minutes``: one row per cross-site
    surgeon-day of ``dates`` with work at more than one site, and the site that owns it (see the
    module docstring). Empty when no surgeon works at two sites on one of those days."""
    cols = OWNED_COLUMNS
    shared = cross_site_surgeons(network)
    if not shared:
        return _no_owned()
    day_set = {pd.Timestamp(d).normalize() for d in dates}
    rows = []
    for order, site in enumerate(network.sites):
        b = _read(site.folder, "blocks.csv", ["date", "surgeon_id", "start_time", "end_time"])
        b = b[b["surgeon_id"].isin(list(shared))]
        if len(b):
            d = pd.to_datetime(b["date"], errors="coerce")
            mins = (_minutes(b["end_time"]) - _minutes(b["start_time"])).clip(lower=0)
            part = pd.DataFrame({"surgeon_id": b["surgeon_id"].to_numpy(), "date": d.to_numpy(),
                                 "block_minutes": mins.fillna(0).to_numpy(), "booked_minutes": 0.0})
            rows.append(part.assign(site=site.name, order=order))
        c = _read(site.folder, "cases.csv", ["surgery_date", "status", "surgeon_id", "booked_minutes"])
        c = c[(c["status"] == "booked") & c["surgeon_id"].isin(list(shared))]
        if len(c):
            part = pd.DataFrame({"surgeon_id": c["surgeon_id"].to_numpy(),
                                 "date": pd.to_datetime(c["surgery_date"], errors="coerce").to_numpy(),
                                 "block_minutes": 0.0,
                                 "booked_minutes": pd.to_numeric(c["booked_minutes"], errors="coerce").fillna(1.0).to_numpy()})
            rows.append(part.assign(site=site.name, order=order))
    if not rows:
        return _no_owned()
    work = pd.concat(rows, ignore_index=True)
    work = work[work["date"].isin(day_set)]
    per = work.groupby(["surgeon_id", "date", "site", "order"], as_index=False)[["block_minutes", "booked_minutes"]].sum()
    n_sites = per.groupby(["surgeon_id", "date"])["site"].transform("nunique")
    per = per[n_sites > 1]
    if per.empty:
        return _no_owned()
    per = per.sort_values(["surgeon_id", "date", "block_minutes", "booked_minutes", "order"],
                          ascending=[True, True, False, False, True], kind="stable")
    out = per.groupby(["surgeon_id", "date"], as_index=False).agg(
        owner=("site", "first"), sites=("site", lambda s: ";".join(sorted(s))),
        block_minutes=("block_minutes", "sum"), booked_minutes=("booked_minutes", "sum"))
    return out[cols].reset_index(drop=True)


def released(owned: pd.DataFrame, site: str) -> pd.DataFrame:
    """The surgeon-days ``site`` must leave to their owner: ``surgeon_id, date, owner``."""
    if owned.empty:
        return _no_owned(["surgeon_id", "date", "owner"])
    mine = owned[owned["sites"].str.split(";").map(lambda s: site in s) & (owned["owner"] != site)]
    return mine[["surgeon_id", "date", "owner"]].reset_index(drop=True)
