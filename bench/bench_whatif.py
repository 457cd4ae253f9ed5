"""What-if latency, measured through Streamlit's AppTest on the default demo hospital.

Run: .venv/bin/python bench/bench_whatif.py [--moves 20] [--solver highs]
Generates the demo hospital, trains its model, opens the What-if page (warm: models, forecasts
and the baseline cached), then moves the sliders to values not seen before and times each
rerun of the page's fragment (re-plan + re-simulate + redraw). Prints median and P95.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--moves", type=int, default=20)
    ap.add_argument("--solver", default="highs", choices=["highs", "rules"])
    args = ap.parse_args()
    from engine.forecast import Registry, train_and_register
    from engine.generator import GeneratorParams, write_hospital
    from engine.hospital import load_hospital

    tmp = Path(tempfile.mkdtemp())
    folder = tmp / "demo"
    write_hospital(folder, GeneratorParams())
    train_and_register(load_hospital(folder).hospital, "demo", registry=Registry(tmp / "models"))
    os.environ.update({"HOSPITAL_DIR": str(folder), "DATABASE_URL": f"sqlite:///{tmp / 'store.sqlite'}",
                       "MODELS_DIR": str(tmp / "models"), "IMPORT_DIR": str(tmp / "imports")})
    os.chdir(REPO)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=600)
    at.run()
    at.switch_page("../pages/whatif.py").run()
    at.selectbox(key="wi_solver").set_value(args.solver).run()
    # Values never seen before, cycling through the sliders (each move is a cache miss).
    moves = [("wi_rooms", -1), ("wi_addons", 1.3), ("wi_beds", -2), ("wi_inflation", 0.1), ("wi_cancel", 1.5),
             ("wi_teams", -1), ("wi_rooms", -2), ("wi_addons", 1.7), ("wi_beds", 2), ("wi_inflation", 0.2),
             ("wi_cancel", 0.5), ("wi_teams", -2), ("wi_rooms", -3), ("wi_addons", 0.7), ("wi_beds", -4),
             ("wi_inflation", -0.1), ("wi_cancel", 2.5), ("wi_teams", 1), ("wi_rooms", 1), ("wi_addons", 2.0)]
    times = []
    for key, value in (moves * (args.moves // len(moves) + 1))[: args.moves]:
        t0 = time.perf_counter()
        at.slider(key=key).set_value(value).run()
        times.append(time.perf_counter() - t0)
        assert not at.exception, at.exception
    times.sort()
    p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
    print(f"solver {args.solver}: {len(times)} slider moves on the demo hospital (16 rooms, one day)")
    print(f"  median {statistics.median(times):.2f} s, P95 {p95:.2f} s, max {times[-1]:.2f} s, min {times[0]:.2f} s")
    print("  (each move re-plans the day and simulates it 200 times; AppTest rerun time, no browser rendering)")


if __name__ == "__main__":
    main()
