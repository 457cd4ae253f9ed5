"""Cost curves of a network (issue 21): time and peak memory of each step for N sites (a script).

    .venv/bin/python bench/bench_scale.py [--sites 1,2,4,8] [--rooms 16] [--history-days 730]
        [--modes inprocess,local2] [--time-limit 20] [--reps 200] [--iterations 100] [--no-pg] [--log PATH]

For each network size N, in a fresh subprocess (so memory is that size's own): generate the
network (``write_network``), ingest it into SQLite and into PostgreSQL (a private schema of the
local server, COPY), choose and train the forecasting models (``choose_and_train``: both candidates
backtested, the better trained; ``--iterations`` CatBoost iterations, no tuning), plan the week
(``plan_network``, 5 days from the as-of date) in each mode (``inprocess``: one site after the other
here; ``local2``: a 2-worker LocalCluster), and simulate each site's planned week (``--reps``
replications, normal scenario, in-process). Peak memory is the largest resident set of this process
and, separately, of its finished children (the Dask workers), from ``getrusage``. Then fits
``seconds = a * N^b`` per step (log-log least squares) and projects to 50 sites on W workers
(the plan's tasks are independent: ceil(50 / W) waves of the mean site time).
The machine is shared: say the load (printed from ``uptime``) with the figures.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _peak_mib() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(me, 1), round(kids, 1)


def run_one(n: int, args: argparse.Namespace) -> dict:
    """All steps for one network size, in this process."""
    import pandas as pd

    from engine.forecast import ForecastParams
    from engine.generator import GeneratorParams
    from engine.ingest import ingest_network
    from engine.network import INPROCESS, NetworkParams, choose_and_train, load_network, plan_network, write_network
    from engine.plan import PlanParams
    from engine.store import Store

    out: dict = {"sites": n, "steps": {}}
    work = Path(tempfile.mkdtemp(prefix=f"bench_scale_{n}_"))

    def step(name: str, fn):
        t0 = time.perf_counter()
        res = fn()
        out["steps"][name] = {"seconds": round(time.perf_counter() - t0, 2), "peak_mib": _peak_mib()}
        line = f"  {n} sites {name:18s} {out['steps'][name]['seconds']:8.1f}s  peak self/children MiB {_peak_mib()}"
        print(line, file=sys.stderr, flush=True)
        if args.log:  # as each step ends: the figures of an interrupted run survive
            with open(args.log, "a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f} {line.strip()}\n")
        return res

    base = GeneratorParams(seed=args.seed, rooms=args.rooms, history_days=args.history_days)
    root = work / "net"
    step("generate", lambda: write_network(root, NetworkParams(sites=n, base=base)))
    net = load_network(root)
    stored = step("ingest_sqlite", lambda: ingest_network(root, Store(f"sqlite:///{work / 's.sqlite'}")))
    out["cases"] = int(sum(len(lh.hospital.cases) for _, lh in stored))
    out["rooms"] = int(sum(len(lh.hospital.rooms) for _, lh in stored))
    out["booked_week"] = None
    del stored
    if not args.no_pg:
        sys.path.insert(0, str(REPO))
        from tests.conftest import pg_private_schema

        with pg_private_schema("bench_scale") as url:
            step("ingest_postgresql", lambda: ingest_network(root, Store(url)))
            Store(url).close()
    models = work / "models"
    fp = ForecastParams(iterations=args.iterations, cancel_iterations=args.iterations, tune=False)
    choice = step("train", lambda: choose_and_train(net, models, fp, test_days=28))
    out["forecast_choice"] = choice.choice
    out["forecast_scores"] = choice.scores
    params = PlanParams(days=5, time_limit_s=args.time_limit)
    start = pd.Timestamp(base.today)
    plans = {}
    for mode in args.modes:
        addr = INPROCESS if mode == "inprocess" else None
        workers = int(mode.removeprefix("local")) if mode.startswith("local") else 2
        res = step(f"plan_{mode}", lambda: plan_network(net, start, params, scheduler_address=addr, n_workers=workers,
                                                        models=models))
        plans[mode] = res
        j = res.to_json()
        out[f"plan_{mode}"] = {k: j[k] for k in ("n_scheduled", "n_deferred", "failed", "n_union_violations",
                                                 "cross_site_surgeon_days")}
        out[f"plan_{mode}"]["site_seconds"] = [s["seconds"] for s in j["sites"]]
        out[f"plan_{mode}"]["status"] = [s["status"] for s in j["sites"]]
        out[f"plan_{mode}"]["gap"] = [s["mip_gap"] for s in j["sites"]]
    res = next(iter(plans.values()))

    def simulate_all() -> list[dict]:
        from engine.forecast import Registry
        from engine.hospital import load_hospital
        from engine.network import model_ids
        from engine.sim import load_scenario, simulate, validate_schedule

        ids, reg, rows = model_ids(net, models), Registry(models), []
        for site, o in zip(net.sites, res.sites):
            if not o.ok:
                continue
            h = load_hospital(site.folder).hospital
            sched = validate_schedule(h, o.schedule)
            cases = h.cases[h.cases["case_id"].isin(set(sched["case_id"]))]
            fc = reg.load(ids[site.name]).forecaster.predict(cases, h.cases, as_of=min(h.as_of(), start))
            r = simulate(h, sched, fc, load_scenario("normal"), args.reps, 0)
            rows.append({"site": site.name, "overtime_mean": r.summary["overtime_minutes"]["mean"]})
        return rows

    out["simulate"] = step("simulate", simulate_all)
    return out


def fit(sizes: list[int], seconds: list[float]) -> tuple[float, float]:
    """a, b of seconds = a * N^b (least squares on logs); b ~ 1 is linear."""
    import numpy as np

    x, y = np.log(np.array(sizes, float)), np.log(np.maximum(np.array(seconds, float), 1e-3))
    if len(set(sizes)) < 2:
        return float(np.exp(y.mean())), float("nan")
    b, la = np.polyfit(x, y, 1)
    return float(np.exp(la)), float(b)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", default="1,2,4,8")
    ap.add_argument("--rooms", type=int, default=16, help="rooms per site")
    ap.add_argument("--history-days", type=int, default=730)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--modes", default="inprocess,local2")
    ap.add_argument("--time-limit", type=float, default=20.0, help="solver limit per site-week (s)")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--workers-projection", type=int, default=16, help="cluster size W of the 50-site projection")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--log", type=Path, default=None, help="append each step's figures here as the step ends")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    if args.one is not None:
        print(json.dumps(run_one(args.one, args)))
        return 0
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load before: {load}", flush=True)
    results = []
    argv = sys.argv[1:]
    passthrough = [a for i, a in enumerate(argv)
                   if not a.startswith("--json") and not (i and argv[i - 1] == "--json")]
    for n in [int(s) for s in args.sites.split(",")]:
        cmd = [sys.executable, __file__, *passthrough, "--one", str(n)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        sys.stderr.write(proc.stderr[-4000:] if proc.returncode else "".join(
            l + "\n" for l in proc.stderr.splitlines() if " sites " in l))
        if proc.returncode:
            print(f"{n} sites failed (exit {proc.returncode})")
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    sizes = [r["sites"] for r in results]
    steps = sorted({s for r in results for s in r["steps"]}, key=lambda s: list(results[0]["steps"]).index(s)
                   if s in results[0]["steps"] else 99)
    print("\nsites rooms cases   " + " ".join(f"{s:>18s}" for s in steps) + "  peak MiB self/children")
    for r in results:
        peak = max(v["peak_mib"][0] for v in r["steps"].values()), max(v["peak_mib"][1] for v in r["steps"].values())
        print(f"{r['sites']:5d} {r['rooms']:5d} {r['cases']:7d} " + " ".join(
            f"{r['steps'].get(s, {}).get('seconds', float('nan')):17.1f}s" for s in steps) + f"  {peak}")
    for r in results:  # the "end to end": from nothing to every site's week planned
        st = r["steps"]
        first = [k for k in ("generate", "ingest_postgresql" if "ingest_postgresql" in st else "ingest_sqlite", "train")]
        for mode in args.modes:
            if f"plan_{mode}" in st:
                total = sum(st[k]["seconds"] for k in first) + st[f"plan_{mode}"]["seconds"]
                print(f"end to end {r['sites']} sites ({' + '.join(first)} + plan_{mode}): {total:,.0f}s")
    fits = {}
    for s in steps:
        pts = [(r["sites"], r["steps"][s]["seconds"]) for r in results if s in r["steps"]]
        a, b = fit([p[0] for p in pts], [p[1] for p in pts])
        fits[s] = {"a": round(a, 3), "b": round(b, 3), "at_50_sites_one_process_s": round(a * 50 ** b, 1)}
        print(f"fit {s:18s} seconds = {a:.2f} * N^{b:.2f}  -> 50 sites in one process: {a * 50 ** b:,.0f}s")
    w = args.workers_projection
    for mode in args.modes:
        per_site = [t for r in results for t in r.get(f"plan_{mode}", {}).get("site_seconds", [])]
        if per_site:
            mean = sum(per_site) / len(per_site)
            print(f"projection plan ({mode} site times): 50 sites on {w} workers = ceil(50/{w}) x {mean:.0f}s "
                  f"= {math.ceil(50 / w) * mean:,.0f}s (+ scheduling)")
    if args.json:
        args.json.write_text(json.dumps({"load": load, "results": results, "fits": fits}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
