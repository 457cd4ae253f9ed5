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
    for pol in ("optimized", "rules"):
        pv = out["paired_vs_actual"][pol]
        print(f"  {pol} - actual [95% interval]: " + "; ".join(
            f"{m} {v['diff_mean']:+.1f} [{v['ci_lo']:+.1f}, {v['ci_hi']:+.1f}]" for m, v in pv.items()
            if m in ("overtime_minutes", "cases_done", "pacu_hold_minutes") and v["ci_lo"] is not None))
    o = out["observed"]
    print(f"  recorded (actual schedule): overtime {o['overtime_minutes']['mean']:.1f} min/day, "
          f"{o['cases_done']['mean']:.1f} cases/day")
    if out["optimizer_fallback_days"]:
        print(f"  the optimizer fell back to the rules on {len(out['optimizer_fallback_days'])} day(s): "
              + ", ".join(out["optimizer_fallback_days"]))
    print(out["verdict"])
    return out


# ------------------------------------------------------------------ shadow


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (value or "").split(",") if x.strip())


def _shadow_params(args: argparse.Namespace):
    from engine.pilot.shadow import ShadowParams

    kw = {"service_lines": _csv(getattr(args, "service_lines", None)), "sites": _csv(getattr(args, "sites", None))}
    for field, attr in (("solver", "solver"), ("time_limit_s", "time_limit"), ("reps", "reps"), ("seed", "seed")):
        if getattr(args, attr, None) is not None:
            kw[field] = getattr(args, attr)
    try:
        return ShadowParams(**kw)
    except ValueError as exc:
        raise _bad(_OPTION.get(str(exc).split()[0], "--solver"), str(exc)) from exc


def _weekdays(h, start: pd.Timestamp, n: int, option: str) -> list[pd.Timestamp]:
    from engine.pilot.replay import weekdays_from

    if n < 1 or n > 120:
        raise _bad(option, f"must be within 1..120, got {n}")
    return weekdays_from(start, n)


def _cmd_shadow_run(args: argparse.Namespace) -> dict[str, Any]:
    from engine.governance.audit import audit_key
    from engine.pilot.record import cli_actor
    from engine.pilot.shadow import shadow_days

    params = _shadow_params(args)
    start = _date(args.date, "--date")
    if args.iterations < 10:
        raise _bad("--iterations", f"must be >= 10, got {args.iterations}")
    audit_key()  # no key: stop before loading anything
    h = _loaded(args).hospital
    hid = _hid(args)
    days = _weekdays(h, start, args.days, "--days")
    fc = mv = None
    if days[-1] >= h.as_of() and days[0] >= h.as_of():  # coming days: the registered model, as `plan` uses
        from engine.cli import _current_forecaster

        reg = _current_forecaster(h, hid, args.models)
        fc, mv = reg.forecaster, reg.version
    runs = shadow_days(args.db, hid, h, days, params, forecaster=fc, model_version=mv, iterations=args.iterations,
                       actor=cli_actor())
    if not runs:
        raise _bad("--date", f"no booked cases in the shadow scope on any of the {len(days)} weekday(s) from {start:%Y-%m-%d}")
    for r in runs:
        print(f"shadow {r['day']} v{r['shadow_version']} ({params.scope_label()}): {r['n_scheduled']} scheduled, "
              f"{r['n_deferred']} deferred, expected overtime {r['expected_overtime_minutes']:.0f} min; "
              f"recorded (audit seq {r['audit_seq']}), not published")
    return {"runs": runs, "published": False, "model_version": runs[0]["model_version"]}


def _cmd_shadow_report(args: argparse.Namespace) -> dict[str, Any]:
    from engine.governance.audit import audit_key
    from engine.pilot.record import cli_actor
    from engine.pilot.shadow import shadow_report

    params = _shadow_params(args)
    start = _date(args.from_, "--from")
    audit_key()
    h = _loaded(args).hospital
    if start >= h.as_of():
        raise _bad("--from", f"{start:%Y-%m-%d}: the actuals have not arrived (the hospital is as of {h.as_of():%Y-%m-%d})")
    days = [d for d in _weekdays(h, start, args.days, "--days") if d < h.as_of()]
    out = shadow_report(args.db, _hid(args), h, days, params, actor=cli_actor())
    print(f"  {'day':10s} {'v':>2s} {'MAE P50':>8s} {'cov P80':>8s} {'OT shadow':>10s} {'OT actual':>10s} "
          f"{'avoided':>8s} {'caused':>8s} {'deferred':>8s}")
    for r in out["days"]:
        f, o = r["forecast"], r["overtime"]
        mae = f"{f['mae_p50_minutes']:8.1f}" if f["mae_p50_minutes"] is not None else f"{'n/a':>8s}"
        cov = f"{f['coverage_p80']:8.0%}" if f["coverage_p80"] is not None else f"{'n/a':>8s}"
        print(f"  {r['day']:10s} {r['shadow_version']:2d} {mae} {cov} {o['shadow_minutes']:10.1f} "
              f"{o['actual_schedule_minutes']:10.1f} {o['avoided_minutes']:8.1f} {o['caused_minutes']:8.1f} "
              f"{r['would_defer']['n']:4d} ({r['would_defer']['ran_anyway']} ran)")
    t = out["totals"]
    print(f"over {t['n_days']} day(s): overtime avoided {t['overtime_avoided_minutes']:.0f} min, caused "
          f"{t['overtime_caused_minutes']:.0f} min (net {t['overtime_net_minutes']:+.0f}); would have deferred "
          f"{t['would_defer']} case(s), {t['would_defer_ran_anyway']} of which ran" 
          + (f"; no shadow run on {', '.join(out['skipped_days'])}" if out["skipped_days"] else ""))
    return out


def _cmd_shadow_list(args: argparse.Namespace) -> dict[str, Any]:
    from engine.pilot.shadow import shadow_runs

    runs = shadow_runs(args.db, _hid(args))
    if runs.empty:
        print("no shadow runs kept for this hospital")
    for r in runs.itertuples():
        print(f"  {r.day} v{r.shadow_version} {r.scope}: {r.n_scheduled} scheduled, {r.n_deferred} deferred "
              f"(model {r.model_version}; by {r.actor}; audit seq {r.audit_seq})")
    return {"runs": [{k: (str(v) if k == "created_at" else v) for k, v in rec.items()} for rec in runs.to_dict("records")]}


# ------------------------------------------------------------------ monitor


def _cmd_monitor(args: argparse.Namespace) -> dict[str, Any]:
    from engine.governance.audit import audit_key
    from engine.pilot.monitor import MonitorParams, monitor
    from engine.pilot.record import cli_actor

    if (args.date is None) == (args.from_ is None):
        raise _bad("--date", "give either --date DAY or --from DAY [--days N]")
    if args.date is not None and args.days != 1:
        raise _bad("--days", "--days goes with --from, not with --date")
    try:
        params = MonitorParams(late_start_minutes=args.late_start_minutes)
    except ValueError as exc:
        raise _bad("--late-start-minutes", str(exc)) from exc
    option = "--date" if args.date is not None else "--from"
    start = _date(args.date or args.from_, option)
    audit_key()
    h = _loaded(args).hospital
    if start >= h.as_of():
        raise _bad(option, f"{start:%Y-%m-%d} has no actuals yet (the hospital is as of {h.as_of():%Y-%m-%d})")
    days = [d for d in _weekdays(h, start, args.days, "--days") if d < h.as_of()]
    out = monitor(args.db, _hid(args), h, days, params, actor=cli_actor())
    print(f"  {'day':10s} {'plan':28s} {'start dev':>9s} {'late':>5s} {'OT obs':>7s} {'OT plan':>7s} {'MAE P50':>7s} "
          f"{'cov P80':>7s} {'PACU/case':>9s} {'overrides':>9s}")

    def num(v: Any, fmt: str, w: int) -> str:
        return format(v, fmt).rjust(w) if v is not None else "n/a".rjust(w)

    for r in out["days"]:
        sd, o, f = r["start_deviation"], r["overtime"], r["forecast"]
        print(f"  {r['day']:10s} {r['plan_source'][:28]:28s} {num(sd['mean_minutes'], '+.0f', 9)} {num(sd['late_share'], '.0%', 5)} "
              f"{o['observed_minutes']:7.0f} {o['planned_minutes']:7.0f} {num(f['mae_p50_minutes'], '.1f', 7)} "
              f"{num(f['coverage_p80'], '.0%', 7)} {r['pacu_hold']['minutes_per_case']:9.1f} {num(r['override_rate'], '.0%', 9)}")
    print(f"outcome gate (G-OUTCOMES): {out['gate']['message']}")
    print(f"next publish: {out['next_publish']}")
    return out


# ------------------------------------------------------------------ parser


def add_pilot_parsers(sub: Any) -> None:
    """Register the pilot commands on the main parser's subparsers (engine/cli.py)."""

    def add_on(where: Any, name: str, fn: Callable[[argparse.Namespace], dict[str, Any]], text: str) -> argparse.ArgumentParser:
        a = where.add_parser(name, help=text, description=text)
        a.set_defaults(func=fn)
        a.add_argument("--json", type=Path, metavar="PATH", help="write the machine-readable result here")
        a.add_argument("--data", type=Path, required=True, metavar="DIR", help="the hospital folder")
        a.add_argument("--db", default=None, metavar="URL",
                       help="store whose audit log records the run (default: DATABASE_URL or the embedded SQLite file)")
        a.add_argument("--name", default=None, help="hospital id (default: the folder name)")
        return a

    def add(name: str, fn: Callable[[argparse.Namespace], dict[str, Any]], text: str) -> argparse.ArgumentParser:
        return add_on(sub, name, fn, text)

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

    from engine.pilot.shadow import ShadowParams

    sp = ShadowParams()
    sh = sub.add_parser("shadow", help="Shadow mode: plan and record every day, publish nothing; compare with what happened.",
                        description="Shadow mode: the product plans each day and records its recommendation (audited, "
                                    "versioned, never published); the report compares it with the actual schedule and outcomes.",
                        epilog="Each action takes --data, --db, --name and --json PATH (the machine-readable result); "
                               "see `python -m engine shadow run --help`.")
    shs = sh.add_subparsers(dest="shadow_command", required=True, metavar="{run,report,list}")

    def shadow_add(name: str, fn: Callable[[argparse.Namespace], dict[str, Any]], text: str) -> argparse.ArgumentParser:
        return add_on(shs, name, fn, text)

    def scope_opts(a: argparse.ArgumentParser) -> None:
        a.add_argument("--service-lines", default=None, metavar="A,B", help="shadow only these service lines (default: all)")
        a.add_argument("--sites", default=None, metavar="S1,S2", help="shadow only the rooms at these sites (default: all)")

    srun = shadow_add("run", _cmd_shadow_run, "Plan a day (or --days weekdays) in shadow and record the recommendation; "
                                               "a past day is planned as the hospital stood the evening before.")
    srun.add_argument("--date", required=True, metavar="DATE", help="first day to plan in shadow")
    srun.add_argument("--days", type=int, default=1, help="weekdays to plan from --date (default 1)")
    scope_opts(srun)
    srun.add_argument("--solver", default=sp.solver, help=f"highs, glpk or rules (default {sp.solver})")
    srun.add_argument("--time-limit", type=float, default=sp.time_limit_s, metavar="S",
                      help=f"optimizer time limit per day (default {sp.time_limit_s:g})")
    srun.add_argument("--iterations", type=int, default=ReplayParams().iterations,
                      help="CatBoost iterations of the leak-free training when the days are past")
    srun.add_argument("--models", type=Path, default=None, metavar="DIR",
                      help="model registry for coming days (default: var/models)")
    srep = shadow_add("report", _cmd_shadow_report, "Compare the kept shadow recommendations with what happened "
                                                     "(forecast error, overtime avoided or caused, cases it would have deferred).")
    srep.add_argument("--from", dest="from_", required=True, metavar="DATE", help="first day to report")
    srep.add_argument("--days", type=int, default=1, help="weekdays to report from --from (default 1)")
    srep.add_argument("--reps", type=int, default=sp.reps, help=f"draws of turnovers and PACU stays (default {sp.reps})")
    srep.add_argument("--seed", type=int, default=sp.seed)
    shadow_add("list", _cmd_shadow_list, "List the kept shadow runs of the hospital.")

    from engine.pilot.monitor import MonitorParams

    mp = MonitorParams()
    mo = add("monitor", _cmd_monitor, "Planned against actual: after each day, keep the gaps between the published plan and "
                                      "what happened, and run the outcome gate that withholds the next publish.")
    mo.add_argument("--date", default=None, metavar="DATE", help="the past day to monitor")
    mo.add_argument("--from", dest="from_", default=None, metavar="DATE", help="first past day to monitor (with --days)")
    mo.add_argument("--days", type=int, default=1, help="weekdays to monitor from --from (default 1)")
    mo.add_argument("--late-start-minutes", type=float, default=mp.late_start_minutes, metavar="MIN",
                    help=f"a case starting later than this after its planned start is late (default {mp.late_start_minutes:g})")

    # drill, canary and incident live in their own module (engine/pilot/rolloutcli.py)
    from engine.pilot.rolloutcli import add_rollout_parsers

    add_rollout_parsers(sub, add)
