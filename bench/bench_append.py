"""Incremental feed: a 300-case daily increment appended to the 30k-case demo hospital on SQLite.

Run: .venv/bin/python bench/bench_append.py  (copies data/demo to a temp folder; prints seconds)
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.ingest import append_cases, ingest_folder  # noqa: E402
from engine.store import Store  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "demo"
        shutil.copytree(ROOT / "data" / "demo", folder)
        (folder / "truth.csv").unlink(missing_ok=True)
        store = Store(f"sqlite:///{Path(tmp) / 'store.sqlite'}")
        ingest_folder(folder, store, name="demo")
        cases = pd.read_csv(folder / "cases.csv", dtype=str, keep_default_na=False)
        booked = cases[cases["status"] == "booked"].head(200).copy()
        booked["status"] = "completed"
        booked["wheels_in"] = pd.to_datetime(booked["surgery_date"]).dt.strftime("%Y-%m-%dT08:00")
        booked["wheels_out"] = pd.to_datetime(booked["surgery_date"]).dt.strftime("%Y-%m-%dT09:30")
        new = cases[cases["status"] == "booked"].tail(100).copy()
        new["case_id"] = [f"NEW{i:05d}" for i in range(len(new))]
        inc = pd.concat([booked, new])
        path = Path(tmp) / "increment.csv"
        inc.to_csv(path, index=False)
        t0 = time.perf_counter()
        r = append_cases(folder, path, store, name="demo")
        t1 = time.perf_counter()
        again = append_cases(folder, path, store, name="demo")
        t2 = time.perf_counter()
        print(f"{len(cases)} cases, increment of {len(inc)}: {r.added} added, {r.updated} updated, "
              f"{len(r.quarantine)} quarantined in {t1 - t0:.2f} s; the same increment again: "
              f"{again.added + again.updated} changes in {t2 - t1:.2f} s")


if __name__ == "__main__":
    main()
