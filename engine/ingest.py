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
from engine.contract import UNKNOWN_SURGEON

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


# --------------------------------------------------------------------------- incremental feeds

# A case's status may move forward (booked -> completed or cancelled), never back.
_FINAL = ("completed", "cancelled")


@dataclass
class AppendResult:
    """What an increment did: counts by case, and the rows set aside (named by the increment's file and row)."""

    hospital_id: str
    file: str
    rows_read: int
    added: int
    updated: int
    unchanged: int
    quarantine: pd.DataFrame  # file, row, case_id, column, reason
    new_surgeons: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)

    def summary(self) -> dict[str, Any]:
        return {"hospital": self.hospital_id, "file": self.file, "rows_read": self.rows_read, "added": self.added,
                "updated": self.updated, "unchanged": self.unchanged, "quarantined": int(len(self.quarantine)),
                "new_surgeons": list(self.new_surgeons),
                "problems": [{k: (None if pd.isna(v) else v) for k, v in r.items()}
                             for r in self.quarantine.to_dict("records")]}


def _contract_text(df: pd.DataFrame) -> pd.DataFrame:
    """Cases as contract text (missing = ""), for comparing and writing."""
    from engine.contract import CASES_COLUMNS
    from engine.io import format_for_contract

    out = format_for_contract(df, CASES_COLUMNS)
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_float_dtype(s):
            s = s.map(lambda v: "" if pd.isna(v) else (str(int(v)) if float(v).is_integer() else repr(float(v))))
        out[col] = s.astype(object).where(s.notna(), "").astype(str)
    return out


def append_cases(
    folder: str | Path,
    increment: str | Path,
    store: Store | None = None,
    name: str | None = None,
    params: ValidationParams | None = None,
    increment_params: ValidationParams = ValidationParams(max_quarantine_share=1.0),
) -> AppendResult:
    """Add new cases and update changed ones (status, times, ...) by ``case_id`` from ``increment``
    (a cases.csv in contract form; only its columns are updated) into the hospital folder and,
    when ``store`` is given, the stored hospital, in place.

    The increment is validated like cases.csv, against the folder's rooms, blocks and settings
    (surgeons it introduces are added to surgeons.csv with their most frequent service line). Rows
    that cannot be used are quarantined and named by the increment's file and row: bad values, an
    unknown room, a case_id twice in the increment (the later copy), a status going backwards
    (a completed or cancelled case cannot change status). Applying the same increment twice
    changes nothing the second time (no write at all). An increment's bad rows are set aside however
    many there are (``increment_params``: a small feed with two bad rows is still a feed); the
    merged hospital is validated with ``params`` before anything is written. Raises InputError
    (nothing written) when the folder or the increment is rejected as a whole.
    """
    import shutil
    import tempfile

    from engine.io import atomic_write_file, write_csv

    folder, increment = Path(folder), Path(increment)
    label = increment.name
    base = load_hospital(folder, params)
    hid = name or folder.resolve().name
    if not increment.is_file():
        raise InputError("the increment file does not exist", file=str(increment))
    raw = pd.read_csv(increment, dtype=str, keep_default_na=False)
    header = [c for c in raw.columns]
    if "case_id" not in header:
        raise InputError(Problem(label, None, "case_id", "the increment has no case_id column: cases are matched by it"))
    # New surgeons join surgeons.csv (it lists who operates; a feed brings new people).
    surgeons = base.hospital.surgeons
    new_surgeons: list[str] = []
    if {"surgeon_id", "service_line"} <= set(header):
        known = set(surgeons["surgeon_id"]) | {UNKNOWN_SURGEON, ""}
        fresh = raw[~raw["surgeon_id"].str.strip().isin(known)]
        if len(fresh):
            add = (fresh.assign(surgeon_id=fresh["surgeon_id"].str.strip())
                   .groupby("surgeon_id")["service_line"].agg(lambda s: s.str.strip().value_counts().index[0]))
            new_surgeons = sorted(add.index)
            surgeons = pd.concat([surgeons, pd.DataFrame({"surgeon_id": add.index, "service_line": add.values})],
                                 ignore_index=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp) / folder.name
        t.mkdir()
        # What cases are checked against: rooms, surgeons, settings (blocks and staffing are not needed).
        for f in folder.iterdir():
            if f.is_file() and f.name not in ("cases.csv", "blocks.csv", "staffing.csv"):
                shutil.copyfile(f, t / f.name)
        shutil.copyfile(increment, t / "cases.csv")
        write_csv(surgeons, t / "surgeons.csv")
        try:
            inc = load_hospital(t, increment_params)
        except InputError as exc:
            raise relabel_problems(exc, {str(t / "cases.csv"): label, "cases.csv": label}) from exc
    quarantine = inc.report.quarantine.copy()
    quarantine = quarantine[quarantine["file"].isin(["cases.csv", label])].assign(file=label)
    rows_of = {cid: i + 1 for i, cid in reversed(list(enumerate(raw["case_id"].str.strip())))}  # first occurrence

    new = inc.hospital.cases
    old = base.hospital.cases.set_index("case_id", drop=False)
    cols = [c for c in header if c in new.columns]
    conflicts = []
    for rec in new[new["case_id"].isin(old.index)].itertuples(index=False):
        before = old.at[rec.case_id, "status"]
        if "status" in cols and before in _FINAL and rec.status != before:
            conflicts.append({"file": label, "row": rows_of.get(rec.case_id, 0), "case_id": rec.case_id,
                              "column": "status", "reason": f"status goes back: the case is already {before}, "
                                                            f"the increment says {rec.status}"})
    # A case_id twice in the increment with different data: which copy is right is unknown, so
    # neither is used (validation already set the later copies aside).
    ids = raw["case_id"].str.strip()
    dups = raw[ids.duplicated(keep=False)].assign(case_id=ids[ids.duplicated(keep=False)])
    for cid, g in dups.groupby("case_id"):
        if len(g.drop_duplicates()) > 1:
            conflicts.append({"file": label, "row": rows_of[cid], "case_id": cid, "column": "case_id",
                              "reason": f"case_id {cid!r} appears {len(g)} times in the increment with different "
                                        "data: none of its rows is used"})
    if conflicts:
        quarantine = pd.concat([quarantine, pd.DataFrame(conflicts)], ignore_index=True)
        new = new[~new["case_id"].isin([c["case_id"] for c in conflicts])]

    new_text = _contract_text(new[cols]).set_index("case_id", drop=False)
    upd_ids = [i for i in new_text.index if i in old.index]
    old_text = _contract_text(old.loc[upd_ids, cols].reset_index(drop=True)).set_index("case_id", drop=False)
    changed = [i for i in upd_ids if not old_text.loc[i].equals(new_text.loc[i])]
    added = [i for i in new_text.index if i not in old.index]
    result = AppendResult(hid, label, len(raw), len(added), len(changed), len(upd_ids) - len(changed),
                          quarantine.reset_index(drop=True), new_surgeons if (added or changed) else [])
    if not result.changed:
        log.info("append %s to %s: nothing new", label, hid)
        return result

    # Merge on the folder's own text (its quarantined rows stay as they were): changed cases take
    # the increment's columns in place, new cases go last, each as the increment wrote it. (A new
    # case whose id only a quarantined row of the folder had replaces that row.)
    merged = pd.read_csv(folder / "cases.csv", dtype=str, keep_default_na=False)
    for col in header:
        if col not in merged.columns:
            merged[col] = ""
    first = raw.assign(case_id=raw["case_id"].str.strip()).drop_duplicates("case_id").set_index("case_id", drop=False)
    where = pd.Series(merged.index, index=merged["case_id"].str.strip()).groupby(level=0).first()
    in_place = [i for i in changed + added if i in where.index]
    merged.loc[where[in_place].to_numpy(), header] = first.loc[in_place, header].to_numpy()
    appended = [i for i in added if i not in where.index]
    merged = pd.concat([merged, first.loc[appended].reindex(columns=merged.columns, fill_value="")], ignore_index=True)
    # The stored rows: the increment's validated values over the stored case (columns it lacks kept).
    typed_new = new.drop_duplicates("case_id").set_index("case_id", drop=False)
    upd = old.loc[changed].copy()
    for col in cols:
        upd[col] = typed_new.loc[changed, col].to_numpy() if len(changed) else upd[col]
    rows = pd.concat([upd.reset_index(drop=True), typed_new.loc[added].reset_index(drop=True)], ignore_index=True)
    rows = rows.reindex(columns=list(old.columns) + [c for c in rows.columns if c not in old.columns])
    # Every row was validated (the stored ones with the folder, the new ones with the increment), so
    # the merged file is valid by construction: the store and the folder are written, nothing re-read.
    atomic_write_file(folder / "cases.csv", lambda p: merged.to_csv(p, index=False))
    if new_surgeons:
        atomic_write_file(folder / "surgeons.csv", lambda p: write_csv(surgeons, p))
    if store is not None:
        if store.has_hospital(hid):
            store.upsert_cases(hid, rows, surgeons=surgeons if new_surgeons else None, quarantine=result.quarantine)
        else:
            store.save_hospital(load_hospital(folder, params), name=hid)
    log.info("append %s to %s: %d added, %d updated, %d unchanged, %d quarantined", label, hid, result.added,
             result.updated, result.unchanged, len(result.quarantine))
    return result


def ingest_network(root: str | Path, store: Store, params: ValidationParams | None = None
                   ) -> list[tuple[str, LoadedHospital]]:
    """Validate and store every site of a network folder (``network.toml``), each under its
    folder's name, as ``ingest --data SITE`` would; a plain hospital folder is one site. Every
    site is validated before any is stored, so a rejected site stores nothing."""
    from engine.network.sites import load_network

    sites = load_network(root).sites
    loaded = [(s.hospital_id, load_hospital(s.folder, params)) for s in sites]
    return [(store.save_hospital(lh, name=hid), lh) for hid, lh in loaded]
