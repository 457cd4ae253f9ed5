"""Time generating and writing the default demo hospital (a script, not a test).

    .venv/bin/python bench/bench_generate.py [--out DIR] [--seed N]

Prints the generation time, the write time and the row count of every file.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.generator import GeneratorParams, generate_hospital, write_hospital  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="folder to write (default: a temp folder)")
    ap.add_argument("--seed", type=int, default=GeneratorParams().seed)
    args = ap.parse_args()
    params = GeneratorParams(seed=args.seed)

    t0 = time.perf_counter()
    frames = generate_hospital(params)
    t_gen = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "demo"
        t0 = time.perf_counter()
        counts = write_hospital(out, params)   # generates again, then writes
        t_total = time.perf_counter() - t0

    cases = frames["cases.csv"]
    print(f"generate_hospital (default, seed {params.seed}): {t_gen:.2f} s")
    print(f"write_hospital (generate + write):           {t_total:.2f} s")
    for name, n in counts.items():
        print(f"  {name:<14} {n:>7} rows")
    print("  cases by status: " + ", ".join(f"{k} {v}" for k, v in cases["status"].value_counts().items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
