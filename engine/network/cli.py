"""The network's commands: ``generate --sites N``, ``plan --all-sites`` and ``network train``.

engine/cli.py hands these over from its own parsers (one hook line each).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import InputError


def cmd_generate_network(args: argparse.Namespace, base: Any) -> dict[str, Any]:
    from engine.network.generate import NetworkParams, write_network

    try:
        params = NetworkParams(sites=args.sites, base=base)
    except ValueError as exc:
        raise InputError(f"bad option: {exc}", file="command line") from exc
    t0 = time.perf_counter()
    out = write_network(args.out, params)
    seconds = time.perf_counter() - t0
    print(f"wrote network {args.out}: {len(out['sites'])} sites ({', '.join(out['sites'])}); "
          + ", ".join(f"{k} {v}" for k, v in out["rows"].items()) + f" in {seconds:.1f}s")
    return {"out": str(args.out), **out, "seconds": round(seconds, 2)}


def cmd_plan_network(args: argparse.Namespace, params: Any, start: Any) -> dict[str, Any]:
    """Plan every site; schedules to ``<out>/<site folder>/schedule.csv`` (whole or nothing).

    Each planned site's recommendation is audited like ``plan``'s (engine/pilot/record.py), under the
    site folder's name, before any schedule is written; a failed site made no recommendation and
    has no entry (the report lists it)."""
    from engine.governance.audit import audit_key
    from engine.io import atomic_write_folder, write_csv
    from engine.network.forecast import network_id
    from engine.network.plan import plan_network
    from engine.network.progress import ProgressFile
    from engine.network.sites import load_network
    from engine.plan.schedule_io import SCHEDULE_KINDS

    if not args.connect_timeout > 0:
        raise InputError(f"must be a positive number of seconds, got {args.connect_timeout}", file="--connect-timeout")
    audit_key()  # no audit key: stop before any work (exit 2 naming OR_AUDIT_KEY / OR_AUDIT_KEY_FILE)
    network = load_network(args.data)
    dates = [str((start + pd.Timedelta(days=i)).date()) for i in range(params.days)]
    names = [s.name for s in network.sites]
    board = ProgressFile(network_id(network), names, dates, args.scheduler or f"LocalCluster({args.workers} workers)")

    def progress(done: int, total: int, site: str, state: str) -> None:
        if state == "submitted":
            for n in names:
                board.site(n, "running")
            print(f"[0/{total}] {total} site tasks submitted", file=sys.stderr)
            return
        board.site(site, state)
        print(f"[{done}/{total}] {site}: {state}", file=sys.stderr)

    result = plan_network(network, start, params, scheduler_address=args.scheduler, n_workers=args.workers,
                          models=args.models, progress=progress, timeout_s=args.connect_timeout)
    audit(args.db, network, result, start)
    out = result.to_json()
    for s in out["sites"]:
        board.site(s["site"], "ok" if s["ok"] else "failed", **{k: s[k] for k in ("status", "mip_gap", "fallback_used",
                                                                                    "n_scheduled", "n_deferred", "seconds", "error")})
    board.finish({k: out[k] for k in ("n_scheduled", "n_deferred", "failed", "n_union_violations", "seconds")})
    ok = [s for s in result.sites if s.ok]
    if not ok:
        raise RuntimeError("every site failed: " + "; ".join(f"{s.site}: {s.error}" for s in result.sites))

    def write(tmp: Path) -> None:
        for site, s in zip(network.sites, result.sites):
            if s.ok:
                (tmp / Path(site.folder).name).mkdir()
                write_csv(s.schedule, tmp / Path(site.folder).name / "schedule.csv", SCHEDULE_KINDS)

    atomic_write_folder(args.out, write)
    for s in out["sites"]:
        if s["ok"]:
            gap = f", gap {s['mip_gap']:.2%}" if s["mip_gap"] is not None else ""
            fb = f"; FALLBACK: {s['fallback_reason']}" if s["fallback_used"] else ""
            print(f"  {s['site']:12s} {s['status']}{gap}: {s['n_scheduled']} scheduled, {s['n_deferred']} deferred "
                  f"({s['n_released']} left to another site), {s['n_violations']} checker violations, {s['seconds']:.0f}s{fb}")
        else:
            print(f"  {s['site']:12s} FAILED: {s['error']}", file=sys.stderr)
    print(f"{len(ok)}/{len(result.sites)} sites planned on {out['cluster']} in {out['seconds']:.1f}s: {out['n_scheduled']} "
          f"scheduled, {out['n_deferred']} deferred; {out['cross_site_surgeon_days']} cross-site surgeon-days; "
          f"union check {out['n_union_violations']} violations -> {args.out}")
    return out


def audit(db: Any, network: Any, result: Any, start: Any) -> None:
    """One audit entry per planned site (data hash, model version, parameters, actor); its seq in the report."""
    from engine.pilot.record import record

    params = result.params
    for site, s in zip(network.sites, result.sites):
        if not s.ok:
            continue
        p = s.plan
        s.plan["audit_seq"] = record(db, site.hospital_id, "recommendation", data_hash=s.data_hash,
                                     model_version=s.model_version, params=params, schedule=s.schedule, summary={
            "command": "plan --all-sites", "network": network.name, "site": site.name,
            "horizon": [f"{start:%Y-%m-%d}", params.days], "model": s.model,
            **{k: p.get(k) for k in ("solver", "status", "objective", "mip_gap", "n_scheduled", "n_deferred",
                                     "fallback_used")}}).seq


def _cmd_network_train(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import replace

    from engine.forecast.params import TRAINING
    from engine.network.forecast import choose_and_train
    from contextlib import ExitStack

    from engine.network.plan import INPROCESS, dask_client
    from engine.network.sites import load_network

    network = load_network(args.data)
    try:
        params = replace(TRAINING, **({"iterations": args.iterations} if args.iterations else {}),
                         **({"tune": args.tune} if args.tune is not None else {}))
    except ValueError as exc:
        raise InputError(f"bad option: {exc}", file="command line") from exc
    with ExitStack() as stack:
        client = None if args.scheduler == INPROCESS else stack.enter_context(dask_client(args.scheduler, args.workers))[0]
        res = choose_and_train(network, args.models, params, test_days=args.test_days, client=client)
    print(f"{res.choice} model(s) chosen for {network.name}: network score pooled {res.scores['pooled']:.2f}, "
          f"per site {res.scores['per_site']:.2f} (pinball P50 + P80, minutes) in {res.seconds:.0f}s")
    print(res.by_site.to_string(index=False))
    return res.to_json()


def add_network_parser(sub: Any) -> None:
    """``python -m engine network train --data DIR``."""
    nw = sub.add_parser("network", help="Network commands (train: pooled or per-site models, chosen by validation).",
                        description="Network commands.")
    nw_sub = nw.add_subparsers(dest="network_command", required=True, metavar="ACTION")
    t = nw_sub.add_parser("train", help="backtest a pooled and per-site models, train and register the better",
                          description="Backtest one pooled model (site as a feature) against one model per site on the "
                                      "same test window; train and register the better; record the choice.")
    t.set_defaults(func=_cmd_network_train)
    t.add_argument("--json", type=Path, metavar="PATH", help="write the machine-readable result here")
    t.add_argument("--data", type=Path, required=True, metavar="DIR", help="network folder (network.toml) or a hospital folder")
    t.add_argument("--models", type=Path, default=None, metavar="DIR", help="registry folder (default: var/models)")
    t.add_argument("--iterations", type=int, default=None, help="CatBoost iterations (default: ForecastParams)")
    t.add_argument("--tune", action=argparse.BooleanOptionalAction, default=None, help="tune per model (default: on)")
    t.add_argument("--test-days", type=int, default=56, help="validation window (days before the as-of date)")
    t.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler (default: a LocalCluster; 'inprocess' runs the tasks here one by one)")
    t.add_argument("--workers", type=int, default=2, help="LocalCluster workers (default 2)")
