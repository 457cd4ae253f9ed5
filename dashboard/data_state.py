"""The Data page's engine calls (pages/data.py): the shipped mappings, the upload import and its
suggested mapping, the stored versions and their restore, the import problems as a table, feed
freshness, weekly counts and room time, so the page imports no engine module but engine.errors."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import state
from engine.errors import InputError
from engine.ingest import IMPORT_ACTION, ReplaceNotConfirmed  # noqa: F401  (re-exported for pages/data.py)

REPO = Path(__file__).resolve().parent.parent
MAPPINGS_DIR = REPO / "data" / "mappings"


def shipped_mappings() -> dict[str, Path]:
    return {p.stem: p for p in sorted(MAPPINGS_DIR.glob("*.yaml"))}


def hospital_id_for(hospital_name: str) -> str:
    """The store id an import under ``hospital_name`` gets (letters, digits, - and _)."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in hospital_name.strip()) or "imported"


def import_upload(
    source_name: str, source_bytes: bytes, mapping_name: str, mapping_bytes: bytes, hospital_name: str,
    replace: bool = False,
) -> tuple[str, object]:
    """Import an uploaded export with its mapping, validate, and store it, as the active user
    (engine.ingest.import_and_store: role ``import_data``; replacing needs ``replace``; the replaced
    version is kept).

    Raises PermissionError / ReplaceNotConfirmed before any work, InputError (nothing stored,
    nothing left behind; problems name the uploaded files, not temporary paths) when rejected.
    """
    from engine.ingest import import_and_store, relabel_problems

    name = hospital_id_for(hospital_name)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / Path(source_name).name
        src.write_bytes(source_bytes)
        mp = Path(tmp) / Path(mapping_name).name
        mp.write_bytes(mapping_bytes)
        out = Path(os.environ.get("IMPORT_DIR") or REPO / "var" / "hospitals") / name
        try:
            done = import_and_store(src, mp, out, state.store(), name, state.active_user(), replace=replace,
                                    source_label=Path(source_name).name)
        except InputError as exc:
            raise relabel_problems(exc, {str(Path(tmp).resolve()) + os.sep: "", tmp + os.sep: "",
                                         str(out.resolve()) + os.sep: f"{name}/"}) from exc
    return done.hospital_id, done.result


@st.cache_data(max_entries=8, show_spinner="Reading the export and suggesting a mapping...")
def suggested_mapping(source_name: str, source_bytes: bytes) -> str:
    """The commented mapping engine.onboard suggests for an uploaded export (InputError if unreadable)."""
    from engine.ingest import relabel_problems
    from engine.onboard import suggest_mapping

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / Path(source_name).name
        src.write_bytes(source_bytes)
        try:
            return suggest_mapping(src).text
        except InputError as exc:
            raise relabel_problems(exc, {str(Path(tmp).resolve()) + os.sep: "", tmp + os.sep: ""}) from exc


def hospital_versions(hospital_id: str) -> pd.DataFrame:
    """The stored versions of a hospital, newest first (engine.store.Store.list_versions)."""
    return state.store().list_versions(hospital_id)


def restore_hospital_version(hospital_id: str, version: int) -> int:
    """Restore an earlier version as the active user (role ``import_data``; audited)."""
    from engine.ingest import restore_version

    return restore_version(state.store(), hospital_id, version, state.active_user())



def problems_frame(problems) -> pd.DataFrame:
    from engine.ingest import problems_frame as _frame

    return _frame(problems)


def feed_freshness(h) -> pd.DataFrame:
    """Each feed's age against its threshold, measured at the hospital's clock (engine.feeds.feed_freshness)."""
    from engine.feeds import feed_freshness as _freshness

    return _freshness(h)


def weekly_case_counts(cases: pd.DataFrame) -> pd.DataFrame:
    """Cases per service line, week and status (engine.feeds.weekly_case_counts)."""
    from engine.feeds import weekly_case_counts as _counts

    return _counts(cases)


def duration_by_service_line(cases: pd.DataFrame, timezone: str | None) -> pd.DataFrame:
    """Room minutes of the completed cases per service line, elapsed in the hospital's ``timezone``
    (engine.feeds.duration_by_service_line)."""
    from engine.feeds import duration_by_service_line as _durations

    return _durations(cases, timezone)
