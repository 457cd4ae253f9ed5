"""The whole import: read -> map -> write -> validate -> swap, all or nothing."""
from __future__ import annotations

import logging
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.contract import SETTINGS_FILE
from engine.errors import InputError, Problem
from engine.io import atomic_write_folder, write_csv
from engine.importer.mapping import load_mapping
from engine.importer.spec import FILE_KEYS, Mapping
from engine.importer.reading import read_source
from engine.importer.apply import apply_mapping, derive_rooms, derive_surgeons
from engine.importer.clean import Merge, NotMerged, clean_cases
from engine.settings import parse_settings

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# The whole import

@dataclass
class ImportResult:
    """What an import did. ``problems`` are the source values that could not be converted."""

    source: Path
    out_dir: Path
    rows_read: int
    rows_written: int  # rows in cases.csv (validation may still quarantine some on load)
    rows_quarantined: int  # set aside by the importer + quarantined by validation
    rows_set_aside: int  # of those, set aside by the importer for bad values
    problems: list[Problem]
    warnings: list[Problem]
    report: Any = None  # engine.hospital.QualityReport of the written folder
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)  # by source row
    files: list[str] = field(default_factory=list)
    merged: list[Merge] = field(default_factory=list)  # spellings made one by the mapping's clean:
    not_merged: list[NotMerged] = field(default_factory=list)  # left as they were: ambiguous

    def summary(self) -> dict[str, Any]:
        """Machine-readable summary (the CLI's ``--json`` payload); JSON-serialisable."""
        report = self.report.to_dict() if hasattr(self.report, "to_dict") else None
        return {
            "source": str(self.source), "out_dir": str(self.out_dir),
            "rows_read": self.rows_read, "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined, "rows_set_aside": self.rows_set_aside,
            "files": list(self.files),
            "problems": [_problem_dict(p) for p in self.problems],
            "warnings": [_problem_dict(p) for p in self.warnings],
            "report": report,
            "clean": {"merged": [m.to_dict() for m in self.merged],
                      "not_merged": [n.to_dict() for n in self.not_merged]},
        }

    def describe(self, limit: int = 20) -> str:
        """Plain-text account for people: counts, warnings and the rows set aside."""
        lines = [f"imported {self.source} -> {self.out_dir}: {self.rows_read} rows read, "
                 f"{self.rows_written} written, {self.rows_quarantined} quarantined"]
        lines += [f"warning: {p}" for p in self.warnings]
        lines += [f"merged: {m.text}" for m in self.merged[:limit]]
        if len(self.merged) > limit:
            lines.append(f"... and {len(self.merged) - limit} more merges")
        lines += [f"{n.text}" for n in self.not_merged]
        rows = [f"quarantined: {r.file}, row {r.source_row}, column '{r.column}': {r.reason}"
                for r in self.quarantine.itertuples()] if len(self.quarantine) else []
        lines += rows[:limit]
        if len(rows) > limit:
            lines.append(f"... and {len(rows) - limit} more")
        return "\n".join(lines)


def _problem_dict(p: Problem) -> dict[str, Any]:
    return {"file": p.file, "row": p.row, "column": p.column, "problem": p.problem}


def _count_quarantined(report: Any) -> int:
    return int(getattr(report, "n_quarantined", 0) or 0)


def _copy_files(mapping: Mapping, dest: Path) -> list[str]:
    copied = []
    key_of = {v: k for k, v in FILE_KEYS.items()}
    problems = []
    for name, src in mapping.files.items():
        if not src.is_file():
            problems.append(Problem(mapping.name, None, f"files.{key_of[name]}",
                                    f"file not found: {src}"))
            continue
        shutil.copyfile(src, dest / name)
        copied.append(name)
    if problems:
        raise InputError(problems)
    return copied


def _relabel(exc: InputError, tmp: Path, out_dir: Path, source_name: str,
             source_rows: list[int], mapping: Mapping) -> InputError:
    """Validation problems name the temp folder; point them at the source and out_dir."""
    problems = []
    tmp_text = str(tmp)
    for p in exc.problems:
        file = p.file.replace(tmp_text, str(out_dir))
        if Path(p.file).name == "cases.csv" and p.row is not None and 0 < p.row <= len(source_rows):
            problems.append(Problem(source_name, source_rows[p.row - 1],
                                    _source_label(mapping, p.column),
                                    f"{p.problem} (cases.csv row {p.row})"))
        elif Path(p.file).name == "cases.csv":
            problems.append(Problem(f"cases.csv built from {source_name}", p.row, p.column,
                                    p.problem))
        elif Path(p.file).name in ("rooms.csv", "surgeons.csv") \
                and Path(p.file).name not in mapping.files:
            what = "'rooms' section" if Path(p.file).name == "rooms.csv" else "cases"
            problems.append(Problem(f"{Path(p.file).name} (derived from the {what} of "
                                    f"{mapping.name})", p.row, p.column, p.problem))
        else:
            problems.append(Problem(file, p.row, p.column, p.problem))
    return InputError(problems)


def import_hospital(source: str | Path, mapping_path: str | Path, out_dir: str | Path,
                    params: Any = None) -> ImportResult:
    """Foreign export -> validated contract hospital folder at ``out_dir``, all or nothing.

    Reads ``source`` with the mapping at ``mapping_path``, maps it, writes cases.csv,
    rooms.csv and surgeons.csv (derived unless the mapping's ``files`` names them),
    settings.toml and any ``files`` into a temp folder, validates that folder with
    ``engine.hospital.load_hospital(folder, params)`` and only then swaps it in. Raises
    ``InputError`` (nothing written, an existing ``out_dir`` untouched) for a bad mapping, an
    unreadable source, more bad rows than ``max_bad_row_fraction`` or a rejected folder.
    """
    import tomli_w

    from engine.hospital import load_hospital  # the lead's validator; imported late on purpose

    source = Path(source)
    out_dir = Path(out_dir)
    mapping = load_mapping(mapping_path)
    warnings: list[Problem] = []
    source_name = str(source)
    df = read_source(source, mapping, warnings)
    rows_read = len(df)
    if rows_read == 0:
        raise InputError(Problem(source_name, None, None, "the source has no data rows"))
    cases, problems = apply_mapping(df, mapping, source_name, warnings)

    bad_rows = sorted({p.row for p in problems if p.row is not None})
    if len(bad_rows) > mapping.max_bad_row_fraction * rows_read:
        summary = Problem(source_name, None, None,
                          f"{len(bad_rows)} of {rows_read} rows have values that cannot be "
                          f"converted, more than max_bad_row_fraction "
                          f"{mapping.max_bad_row_fraction:g} of {mapping.name} allows; "
                          "nothing was written")
        raise InputError([summary] + problems)
    set_aside = 0
    if mapping.bad_values == "quarantine" and bad_rows:
        cases = cases[~cases.index.isin([r - 1 for r in bad_rows])]
        set_aside = len(bad_rows)
    source_rows = [int(i) + 1 for i in cases.index]  # cases.csv row k came from source_rows[k-1]
    cases = cases.reset_index(drop=True)
    for p in problems[:20]:
        log.warning("import: %s", p)
    if len(problems) > 20:
        log.warning("import: ... and %d more problems", len(problems) - 20)

    settings = dict(mapping.settings)
    # Entity clean-up before anything is derived from the cases: validation sees the merged ids.
    cases, merged, not_merged = clean_cases(cases, mapping.clean, settings.get("service_lines"))
    for m in merged:
        log.info("import: merged %s", m.text)
    for n in not_merged:
        log.warning("import: %s", n.text)
    if "service_lines" not in settings and "service_line" in cases.columns:
        # Validation knows service lines from surgeons.csv; cases of 'unknown' surgeons would
        # otherwise be quarantined for a service line no named surgeon has.
        settings["service_lines"] = sorted(str(v) for v in cases["service_line"].dropna().unique())
    _clock_from_history(settings, cases)
    written: dict[str, Any] = {}

    def build(tmp: Path) -> None:
        files = _copy_files(mapping, tmp)
        write_csv(cases, tmp / "cases.csv")
        files.append("cases.csv")
        rooms = None
        if "rooms.csv" not in mapping.files:
            rooms = derive_rooms(cases, mapping.rooms)
            write_csv(rooms, tmp / "rooms.csv")
            files.append("rooms.csv")
        if "surgeons.csv" not in mapping.files:
            write_csv(derive_surgeons(cases), tmp / "surgeons.csv")
            files.append("surgeons.csv")
        inferred = _infer_files(mapping, cases, rooms, tmp, settings)
        files += list(inferred)
        if inferred and SETTINGS_FILE not in mapping.files:
            settings["inferred"] = inferred
        if SETTINGS_FILE not in mapping.files:
            (tmp / SETTINGS_FILE).write_text(tomli_w.dumps(settings), encoding="utf-8")
            files.append(SETTINGS_FILE)
        try:
            loaded = load_hospital(tmp, params)
        except InputError as exc:
            raise _relabel(exc, tmp, out_dir.resolve(), source_name, source_rows,
                           mapping) from exc
        written["report"] = loaded.report
        written["files"] = sorted(files)

    atomic_write_folder(out_dir, build)
    report = written["report"]
    quarantine = _quarantine_by_source_row(problems if set_aside else [], report, source_rows,
                                           source_name, mapping)
    quarantined = set_aside + _count_quarantined(report)
    result = ImportResult(source=source, out_dir=out_dir, rows_read=rows_read,
                          rows_written=len(cases), rows_quarantined=quarantined,
                          rows_set_aside=set_aside, problems=problems, warnings=warnings,
                          report=report, quarantine=quarantine, files=written["files"],
                          merged=merged, not_merged=not_merged)
    log.info("import: %s rows read, %s written, %s quarantined", rows_read, len(cases),
             quarantined)
    return result


def _clock_from_history(settings: dict[str, Any], cases: pd.DataFrame) -> None:
    """A hospital's clock cannot be earlier than its last completed case: when the export's history
    runs past today (a test or demo extract), ``as_of`` is set to the day after it (unless given)."""
    if "as_of" in settings or "status" not in cases.columns or "surgery_date" not in cases.columns:
        return
    done = pd.to_datetime(cases.loc[cases["status"].isin(["completed", "cancelled"]), "surgery_date"], errors="coerce")
    if not done.notna().any():
        return
    after = (done.max() + pd.Timedelta(days=1)).normalize()
    if after > pd.Timestamp.now().normalize():
        settings["as_of"] = after.date().isoformat()
        log.warning("import: the export has completed cases up to %s, after today: the hospital's clock "
                    "(settings.as_of) is set to %s; give settings.as_of in the mapping to change it",
                    f"{done.max():%Y-%m-%d}", settings["as_of"])


def _settings_timezone(settings: dict[str, Any], tmp: Path, mapping: Mapping) -> str | None:
    """The hospital's time zone, for the room minutes inferred files are drawn from: the mapping's
    ``settings`` section, or the settings.toml it points at (already copied into ``tmp``). A file
    that does not parse gives None here; validating the written folder then rejects it."""
    raw: Any = settings
    if SETTINGS_FILE in mapping.files:
        try:
            raw = tomllib.loads((tmp / SETTINGS_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None
    parsed, _ = parse_settings(raw)
    return parsed.timezone if parsed else None


def _infer_files(mapping: Mapping, cases: pd.DataFrame, rooms: pd.DataFrame | None, tmp: Path,
                 settings: dict[str, Any]) -> dict[str, str]:
    """blocks.csv and staffing.csv inferred from history where the mapping gives none (a provided
    file always wins); returns file -> how it was inferred (written to settings.toml [inferred])."""
    from engine.onboard.infer import InferParams, infer_blocks, infer_staffing

    params = mapping.infer.get("params") or InferParams()
    done: dict[str, str] = {}
    if rooms is None:
        rooms = pd.read_csv(tmp / "rooms.csv", dtype=str)
    if mapping.infer.get("blocks", True) and "blocks.csv" not in mapping.files:
        blocks = infer_blocks(cases, rooms, params, timezone=_settings_timezone(settings, tmp, mapping))
        write_csv(blocks, tmp / "blocks.csv")
        done["blocks.csv"] = (f"weekly template of the service (or surgeon) that used each room on each weekday over "
                              f"the last {params.weeks} weeks of history (owner on >= {params.min_owner_share:.0%} of "
                              f"the days the room ran, room running >= {params.min_used_share:.0%} of them; otherwise "
                              f"open time); {len(blocks)} blocks")
    if mapping.infer.get("staffing", True) and "staffing.csv" not in mapping.files:
        beds = mapping.infer.get("pacu_beds", settings.get("pacu_beds"))
        staffing, how = infer_staffing(cases, params, beds)
        write_csv(staffing, tmp / "staffing.csv")
        done["staffing.csv"] = (f"rooms running per weekday over the last {params.weeks} weeks (median), as many "
                                f"anesthesia teams; PACU beds: {how}")
    return done


def _source_label(mapping: Mapping, target: Any) -> str | None:
    """'Date + Wheels Out -> wheels_out' for a cases column, or the column itself."""
    if not isinstance(target, str):
        return None
    spec = mapping.fields.get(target) or mapping.extras.get(target)
    cols = spec.source_columns() if spec is not None else ()
    return f"{' + '.join(cols)} -> {target}" if cols else target


def _quarantine_by_source_row(problems: list[Problem], report: Any, source_rows: list[int],
                              source_name: str, mapping: Mapping) -> pd.DataFrame:
    """Every quarantined row, importer's and validation's, located in the source file."""
    rows = [{"file": source_name, "source_row": p.row, "case_id": None, "column": p.column,
             "reason": p.problem, "stage": "import"} for p in problems if p.row is not None]
    q = getattr(report, "quarantine", None)
    if isinstance(q, pd.DataFrame) and len(q):
        for r in q.itertuples(index=False):
            if r.file != "cases.csv" or r.row is None or not 0 < int(r.row) <= len(source_rows):
                continue
            rows.append({"file": source_name, "source_row": source_rows[int(r.row) - 1],
                         "case_id": r.case_id, "column": _source_label(mapping, r.column),
                         "reason": r.reason, "stage": "validation"})
    cols = ["file", "source_row", "case_id", "column", "reason", "stage"]
    return pd.DataFrame(rows, columns=cols).sort_values("source_row", kind="stable") \
        .reset_index(drop=True)
