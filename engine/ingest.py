"""Hospital folder -> validation -> store, the one path every entry point uses.

Importing over a stored hospital is guarded here, for every caller: it needs a role allowed to
``import_data`` (data/roles.toml; an action the roles file does not know is not allowed) and an
explicit confirmation. The store keeps the replaced version (``Store.restore_version``), and the
import, the replacement and any restore are written to the hospital's audit log.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import InputError, Problem
from engine.hospital import LoadedHospital, ValidationParams, load_hospital
from engine.store import Store

log = logging.getLogger(__name__)

IMPORT_ACTION = "import_data"


class ReplaceNotConfirmed(Exception):
    """Importing under the id of a stored hospital without ``replace=True``."""

    def __init__(self, hospital_id: str, version: int, n_cases: int) -> None:
        self.hospital_id, self.version, self.n_cases = hospital_id, version, n_cases
        super().__init__(
            f"A hospital '{hospital_id}' is already stored (version {version}, {n_cases:,} cases). "
            "Confirm that the import replaces it; its current data is then kept as version "
            f"{version} and can be restored.")


def ingest_folder(
    folder: str | Path,
    store: Store,
    name: str | None = None,
    params: ValidationParams | None = None,
) -> tuple[str, LoadedHospital]:
    """Validate ``folder`` and save it in ``store``; returns (hospital id, loaded hospital).

    A stored hospital of the same id is replaced and kept as an earlier version. Raises
    InputError (nothing stored) when validation rejects the folder.
    """
    loaded = load_hospital(folder, params)
    hid = store.save_hospital(loaded, name=name or Path(folder).resolve().name)
    return hid, loaded


def folder_mtime(folder: str | Path) -> float:
    """Newest modification time of the contract files in ``folder`` (0 if none)."""
    folder = Path(folder)
    times = [p.stat().st_mtime for p in folder.iterdir() if p.is_file() and p.suffix in (".csv", ".toml")]
    return max(times, default=0.0)


# --------------------------------------------------------------------------- guarded imports


def require_import(user: Any) -> None:
    """PermissionError, in plain words, unless ``user`` (a User or a role name) may import data.

    An ``import_data`` action missing from the roles file means nobody may.
    """
    from engine.governance.roles import load_roles, require

    roles = load_roles()
    if IMPORT_ACTION not in roles.actions:
        raise PermissionError(f"Importing data is not granted to any role: the roles file ({roles.source}) "
                              f"has no '{IMPORT_ACTION}' action.")
    if user is None:
        raise PermissionError("Sign in first: importing data needs a role allowed to do it.")
    require(user, IMPORT_ACTION, roles)


def check_import(store: Store, hospital_id: str, user: Any, replace: bool = False) -> int | None:
    """Before any work: may ``user`` import under ``hospital_id``? Returns the stored version it
    would replace (None for a new hospital). Raises PermissionError, or ReplaceNotConfirmed when
    the hospital exists and ``replace`` is not set."""
    require_import(user)
    version = store.current_version(hospital_id)
    if version is not None and not replace:
        versions = store.list_versions(hospital_id)
        raise ReplaceNotConfirmed(hospital_id, version, int(versions.loc[versions["current"], "n_cases"].iloc[0]))
    return version


def _audit(store: Store, hospital_id: str, user: Any, payload: dict[str, Any]) -> None:
    from engine.governance.audit import append

    name, role = (user.name, user.role) if hasattr(user, "role") else (str(user), str(user))
    append(store, hospital_id, "note", name, role, payload)


@dataclass(frozen=True)
class StoredImport:
    """What a guarded import stored: the id, the new and the replaced version, the import's result."""

    hospital_id: str
    version: int
    replaced_version: int | None
    result: Any  # engine.importer.ImportResult


def import_and_store(
    source: str | Path,
    mapping: str | Path,
    out_dir: str | Path,
    store: Store,
    hospital_id: str,
    user: Any,
    replace: bool = False,
    source_label: str | None = None,
    params: ValidationParams | None = None,
) -> StoredImport:
    """Import ``source`` with ``mapping`` into ``out_dir``, then store it as ``hospital_id``: the
    checks of :func:`check_import` first (nothing read or written when they fail), the replaced
    version kept, the import audited. Raises InputError when the import is rejected."""
    from engine.importer import import_hospital

    replaced = check_import(store, hospital_id, user, replace)
    result = import_hospital(source, mapping, out_dir, params)
    hid, _ = ingest_folder(out_dir, store, name=hospital_id, params=params)
    version = store.current_version(hid) or 1
    _audit(store, hid, user, {
        "event": "hospital_replaced" if replaced else "hospital_imported",
        "source": source_label or Path(source).name, "version": version, "replaced_version": replaced,
        "rows_read": result.rows_read, "rows_written": result.rows_written, "rows_quarantined": result.rows_quarantined,
    })
    log.info("imported %s as %s version %d (replaced %s)", source_label or source, hid, version, replaced)
    return StoredImport(hid, version, replaced, result)


def restore_version(store: Store, hospital_id: str, version: int, user: Any) -> int:
    """Make an earlier stored version current again (the role must be allowed to import data);
    the version it replaces is kept. Audited. Returns the version that was current before."""
    require_import(user)
    replaced = store.restore_version(hospital_id, version)
    _audit(store, hospital_id, user, {"event": "hospital_restored", "version": int(version),
                                      "replaced_version": replaced})
    return replaced


# --------------------------------------------------------------------------- problems for people


def relabel_problems(exc: InputError, prefixes: dict[str, str]) -> InputError:
    """The same problems with paths rewritten wherever they appear (e.g. a temporary folder -> the
    user's file name)."""
    def fix(text: str | None) -> str | None:
        for old, new in prefixes.items():
            text = text.replace(old, new) if text else text
        return text

    return InputError([Problem(fix(p.file), p.row, fix(p.column), fix(p.problem)) for p in exc.problems])


def problems_frame(problems: list[Problem]) -> pd.DataFrame:
    """Problems as a table for people: ``file, where, column, problem``; ``where`` is "row N (line
    N+1)", or "whole file" for a problem about the file (or one of its columns or keys) as a whole."""
    rows = []
    for p in problems:
        where = f"row {p.row} (line {p.row + 1})" if p.row is not None else "whole file"
        rows.append({"file": p.file, "where": where, "column": p.column or "", "problem": p.problem})
    return pd.DataFrame(rows, columns=["file", "where", "column", "problem"])
