"""A seeded network of hospitals: ``generate --sites N``.

Each site is a whole demo hospital (:func:`engine.generator.generate_hospital`: its main OR
suite and its ambulatory suite, rooms, surgeons, blocks, staffing, PACU beds and two years of
history), in its own folder ``<out>/<slug>/``, with ids made unique across the network
(``<CODE>-C000001``, ``<CODE>-OR01``, ``<CODE>-ASC01``, ``<CODE>-S001``). Site 0 is drawn with the
network's own seed, so its cases are exactly those of ``generate --seed S``; site k with a seed
derived from ``(seed, k)``. ``network.toml`` at the top lists the sites.

Surgeons working at two sites: for each site k >= 1 a share of its surgeons
(``NetworkParams.shared_surgeon_share``) are the same people as surgeons of site k-1 of the same
service line, chosen first among those whose weekly block days do not meet (a surgeon who works
at two hospitals usually does so on different days); the rest keep blocks at both sites on some
weekdays, which is what :mod:`engine.network.sites` resolves before planning.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.generator import GeneratorParams, generate_hospital, write_frames
from engine.io import atomic_write_folder

logger = logging.getLogger(__name__)

NETWORK_FILE = "network.toml"
# Campus names of generated networks (site k >= len: "Site<k+1>").
CAMPUS_NAMES = ("Ashford", "Bramley", "Carrow", "Dunmore", "Elmstead", "Fairholt", "Glenbrook", "Harwood",
                "Ivybridge", "Kingsmere", "Larchfield", "Marlow")


def campus_name(k: int) -> str:
    return CAMPUS_NAMES[k] if k < len(CAMPUS_NAMES) else f"Site{k + 1}"


@dataclass(frozen=True)
class NetworkParams:
    """A generated network: ``sites`` hospitals drawn like ``base`` (rooms per site, history, seed)."""

    sites: int = 1
    base: GeneratorParams = field(default_factory=GeneratorParams)
    shared_surgeon_share: float = 0.10
    name: str = "Demo Health Network"

    def __post_init__(self) -> None:
        if not isinstance(self.sites, (int, np.integer)) or isinstance(self.sites, bool) or self.sites < 1:
            raise ValueError(f"NetworkParams.sites must be an integer >= 1, got {self.sites!r}")
        if not 0.0 <= self.shared_surgeon_share <= 0.5:
            raise ValueError(f"NetworkParams.shared_surgeon_share must be between 0 and 0.5, got {self.shared_surgeon_share!r}")

    def site_params(self, k: int) -> GeneratorParams:
        """Site k's generator parameters: the base ones, with a seed derived from (seed, k) for k >= 1."""
        if k == 0:
            return replace(self.base, hospital_name=f"{campus_name(0)} Hospital")
        seed = int(np.random.SeedSequence([self.base.seed, k]).generate_state(1)[0])
        return replace(self.base, seed=seed, hospital_name=f"{campus_name(k)} Hospital")


def site_code(k: int) -> str:
    return campus_name(k)[:3].upper()


def site_slug(k: int) -> str:
    return campus_name(k).lower()


def _relabel(frames: dict[str, Any], k: int) -> dict[str, Any]:
    """Make site k's ids unique in the network and name its suites after the campus."""
    code, name = site_code(k), campus_name(k)
    main_site, amb = frames["rooms.csv"]["site"].iloc[0], f"{name} ASC"
    site_map = {main_site: name}
    for s in frames["rooms.csv"]["site"].unique():
        site_map.setdefault(s, amb)

    def room(r: Any) -> Any:
        if not isinstance(r, str):
            return r
        suite, _, num = r.partition("-OR")
        return f"{code}-OR{num}" if suite == main_site.upper() else f"{code}-ASC{num}"

    def pre(v: Any) -> Any:
        return f"{code}-{v}" if isinstance(v, str) else v

    out = dict(frames)
    rooms = frames["rooms.csv"].copy()
    rooms["room_id"] = rooms["room_id"].map(room)
    rooms["site"] = rooms["site"].map(site_map)
    cases = frames["cases.csv"].copy()
    cases["case_id"] = cases["case_id"].map(pre)
    cases["surgeon_id"] = cases["surgeon_id"].map(pre)
    cases["room_id"] = cases["room_id"].map(room)
    cases["site"] = cases["site"].map(lambda s: site_map.get(s, s) if isinstance(s, str) else s)
    surgeons = frames["surgeons.csv"].copy()
    surgeons["surgeon_id"] = surgeons["surgeon_id"].map(pre)
    surgeons["home_site"] = surgeons["home_site"].map(site_map)
    blocks = frames["blocks.csv"].copy()
    blocks["room_id"] = blocks["room_id"].map(room)
    blocks["surgeon_id"] = blocks["surgeon_id"].map(pre)
    truth = frames["truth.csv"].copy()
    truth["case_id"] = truth["case_id"].map(pre)
    settings = {**frames["settings.toml"], "network": f"site {k + 1}"}
    out.update({"rooms.csv": rooms, "cases.csv": cases, "surgeons.csv": surgeons, "blocks.csv": blocks,
                "truth.csv": truth, "settings.toml": settings})
    return out


def _block_days(frames: dict[str, Any]) -> dict[str, frozenset[int]]:
    b = frames["blocks.csv"].dropna(subset=["surgeon_id"])
    wd = pd.to_datetime(b["date"]).dt.day_of_week
    return {s: frozenset(g) for s, g in wd.groupby(b["surgeon_id"].to_numpy())}


def _share_surgeons(prev: dict[str, Any], cur: dict[str, Any], share: float, rng: np.random.Generator,
                    prev_code: str) -> dict[str, str]:
    """{surgeon of ``cur`` -> the surgeon of ``prev`` who is the same person} (same service line;
    only ``prev``'s own surgeons, so nobody works at three sites)."""
    ps, cs = prev["surgeons.csv"], cur["surgeons.csv"]
    n = int(round(share * len(cs)))
    if n == 0:
        return {}
    pdays, cdays = _block_days(prev), _block_days(cur)
    taken: set[str] = set()
    mapping: dict[str, str] = {}
    for i in rng.permutation(len(cs)):
        if len(mapping) == n:
            break
        sid, sl = cs["surgeon_id"].iloc[i], cs["service_line"].iloc[i]
        cands = [p for p in ps.loc[ps["service_line"] == sl, "surgeon_id"]
                 if p not in taken and p.startswith(f"{prev_code}-")]
        if not cands:
            continue
        mine = cdays.get(sid, frozenset())
        # people who work at two hospitals mostly do so on different weekdays
        disjoint = [p for p in cands if not (pdays.get(p, frozenset()) & mine)]
        pick = (disjoint or cands)[int(rng.integers(len(disjoint or cands)))]
        mapping[sid] = pick
        taken.add(pick)
    return mapping


def _apply_sharing(cur: dict[str, Any], prev: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    if not mapping:
        return cur
    out = dict(cur)
    for name in ("cases.csv", "blocks.csv"):
        df = cur[name].copy()
        df["surgeon_id"] = df["surgeon_id"].map(lambda s: mapping.get(s, s))
        out[name] = df
    surg = cur["surgeons.csv"].copy()
    pinfo = prev["surgeons.csv"].set_index("surgeon_id")
    hit = surg["surgeon_id"].isin(list(mapping))
    surg.loc[hit, "surgeon_id"] = surg.loc[hit, "surgeon_id"].map(mapping)
    for col in ("name", "home_site", "start_date"):
        if col in surg.columns:
            surg.loc[hit, col] = pinfo.loc[surg.loc[hit, "surgeon_id"], col].to_numpy()
    out["surgeons.csv"] = surg
    return out


def generate_network(params: NetworkParams) -> list[dict[str, Any]]:
    """The network's sites as :func:`generate_hospital` frames (ids relabelled, surgeons shared).

    ``sites == 1`` returns the plain demo hospital, unchanged.
    """
    if params.sites == 1:
        return [generate_hospital(params.base)]
    rng = np.random.default_rng(np.random.SeedSequence([params.base.seed, 21]))
    out: list[dict[str, Any]] = []
    for k in range(params.sites):
        frames = _relabel(generate_hospital(params.site_params(k)), k)
        if k:
            frames = _apply_sharing(frames, out[-1], _share_surgeons(out[-1], frames, params.shared_surgeon_share, rng,
                                                                   site_code(k - 1)))
        out.append(frames)
        logger.info("generated site %d/%d (%s): %d cases", k + 1, params.sites, campus_name(k), len(frames["cases.csv"]))
    return out


def write_network(out_dir: str | Path, params: NetworkParams) -> dict[str, Any]:
    """Write the network whole-or-nothing. ``sites == 1``: exactly ``generate``'s hospital folder.

    Returns ``{"sites": [...], "rows": {file: total rows}}``.
    """
    import tomli_w

    sites = generate_network(params)
    totals: dict[str, int] = {}

    def write(tmp: Path) -> None:
        if params.sites == 1:
            totals.update(write_frames(sites[0], tmp))
            return
        for k, frames in enumerate(sites):
            folder = tmp / site_slug(k)
            folder.mkdir()
            for f, n in write_frames(frames, folder).items():
                totals[f] = totals.get(f, 0) + n
        doc = {"name": params.name, "seed": params.base.seed,
               "sites": [{"name": campus_name(k), "folder": site_slug(k)} for k in range(params.sites)]}
        (tmp / NETWORK_FILE).write_bytes(tomli_w.dumps(doc).encode("utf-8"))

    atomic_write_folder(out_dir, write)
    names = [campus_name(k) for k in range(params.sites)] if params.sites > 1 else [str(Path(out_dir).name)]
    return {"sites": names, "rows": totals}
