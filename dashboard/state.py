"""Session state and caching for the pages. All caching lives here, not in pages.

The dashboard reads hospitals from the store. On start, the hospital folder named by
``HOSPITAL_DIR`` (the demo hospital under ``make run``) is validated and ingested when the
store lacks it or the folder changed since it was stored.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from engine.errors import InputError
from engine.hospital import LoadedHospital
from engine.ingest import folder_mtime, ingest_folder
from engine.store import Store, default_url

REPO = Path(__file__).resolve().parent.parent
IMPORT_ROOT = REPO / "var" / "hospitals"
MAPPINGS_DIR = REPO / "data" / "mappings"
HOSPITAL_KEY = "hospital_id"


@st.cache_resource(show_spinner=False)
def get_store(url: str) -> Store:
    return Store(url)


def store() -> Store:
    return get_store(default_url())


@dataclass(frozen=True)
class StartupResult:
    hospital_id: str | None
    error: str | None = None


@st.cache_resource(show_spinner="Validating and loading the hospital folder...")
def _ingest_default(url: str, folder: str, mtime: float) -> StartupResult:
    """Ingest HOSPITAL_DIR once per folder version (mtime is part of the cache key)."""
    s = get_store(url)
    hid = Path(folder).resolve().name
    listed = s.list_hospitals()
    row = listed[listed["hospital_id"] == hid]
    if len(row) and pd.Timestamp(row["loaded_at"].iloc[0]).timestamp() >= mtime:
        return StartupResult(hid)
    try:
        hid, _ = ingest_folder(folder, s, name=hid)
    except InputError as exc:
        return StartupResult(None, f"The hospital folder {folder} was rejected:\n\n{exc.describe()}")
    return StartupResult(hid)


def startup() -> StartupResult:
    """Make sure the default hospital (``HOSPITAL_DIR``) is in the store."""
    folder = os.environ.get("HOSPITAL_DIR")
    if not folder:
        return StartupResult(None)
    if not Path(folder).is_dir():
        return StartupResult(None, f"HOSPITAL_DIR={folder} is not a folder. Run `make run` to generate the demo hospital.")
    return _ingest_default(default_url(), str(Path(folder).resolve()), folder_mtime(folder))


def hospitals() -> pd.DataFrame:
    return store().list_hospitals()


@st.cache_resource(max_entries=4, show_spinner="Loading hospital from the store...")
def _load(url: str, hospital_id: str, loaded_at: str) -> LoadedHospital:
    return get_store(url).load_hospital(hospital_id)


def current_hospital() -> tuple[str, LoadedHospital] | None:
    """The hospital chosen in the sidebar, loaded from the store (cached per stored version)."""
    hid = st.session_state.get(HOSPITAL_KEY)
    listed = hospitals()
    if hid is None or hid not in set(listed["hospital_id"]):
        return None
    loaded_at = str(listed.loc[listed["hospital_id"] == hid, "loaded_at"].iloc[0])
    return hid, _load(default_url(), hid, loaded_at)


def shipped_mappings() -> dict[str, Path]:
    return {p.stem: p for p in sorted(MAPPINGS_DIR.glob("*.yaml"))}


def import_upload(
    source_name: str, source_bytes: bytes, mapping_name: str, mapping_bytes: bytes, hospital_name: str
) -> tuple[str, object]:
    """Import an uploaded export with its mapping, validate, and store it.

    Raises InputError (nothing stored, nothing left behind) when the import is rejected.
    """
    from engine.importer import import_hospital

    name = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in hospital_name.strip()) or "imported"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / Path(source_name).name
        src.write_bytes(source_bytes)
        mp = Path(tmp) / Path(mapping_name).name
        mp.write_bytes(mapping_bytes)
        out = IMPORT_ROOT / name
        result = import_hospital(src, mp, out)
    hid, _ = ingest_folder(out, store(), name=name)
    return hid, result
