"""Read and validate a hospital folder (CONTRACTS.md section 1).

Every command that reads a hospital goes through :func:`load_hospital`, so every command
validates the same way. Validation is in three steps:

1. read each file as text (a missing or unreadable file, a file that is not UTF-8, a quote that
   is never closed, a missing required column or a duplicated header rejects the file);
2. parse each column by its contract kind and check values with pandera schemas
   (ranges, known codes, uniqueness, row rules such as ``wheels_out`` after ``wheels_in``);
3. check references between files (a case's ``room_id`` must exist in rooms.csv, ...).

Rows of cases.csv with problems are quarantined with their reasons and counted; when the
quarantined share of a file passes ``ValidationParams.max_quarantine_share`` the whole file is
rejected. The small reference tables (rooms, surgeons, blocks, staffing) are never partially
used: any bad row there rejects the folder, because silently dropping a room or a staffing
day would change capacity.

Row numbers in problems are 1-based data rows (the header and rows with no value at all are
not counted), as :class:`engine.errors.Problem` documents; where blank rows or multi-line cells
put a row on another line than ``row + 1``, the message names its line. Each row and column is
blamed once: a value that does not parse is not reported again as missing.

A package along those steps: ``model`` (Hospital, LoadedHospital, QualityReport, FileReport,
ValidationParams, the quarantine table), ``reading`` (step 1 and the column parsers), ``schemas``
(the pandera schemas of step 2) and ``load`` (per file, across files, quarantine,
:func:`load_hospital`, :func:`load_cases`).
"""
from engine.hospital.load import load_cases, load_hospital
from engine.hospital.model import (
    QUARANTINE_COLUMNS,
    FileReport,
    Hospital,
    LoadedHospital,
    QualityReport,
    ValidationParams,
    quarantine_frame,
)

__all__ = [
    "QUARANTINE_COLUMNS",
    "FileReport",
    "Hospital",
    "LoadedHospital",
    "QualityReport",
    "ValidationParams",
    "load_cases",
    "load_hospital",
    "quarantine_frame",
]
