"""Progress of network plans, as small JSON files the Schedule page reads while a run goes on.

``ProgressFile(network_id).update(...)`` rewrites ``var/network/<id>.progress.json`` atomically
(``NETWORK_PROGRESS_DIR`` overrides the folder); :func:`read_runs` lists the runs newest first.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from engine.io import atomic_write_json

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "var" / "network"


def progress_dir() -> Path:
    return Path(os.environ.get("NETWORK_PROGRESS_DIR") or DEFAULT_DIR)


class ProgressFile:
    """One run's progress: per site ``queued | running | ok | failed`` with its figures."""

    def __init__(self, network_id: str, sites: list[str], dates: list[str], cluster: str = "") -> None:
        self.path = progress_dir() / f"{network_id}.progress.json"
        self.doc: dict[str, Any] = {"network": network_id, "dates": dates, "cluster": cluster,
                                    "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "finished": False,
                                    "sites": {s: {"state": "queued"} for s in sites}}
        self._write()

    def _write(self) -> None:
        self.doc["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        atomic_write_json(self.path, self.doc)

    def site(self, name: str, state: str, **figures: Any) -> None:
        self.doc["sites"][name] = {"state": state, **figures}
        self._write()

    def finish(self, summary: dict[str, Any]) -> None:
        self.doc.update(finished=True, summary=summary)
        self._write()


def read_runs(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded run, most recently updated first (unreadable files are skipped)."""
    folder = folder or progress_dir()
    runs = []
    for p in folder.glob("*.progress.json"):
        try:
            runs.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(runs, key=lambda r: r.get("updated_at", ""), reverse=True)
