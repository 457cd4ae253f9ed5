"""``python -m engine gov ACTION``: the publish workflow from the command line (CONTRACTS.md section 4).

Actions: ``propose | override | gates | approve | reject | publish | rollback | status | export``.
Every action runs the same engine checks as the dashboard (roles, four eyes, the hard-rules gate,
optimistic concurrency) through :class:`engine.governance.Governance`.

Identity comes from the environment, never the command line: ``OR_TOKEN`` is looked up in
``OR_API_TOKENS="TOKEN:USER:ROLE[,...]"`` or in ``OR_API_TOKENS_FILE`` (token hashes only, see
``python -m engine.governance.auth hash-token``). ``--user U`` is optional and must name the
token's own user.

Exit codes: 0 done; 2 bad input *or refused* (a role that may not act, an override that breaks a
hard rule or gives an impossible time, a publication withheld by a gate, a version changed
meanwhile): the message names the field, rule or gate, and nothing is written; 1 internal
failure. (3 stays reserved for ``audit verify``'s broken chain.) ``--json PATH`` writes the
result, and for a withheld publication or rollback the failed gates before exiting 2.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from engine.errors import InputError, Problem
from engine.io import atomic_write_json

ACTIONS = ("propose", "override", "gates", "approve", "reject", "publish", "rollback", "status", "export")


# ------------------------------------------------------------------ plumbing


def _refused(action: str, message: str, field: str | None = None) -> InputError:
    return InputError([Problem(f"gov {action}", None, field, message)])


def _field_of(message: str) -> str | None:
    """The field an override error names ("start of the override of case C: ...")."""
    m = re.match(r"^(start|date|room_id) of the override of case", message)
    return m.group(1) if m else None


def _run(action: str, fn: Callable[[argparse.Namespace], dict[str, Any]]) -> Callable[[argparse.Namespace], dict[str, Any]]:
    """Map the engine's refusals to InputError (exit 2) with a message naming the field, rule or gate."""
    from engine.governance import ConflictError, OverrideError, PublicationWithheld, WorkflowError

    def wrapped(args: argparse.Namespace) -> dict[str, Any]:
        try:
            return fn(args)
        except InputError:
            raise
        except PermissionError as exc:
            raise _refused(action, f"not allowed: {exc}") from exc
        except PublicationWithheld as exc:
            failed = [{"gate": g.gate, "rule_id": g.rule_id, "message": g.message, "inspect_next": g.inspect_next,
                       "rules_broken": (g.details or {}).get("rules_broken")} for g in exc.gates]
            if getattr(args, "json", None):
                atomic_write_json(args.json, {"published": False, "withheld": True, "failed": failed})
            lines = [f"{g['gate']} ({g['rule_id']}): {g['message']} Inspect next: {g['inspect_next']}" for g in failed]
            raise InputError([Problem(f"gov {action}", None, f"gate {g['gate']}", line) for g, line in zip(failed, lines)]) from exc
        except OverrideError as exc:
            rules = getattr(exc, "rules", None)
            field = f"rule {', '.join(rules)}" if rules else _field_of(str(exc))
            raise _refused(action, str(exc), field) from exc
        except (WorkflowError, ConflictError) as exc:
            raise _refused(action, str(exc)) from exc
        except KeyError as exc:
            raise _refused(action, str(exc.args[0]) if exc.args else str(exc), "--version") from exc

    return wrapped


def _actor(args: argparse.Namespace):
    from engine.governance import user_from_token

    return user_from_token(user=args.user)


def _ledger(args: argparse.Namespace):
    from engine.governance import Governance
    from engine.store import default_url

    return Governance(args.db or default_url())


def _loaded(args: argparse.Namespace, required: bool = True):
    from engine.hospital import load_hospital

    if args.data is None:
        if required:
            raise _refused(args.gov_command, "--data DIR (the hospital folder) is required for this action", "--data")
        return None
    if not Path(args.data).is_dir():
        raise InputError(f"hospital folder {str(args.data)!r} does not exist", file=str(args.data))
    return load_hospital(args.data)


def _hospital_id(args: argparse.Namespace) -> str:
    if args.name:
        return args.name
    if args.data is None:
        raise _refused(args.gov_command, "give --data DIR or --name ID to say which hospital", "--data")
    return Path(args.data).resolve().name


def _same_hospital(args: argparse.Namespace, ver) -> None:
    if (args.name or args.data is not None) and _hospital_id(args) != ver.hospital_id:
        raise _refused(args.gov_command, f"version {ver.version_id} belongs to hospital {ver.hospital_id!r}, not "
                                         f"{_hospital_id(args)!r}", "--version")


def _date(value: str, option: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except ValueError:
        ts = None
    if ts is None or pd.isna(ts) or ts != ts.normalize():
        raise InputError([Problem("command line", None, option, f"{value!r} is not a date (YYYY-MM-DD)")])
    return ts


def version_json(ver) -> dict[str, Any]:
    """The machine-readable summary of a version (no schedule rows; ``gov export`` writes those)."""
    plan = ver.plan or {}
    return {"version_id": ver.version_id, "hospital_id": ver.hospital_id, "status": ver.status, "source": ver.source,
            "horizon": [f"{ver.horizon_start:%Y-%m-%d}", f"{ver.horizon_end:%Y-%m-%d}"], "parent_id": ver.parent_id,
            "rollback_of": ver.rollback_of, "created_by": ver.created_by, "approved_by": ver.approved_by,
            "published_by": ver.published_by, "n_cases": ver.n_cases, "note": ver.note,
            "plan": {k: plan.get(k) for k in ("solver", "status", "mip_gap", "fallback_used", "edited", "n_overrides")},
            "hard_rule_violations": plan.get("hard_rule_violations", [])}


def _say(ver, what: str) -> None:
    print(f"version {ver.version_id} ({ver.hospital_id}, {ver.horizon_start:%Y-%m-%d}..{ver.horizon_end:%Y-%m-%d}): "
          f"{what}; status {ver.status}")


# ------------------------------------------------------------------ actions


def _propose(args: argparse.Namespace) -> dict[str, Any]:
    from engine.governance import rules_schedule
    from engine.plan.schedule_io import read_schedule

    actor = _actor(args)
    loaded = _loaded(args)
    h, hid = loaded.hospital, _hospital_id(args)
    start = _date(args.date, "--date")
    if args.days < 1 or args.days > 7:
        raise InputError([Problem("command line", None, "--days", f"must be within 1..7, got {args.days}")])
    horizon = (start, start + pd.Timedelta(days=args.days - 1))
    with _ledger(args) as gov:
        model = None
        if args.schedule is not None:
            if not Path(args.schedule).exists():
                raise InputError(f"schedule file {str(args.schedule)!r} does not exist", file=str(args.schedule))
            schedule = read_schedule(args.schedule)
            plan_json = None
            if args.plan_json is not None:
                try:
                    plan_json = json.loads(Path(args.plan_json).read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError) as exc:
                    raise InputError(f"cannot read the plan JSON: {exc}", file=str(args.plan_json)) from exc
            result: Any = schedule
        elif args.solver == "rules":
            result, plan_json = rules_schedule(h, start, args.days, catalog=gov.catalog), None
        else:
            from engine.forecast import Registry
            from engine.governance import plan_params_from_catalog
            from engine.plan import PlanParams, plan

            model = Registry(args.models).load(hid)
            if model is None:
                raise _refused("propose", f"no forecasting model is registered for {hid!r}: run `python -m engine train` "
                                          "first, or propose the rules-based schedule (--solver rules)", "--solver")
            try:
                params = plan_params_from_catalog(gov.catalog, PlanParams(days=args.days, solver=args.solver,
                                                                          time_limit_s=args.time_limit))
            except ValueError as exc:
                raise InputError([Problem("command line", None, None, f"bad option: {exc}")]) from exc
            booked = h.cases[h.cases["status"] == "booked"]
            forecasts = model.forecaster.predict(booked, h.cases, as_of=min(h.as_of(), start))
            result, plan_json = plan(h, forecasts, start, params), None
        ver = gov.propose(hid, result, actor, hospital=h, model=model, plan_json=plan_json, horizon=horizon,
                          note=args.note or "")
    _say(ver, f"proposed by {actor.name} ({ver.plan.get('solver')})")
    return version_json(ver)


def _override(args: argparse.Namespace) -> dict[str, Any]:
    from engine.governance import Override

    actor = _actor(args)
    loaded = _loaded(args)
    action = args.action or ("move" if (args.room or args.start or args.date) else None)
    if action is None:
        raise InputError([Problem("command line", None, "--action", "say what to do: --room/--start/--date (move), "
                                                                   "or --action defer|lock")])
    ov = Override(args.case, action, args.code, text=args.note or "", date=args.date, room_id=args.room, start=args.start)
    with _ledger(args) as gov:
        base = gov.version(args.version)
        _same_hospital(args, base)
        ver = gov.override(args.version, ov, actor, hospital=loaded, note=args.note or "",
                           allow_violations=args.keep_infeasible, pacu_minutes=loaded.hospital.settings.get("pacu_minutes"))
    bad = ver.plan.get("hard_rule_violations") or []
    _say(ver, f"override of case {args.case} by {actor.name}" + (
        f"; BREAKS {len(bad)} hard rule finding(s), cannot be published until fixed" if bad else ""))
    for x in bad:
        print(f"  {x['message']}")
    return version_json(ver)


def _gates(args: argparse.Namespace) -> dict[str, Any]:
    actor = _actor(args)
    loaded = _loaded(args)
    with _ledger(args) as gov:
        ver = gov.version(args.version)
        _same_hospital(args, ver)
        model = None
        if ver.model_version:
            from engine.forecast import Registry

            model = Registry(args.models).load(ver.hospital_id)
        results = gov.check_gates(args.version, actor, loaded, model=model, quality=loaded.report)
    blocked = [g.gate for g in results if g.withholds]
    for g in results:
        mark = "PASS" if g.passed else ("FAIL" if g.blocking else "WARN")
        print(f"{mark} {g.gate}: {g.message}" + (f" Next: {g.inspect_next}" if not g.passed and g.inspect_next else ""))
    print(f"decision: {'withhold (' + ', '.join(blocked) + ')' if blocked else 'clear'}")
    return {"version_id": args.version, "decision": "withhold" if blocked else "clear", "failed": blocked,
            "gates": [{"gate": g.gate, "rule_id": g.rule_id, "passed": g.passed, "blocking": g.blocking, "message": g.message,
                       "inspect_next": g.inspect_next, "checked": g.checked,
                       "rules_broken": (g.details or {}).get("rules_broken")} for g in results]}


def _approve(args: argparse.Namespace) -> dict[str, Any]:
    actor = _actor(args)
    with _ledger(args) as gov:
        _same_hospital(args, gov.version(args.version))
        ver = gov.approve(args.version, actor, args.note or "")
    _say(ver, f"approved by {actor.name}")
    return version_json(ver)


def _reject(args: argparse.Namespace) -> dict[str, Any]:
    actor = _actor(args)
    with _ledger(args) as gov:
        _same_hospital(args, gov.version(args.version))
        ver = gov.reject(args.version, actor, args.note or "")
    _say(ver, f"rejected by {actor.name}")
    return version_json(ver)


def _publish(args: argparse.Namespace) -> dict[str, Any]:
    actor = _actor(args)
    loaded = _loaded(args)
    with _ledger(args) as gov:
        _same_hospital(args, gov.version(args.version))
        ver = gov.publish(args.version, actor, hospital=loaded)  # the hard rules are checked again, now
    _say(ver, f"published by {actor.name}")
    return {**version_json(ver), "published": True}


def _rollback(args: argparse.Namespace) -> dict[str, Any]:
    from engine.governance import rules_schedule

    actor = _actor(args)
    loaded = _loaded(args)
    hid, day = _hospital_id(args), _date(args.date, "--date")
    reason = args.reason or args.note or ""
    if args.emergency and not (args.note or args.reason):
        raise InputError([Problem("command line", None, "--note", "an emergency rollback needs --note saying what the emergency is")])
    with _ledger(args) as gov:
        rules = None
        if args.to == "rules":
            cur = gov.published_version(hid, day)
            days = 1 if cur is None else len(cur.horizon)
            start = day if cur is None else cur.horizon_start
            rules = rules_schedule(loaded.hospital, start, days, catalog=gov.catalog)
        ver = gov.rollback(hid, day, actor, to=args.to, reason=reason, rules=rules, hospital=loaded, emergency=args.emergency)
    if ver.status == "proposed":
        _say(ver, f"rules-based rollback of version {ver.rollback_of} proposed by {actor.name}; it needs approval, gates "
                  "and publication (the version in force stays until then)")
    else:
        _say(ver, ("EMERGENCY " if args.emergency else "") + f"rollback of version {ver.rollback_of} by {actor.name}")
    return {**version_json(ver), "emergency": bool(args.emergency)}


def _status(args: argparse.Namespace) -> dict[str, Any]:
    from engine.governance.roles import require

    actor = _actor(args)
    require(actor, "view_schedule")
    hid = _hospital_id(args)
    with _ledger(args) as gov:
        hist = gov.history(hid)
        in_force = {}
        if args.date:
            d0 = _date(args.date, "--date")
            for i in range(args.days):
                d = d0 + pd.Timedelta(days=i)
                v = gov.published_version(hid, d)
                in_force[f"{d:%Y-%m-%d}"] = v.version_id if v else None
    cols = ["version_id", "status", "source", "horizon_start", "horizon_end", "parent_id", "rollback_of", "created_by",
            "approved_by", "published_by", "n_cases"]
    print(f"hospital {hid!r}: {len(hist)} version(s)")
    if len(hist):
        print(hist[cols].to_string(index=False))
    for d, vid in in_force.items():
        print(f"in force on {d}: " + (f"version {vid}" if vid else "nothing published"))
    rows = json.loads(hist[cols].to_json(orient="records", date_format="iso")) if len(hist) else []
    return {"hospital_id": hid, "versions": rows, "in_force": in_force}


def _export(args: argparse.Namespace) -> dict[str, Any]:
    from engine.contract import SCHEDULE_COLUMNS, SCHEDULE_KINDS
    from engine.governance.roles import require
    from engine.io import atomic_write_file, write_csv

    actor = _actor(args)
    require(actor, "view_schedule")
    with _ledger(args) as gov:
        ver = gov.version(args.version)
        _same_hospital(args, ver)
    s = ver.schedule
    cols = [*SCHEDULE_COLUMNS, *[c for c in s.columns if c not in SCHEDULE_COLUMNS]]
    atomic_write_file(args.out, lambda p: write_csv(s.reindex(columns=cols), p, SCHEDULE_KINDS))
    print(f"version {ver.version_id} ({ver.status}): {len(s)} rows -> {args.out}")
    return {"version_id": ver.version_id, "status": ver.status, "out": str(args.out), "n_rows": int(len(s))}


# ------------------------------------------------------------------ parser


def add_gov_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``gov`` and its actions on the main parser's subparsers (engine/cli.py)."""
    help_ = "Governance: propose, override, gate, approve, reject, publish, roll back, status, export (identity from OR_TOKEN)."
    g = sub.add_parser("gov", help=help_, description=help_ + " Every action takes --json PATH (the machine-readable "
                                                              "result). Exit 2 when refused, naming the field, rule or gate.")
    gs = g.add_subparsers(dest="gov_command", required=True, metavar="ACTION")

    def add(name: str, fn: Callable[[argparse.Namespace], dict[str, Any]], text: str) -> argparse.ArgumentParser:
        a = gs.add_parser(name, help=text, description=text)
        a.set_defaults(func=_run(name, fn))
        a.add_argument("--json", type=Path, metavar="PATH", help="write the machine-readable result here")
        a.add_argument("--data", type=Path, default=None, metavar="DIR", help="the hospital folder")
        a.add_argument("--db", default=None, metavar="URL", help="store URL (default: DATABASE_URL or the embedded SQLite file)")
        a.add_argument("--name", default=None, help="hospital id (default: the folder name)")
        a.add_argument("--user", default=None, metavar="U",
                       help="your user name, checked against OR_TOKEN's (the credential always comes from the environment)")
        return a

    p = add("propose", _propose, "Propose a schedule for a horizon: plan it (--solver) or take a schedule.csv (--schedule).")
    p.add_argument("--date", required=True, metavar="DATE")
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--solver", choices=["highs", "glpk", "rules"], default="highs",
                   help="rules: the rules-based block schedule on booked durations (no model needed)")
    p.add_argument("--time-limit", type=float, default=30.0, metavar="S")
    p.add_argument("--models", type=Path, default=None, metavar="DIR", help="model registry (default: var/models)")
    p.add_argument("--schedule", type=Path, default=None, metavar="schedule.csv", help="propose this schedule (from `plan`)")
    p.add_argument("--plan-json", type=Path, default=None, metavar="PLAN.json", help="`plan --json` output for --schedule")
    p.add_argument("--note", default=None)

    o = add("override", _override, "Override one case of a version (a new proposed version; checked against the hard rules).")
    o.add_argument("--version", type=int, required=True, metavar="N")
    o.add_argument("--case", required=True, metavar="C")
    o.add_argument("--action", choices=["move", "defer", "lock"], default=None, help="default: move when --room/--start/--date")
    o.add_argument("--room", default=None, metavar="R")
    o.add_argument("--start", default=None, metavar="HH:MM")
    o.add_argument("--date", default=None, metavar="DATE", help="new date (move)")
    o.add_argument("--code", required=True, metavar="CODE", help="justification code from the rules catalog")
    o.add_argument("--note", default=None, metavar="TEXT", help="free-text justification (required for code 'other')")
    o.add_argument("--keep-infeasible", action="store_true",
                   help="save an override that breaks a hard rule as a version that cannot be published until fixed "
                        "(default: refuse it, exit 2)")

    ga = add("gates", _gates, "Run and audit the safety gates of a version (hard rules first).")
    ga.add_argument("--version", type=int, required=True, metavar="N")
    ga.add_argument("--models", type=Path, default=None, metavar="DIR", help="model registry (default: var/models)")

    ap = add("approve", _approve, "Approve a proposed version (leadership; not its creator).")
    ap.add_argument("--version", type=int, required=True, metavar="N")
    ap.add_argument("--note", default=None)

    rj = add("reject", _reject, "Reject a proposed or approved version (a note is required).")
    rj.add_argument("--version", type=int, required=True, metavar="N")
    rj.add_argument("--note", default=None)

    pu = add("publish", _publish, "Publish an approved version whose gates are clear (the hard rules are re-checked).")
    pu.add_argument("--version", type=int, required=True, metavar="N")

    rb = add("rollback", _rollback, "Roll back the schedule in force: to the last approved version, or propose the "
                                    "rules-based schedule for approval (--emergency publishes it at once, audited).")
    rb.add_argument("--date", required=True, metavar="DATE")
    rb.add_argument("--to", choices=["last_approved", "rules"], default="last_approved")
    rb.add_argument("--reason", default=None)
    rb.add_argument("--emergency", action="store_true", help="publish the rules schedule now, without approval (needs --note)")
    rb.add_argument("--note", default=None, metavar="TEXT", help="what the emergency is (or the reason)")

    st = add("status", _status, "The hospital's versions and, with --date, the version in force per day.")
    st.add_argument("--date", default=None, metavar="DATE")
    st.add_argument("--days", type=int, default=1)

    ex = add("export", _export, "Write a version as the contract's schedule.csv.")
    ex.add_argument("--version", type=int, required=True, metavar="N")
    ex.add_argument("--out", type=Path, required=True, metavar="schedule.csv")
    return g
