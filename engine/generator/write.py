"""Writing a generated hospital folder whole-or-nothing."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from engine.contract import FILES, SETTINGS_FILE
from engine.generator.generate import generate_hospital
from engine.generator.params import GeneratorParams
from engine.io import atomic_write_folder, write_csv

logger = logging.getLogger("engine.generator")


# Each contract file with its column kinds (contract.FILES, in its order), then the hidden truth.
_KINDS = {**{name: kinds for name, (kinds, _, _) in FILES.items()}, "truth.csv": None}


def write_hospital(out_dir: str | Path, params: GeneratorParams | None = None) -> dict[str, int]:
    """Generate the hospital and write it to ``out_dir`` whole-or-nothing.

    Returns the number of data rows per CSV file (and 1 for settings.toml).
    """
    params = params or GeneratorParams()
    frames = generate_hospital(params)
    counts: dict[str, int] = {}
    atomic_write_folder(out_dir, lambda tmp: counts.update(write_frames(frames, tmp)))
    logger.info("wrote hospital to %s: %s", out_dir, counts)
    return counts


def write_frames(frames: dict[str, pd.DataFrame | dict[str, Any]], folder: Path) -> dict[str, int]:
    """Write generated frames (as :func:`generate_hospital` returns them) into an existing folder;
    returns the data rows per file. Not atomic by itself: callers write into a temp folder."""
    import tomli_w

    counts: dict[str, int] = {}
    for name, kinds in _KINDS.items():
        df = frames[name]
        assert isinstance(df, pd.DataFrame)
        write_csv(df, folder / name, kinds)
        counts[name] = len(df)
    (folder / SETTINGS_FILE).write_bytes(tomli_w.dumps(frames[SETTINGS_FILE]).encode("utf-8"))
    counts[SETTINGS_FILE] = 1
    return counts
