"""Foreign export -> contract hospital folder, driven by a YAML mapping.

``python -m engine import --source FILE --mapping MAP.yaml --out DIR`` calls
:func:`import_hospital`. The mapping format is documented in ``data/mappings/README.md``;
``data/mappings/or_utilization_export.yaml`` is a worked example.

A package along the pipeline's stages (read -> map -> write -> validate -> swap); this module
re-exports its public names, so ``from engine.importer import ...`` is all callers need:

- ``spec``: the format's constants and the typed mapping (:class:`Mapping`);
- ``mapping``: :func:`load_mapping` / :func:`parse_mapping` (the YAML checked by pydantic models);
- ``reading``: :func:`read_source`;
- ``values``: the date, time and datetime parsers;
- ``apply``: :func:`apply_mapping`, :func:`derive_rooms`, :func:`derive_surgeons`;
- ``clean``: :func:`clean_cases` (the mapping's ``clean:`` section: surgeons, procedure codes and
  service lines merged however they are spelled; ambiguous names left and listed);
- ``pipeline``: :func:`import_hospital` and :class:`ImportResult` (plus blocks and staffing
  inferred by ``engine.onboard.infer`` where the mapping gives none).

What each stage does:

- :func:`load_mapping` parses and checks the YAML up front, so a bad mapping fails before any
  data is read, naming the mapping key at fault.
- :func:`read_source` reads CSV, Parquet or Excel into a frame of trimmed strings (missing =
  ``NA``), whatever types the file had, so every format goes through the same parsers.
- :func:`apply_mapping` builds the contract cases frame and lists every value it could not
  convert, by source file, 1-based data row and source column.
- :func:`import_hospital` writes the folder in a temp dir, validates it with
  ``engine.hospital.load_hospital`` and only then swaps it in at ``out_dir``.
"""
from engine.importer.apply import apply_mapping, derive_rooms, derive_surgeons
from engine.importer.clean import CleanRules, Merge, NotMerged, clean_cases
from engine.importer.mapping import load_mapping, parse_mapping
from engine.importer.spec import (
    BAD_VALUE_POLICIES,
    DEFAULT_FORMATS,
    DERIVE_KINDS,
    EXTRA_COLUMN_POLICIES,
    EXTRA_KINDS,
    FILE_KEYS,
    SOURCE_FORMATS,
    UNMAPPED_POLICIES,
    FieldSpec,
    Mapping,
    RoomRule,
    RoomsSpec,
    SourceOptions,
)
from engine.importer.pipeline import ImportResult, import_hospital
from engine.importer.reading import read_source

__all__ = [
    "BAD_VALUE_POLICIES",
    "CleanRules",
    "Merge",
    "NotMerged",
    "DEFAULT_FORMATS",
    "DERIVE_KINDS",
    "EXTRA_COLUMN_POLICIES",
    "EXTRA_KINDS",
    "FILE_KEYS",
    "SOURCE_FORMATS",
    "UNMAPPED_POLICIES",
    "FieldSpec",
    "ImportResult",
    "Mapping",
    "RoomRule",
    "RoomsSpec",
    "SourceOptions",
    "apply_mapping",
    "clean_cases",
    "derive_rooms",
    "derive_surgeons",
    "import_hospital",
    "load_mapping",
    "parse_mapping",
    "read_source",
]
