"""``python -m engine replay|shadow|monitor|drill|canary|incident``: the pilot-to-production commands (issue 19).

Registered on the main parser by one line in engine/cli.py (``add_pilot_parsers(sub)``). Each command
exits 0 on success, 2 on bad input (naming the option), 1 on an internal failure; ``--json PATH`` writes
the result. Every command that makes or judges a recommendation appends an audit entry (data hash,
model version, parameters, actor) to the store's keyed chain, so it needs ``OR_AUDIT_KEY`` or
``OR_AUDIT_KEY_FILE``.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from engine.errors import InputError, Problem

log = logging.getLogger("engine")


# parameter field -> the option that sets it (a ValueError names the field first)
_OPTION = {"days": "--days", "reps": "--reps", "seed": "--seed", "iterations": "--iterations", "time_limit_s": "--time-limit"}


def _bad(option: str, message: str) -> InputError:
    return InputError([Problem("command line", None, option, message)])


def _date(value: str, option: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except ValueError:
        ts = None
    if ts is None or pd.isna(ts) or ts != ts.normalize():
        raise _bad(option, f"{value!r} is not a date (YYYY-MM-DD)")
    return ts


def _loaded(args: argparse.Namespace):
    from engine.hospital import load_hospital

    if not Path(args.data).is_dir():
        raise InputError(f"hospital folder {str(args.data)!r} does not exist", file=str(args.data))
    return load_hospital(args.data)


def _hid(args: argparse.Namespace) -> str:
    return args.name or Path(args.data).resolve().name


# ------------------------------------------------------------------ replay


def _cmd_replay(args: argparse.Namespace) -> dict[str, Any]:
    from engine.governance.audit import audit_key
    from engine.pilot.record import cli_actor
    from engine.pilot.replay import ReplayParams, audited_replay

    try:
        params = ReplayParams(days=args.days, reps=args.reps, seed=args.seed, iterations=args.iterations,
                              time_limit_s=args.time_limit)
    except ValueError as exc:
        raise _bad(_OPTION.get(str(exc).split()[0], "command line"), str(exc)) from exc
    start = _date(args.from_, "--from")
    audit_key()  # no key: stop before loading anything
    h = _loaded(args).hospital
    out = audited_replay(args.db, _hid(args), h, start, params, actor=cli_actor(),
                         progress=lambda f, t: log.info("%3.0f%% %s", 100 * f, t))
    pol = out["policies"]
    print(f"replayed {out['n_days']} weekdays {out['from']}..{out['to']} ({params.reps} draws a day, model trained before "
          f"{out['from']}) in {out['seconds']:.0f}s")
    print(f"  {'metric (mean a day)':24s} {'optimized':>10s} {'rules':>10s} {'actual':>10s}   optimized - rules [95% interval]")
    for m, pr in out["paired"].items():
        vals = [pol[p][m]["mean"] for p in ("optimized", "rules", "actual")]
        print(f"  {m:24s} " + " ".join(f"{v:10.2f}" if v is not None else f"{'n/a':>10s}" for v in vals)
              + f"   {pr['diff_mean']:+.2f} [{pr['ci_lo']:+.2f}, {pr['ci_hi']:+.2f}]")
    o = out["observed"]
    print(f"  recorded (actual schedule): overtime {o['overtime_minutes']['mean']:.1f} min/day, "
          f"{o['cases_done']['mean']:.1f} cases/day")
    if out["optimizer_fallback_days"]:
        print(f"  the optimizer fell back to the rules on {len(out['optimizer_fallback_days'])} day(s): "
              + ", ".join(out["optimizer_fallback_days"]))
    print(out["verdict"])
    return out


# ------------------------------------------------------------------ parser


def add_pilot_parsers(sub: Any) -> None:
    """Register the pilot commands on the main parser's subparsers (engine/cli.py)."""

    def add(name: str, fn: Callable[[argparse.Namespace], dict[str, Any]], text: str) -> argparse.ArgumentParser:
        a = sub.add_parser(name, help=text, description=text)
        a.set_defaults(func=fn)
        a.add_argument("--json", type=Path, metavar="PATH", help="write the machine-readable result here")
        a.add_argument("--data", type=Path, required=True, metavar="DIR", help="the hospital folder")
        a.add_argument("--db", default=None, metavar="URL",
                       help="store whose audit log records the run (default: DATABASE_URL or the embedded SQLite file)")
        a.add_argument("--name", default=None, help="hospital id (default: the folder name)")
        return a

    from engine.pilot.replay import ReplayParams

    d = ReplayParams()
    r = add("replay", _cmd_replay, "Retrospective replay: past weekdays planned as of the day before by the optimizer and "
                                   "the rules, run on what happened, against the real schedule, with paired intervals.")
    r.add_argument("--from", dest="from_", required=True, metavar="DATE", help="first day to replay (in the past)")
    r.add_argument("--days", type=int, default=d.days, help=f"weekdays with history to replay (default {d.days})")
    r.add_argument("--reps", type=int, default=d.reps, help=f"draws a day of what history cannot say (default {d.reps})")
    r.add_argument("--seed", type=int, default=d.seed)
    r.add_argument("--iterations", type=int, default=d.iterations,
                   help=f"CatBoost iterations of the one training before the first day (default {d.iterations})")
    r.add_argument("--time-limit", type=float, default=d.time_limit_s, metavar="S",
                   help=f"optimizer time limit per day (default {d.time_limit_s:g})")

    # drill, canary and incident live in their own module (engine/pilot/rolloutcli.py)
    from engine.pilot.rolloutcli import add_rollout_parsers

    add_rollout_parsers(sub, add)
