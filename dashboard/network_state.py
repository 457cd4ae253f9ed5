"""Network plans for the Schedule page: the progress of ``plan --all-sites`` runs, per site.

Reads the progress files the command writes (:mod:`engine.network.progress`); nothing is planned
from the page.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.network.progress import read_runs

_COLUMNS = {"site": "Site", "state": "State", "status": "Solver status", "mip_gap": "Gap", "fallback_used": "Fallback",
            "n_scheduled": "Scheduled", "n_deferred": "Deferred", "seconds": "Seconds", "error": "Error"}


@dataclass(frozen=True)
class NetworkRun:
    caption: str
    fraction: float  # sites finished (ok or failed) / sites
    table: pd.DataFrame


def network_runs(limit: int = 3) -> list[NetworkRun]:
    """The most recent network plans, newest first (empty when none was run)."""
    out = []
    for run in read_runs()[:limit]:
        sites = run.get("sites", {})
        rows = [{"site": name, **info} for name, info in sites.items()]
        table = pd.DataFrame(rows).reindex(columns=list(_COLUMNS)).rename(columns=_COLUMNS)
        finished = sum(1 for info in sites.values() if info.get("state") in ("ok", "failed"))
        failed = [n for n, info in sites.items() if info.get("state") == "failed"]
        dates = run.get("dates") or ["?"]
        state = "finished" if run.get("finished") else "running"
        caption = (f"{run.get('network')}: {dates[0]} to {dates[-1]} on {run.get('cluster')}, {state} "
                   f"({finished}/{len(sites)} sites done" + (f"; failed: {', '.join(failed)}" if failed else "")
                   + f"; updated {run.get('updated_at')})")
        out.append(NetworkRun(caption, finished / len(sites) if sites else 0.0, table))
    return out
