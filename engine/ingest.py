"""Hospital folder -> validation -> store, the one path every entry point uses."""
from __future__ import annotations

from pathlib import Path

from engine.hospital import LoadedHospital, ValidationParams, load_hospital
from engine.store import Store


def ingest_folder(
    folder: str | Path,
    store: Store,
    name: str | None = None,
    params: ValidationParams | None = None,
) -> tuple[str, LoadedHospital]:
    """Validate ``folder`` and save it in ``store``; returns (hospital id, loaded hospital).

    Raises InputError (nothing stored) when validation rejects the folder.
    """
    loaded = load_hospital(folder, params)
    hid = store.save_hospital(loaded, name=name or Path(folder).resolve().name)
    return hid, loaded


def folder_mtime(folder: str | Path) -> float:
    """Newest modification time of the contract files in ``folder`` (0 if none)."""
    folder = Path(folder)
    times = [p.stat().st_mtime for p in folder.iterdir() if p.is_file() and p.suffix in (".csv", ".toml")]
    return max(times, default=0.0)
