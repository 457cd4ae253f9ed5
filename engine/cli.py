"""Command line: ``python -m engine COMMAND`` (CONTRACTS.md section 3).

Exit codes: 0 success, 2 bad input (message names file, row and column), 1 internal failure.
Each command is a small function that parses nothing itself: argparse does, the engine works,
and ``--json`` output is written whole or not at all.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable

from engine.errors import InputError
from engine.io import atomic_write_json

log = logging.getLogger("engine")

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_TAMPERED = 0, 1, 2, 3


class ChainBroken(Exception):
    """The audit chain is not intact: exit 3 (CONTRACTS.md, ``audit verify``)."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


def _cmd_generate(args: argparse.Namespace) -> dict[str, Any]:
    from engine.generator import GeneratorParams, write_hospital

    try:
        params = GeneratorParams(
            seed=args.seed, rooms=args.rooms, history_days=args.history_days, horizon_days=args.horizon_days
        )
    except ValueError as exc:
        raise InputError(f"bad option: {exc}", file="command line") from exc
    if args.sites != 1:  # a network of sites (engine/network/cli.py)
        from engine.network.cli import cmd_generate_network

        return cmd_generate_network(args, params)
    t0 = time.perf_counter()
    counts = write_hospital(args.out, params)
    seconds = time.perf_counter() - t0
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" in {seconds:.1f}s")
    return {"out": str(args.out), "rows": counts, "seconds": round(seconds, 2)}


def _cmd_import(args: argparse.Namespace) -> dict[str, Any]:
    from engine.importer import import_hospital

    if args.fhir is not None:  # a FHIR R4 Bundle
        from engine.importer.fhir import import_fhir_command

        return import_fhir_command(args.fhir, args.out)
    if args.source is None:
        raise InputError("import needs --source FILE (or --fhir BUNDLE.json)", file="command line")
    if args.suggest_mapping:
        from engine.onboard import suggest_mapping

        suggestion = suggest_mapping(args.source)
        sys.stdout.write(suggestion.text)
        return {"source": str(args.source), "matches": suggestion.matches, "unused": suggestion.unused}
    missing = [flag for flag, v in (("--mapping", args.mapping), ("--out", args.out)) if v is None]
    if missing:
        raise InputError(f"import needs {' and '.join(missing)} (or --suggest-mapping to write a mapping to start from)",
                         file="command line")
    result = import_hospital(args.source, args.mapping, args.out)
    summary = result.summary()
    print(
        f"imported {args.source} -> {args.out}: {summary['rows_written']} cases written, "
        f"{summary['rows_quarantined']} quarantined"
    )
    for line in result.describe().splitlines()[1:]:  # what the mapping's clean: merged, and what it left
        print(f"  {line}")
    return summary


def _cmd_validate(args: argparse.Namespace) -> dict[str, Any]:
    from engine.hospital import load_hospital

    if (args.data / "network.toml").is_file():  # a network: every site, as ingest takes them
        from engine.network.sites import load_network

        out = {}
        for site in load_network(args.data).sites:
            print(f"== site {site.hospital_id} ({site.folder})")
            out[site.hospital_id] = _validate_one(load_hospital(site.folder))
        return {"sites": out}
    return _validate_one(load_hospital(args.data))


def _validate_one(loaded) -> dict[str, Any]:
    print(loaded.report.summary().to_string(index=False))
    if len(loaded.report.quarantine):
        print("\nquarantined rows:")
        print(loaded.report.quarantine.to_string(index=False, max_rows=50))
    return loaded.report.to_dict()


def _cmd_ingest(args: argparse.Namespace) -> dict[str, Any]:
    from engine.ingest import ingest_folder
    from engine.store import Store

    store = Store(args.db)
    if args.append is not None:
        from engine.ingest import append_cases

        res = append_cases(args.data, args.append, store, name=args.name)
        print(f"appended {args.append} to {res.hospital_id!r}: {res.added} added, {res.updated} updated, "
              f"{res.unchanged} unchanged, {len(res.quarantine)} quarantined"
              + (f"; new surgeons {', '.join(res.new_surgeons)}" if res.new_surgeons else ""))
        for r in res.quarantine.head(20).itertuples():
            print(f"  quarantined: {r.file}, row {r.row}, column '{r.column}': {r.reason}")
        return res.summary()
    if (args.data / "network.toml").is_file():  # a network: every site under its folder's name
        from engine.ingest import ingest_network

        stored = ingest_network(args.data, store)
        print(f"stored {len(stored)} sites ({', '.join(h for h, _ in stored)}) in {store.url_safe}")
        return {"hospitals": [h for h, _ in stored], "n_cases": sum(len(lh.hospital.cases) for _, lh in stored)}
    hid, loaded = ingest_folder(args.data, store, name=args.name)
    print(f"stored hospital {hid!r} ({len(loaded.hospital.cases)} cases, {loaded.report.n_quarantined} quarantined) in {store.url_safe}")
    return {"hospital": hid, "n_cases": len(loaded.hospital.cases), "n_quarantined": loaded.report.n_quarantined}


@contextlib.contextmanager
def _cases_named(path: Path):
    """The forecasting layer names the case table ``cases.csv``; on the command line say which one:
    the file given (a lone case table) or the folder's cases.csv."""
    try:
        yield
    except InputError as exc:
        real = str(path / "cases.csv") if path.is_dir() else str(path)
        raise InputError([dataclasses.replace(p, file=real) if p.file == "cases.csv" else p for p in exc.problems]) from exc


def _load_cases_arg(path: Path):
    """``--data`` may be a hospital folder or a lone cases.csv; returns (cases, rooms, n_quarantined,
    the folder's hospital or None for a lone cases.csv)."""
    from engine.hospital import load_cases, load_hospital

    if path.is_dir():
        loaded = load_hospital(path)
        h = loaded.hospital
        return h.cases, h.rooms, loaded.report.n_quarantined, h
    cases, report = load_cases(path)
    return cases, None, report.n_quarantined, None


def _forecast_params(args: argparse.Namespace):
    """ForecastParams for a model trained for use (``TRAINING``: tuned per hospital) with
    ``--iterations``, ``--extra-features a,b,c`` and ``--tune``; what they leave open (the folder's
    ``extra_features``, its time zone) ``registry.hospital_params`` fills from the hospital."""
    from dataclasses import replace

    from engine.forecast.params import TRAINING

    chosen: dict[str, Any] = {}
    if args.iterations:
        chosen["iterations"] = args.iterations
    extras = [c.strip() for c in (args.extra_features or "").split(",") if c.strip()]
    if extras:
        chosen["extra_features"] = tuple(extras)
    if getattr(args, "tune", None) is not None:
        chosen["tune"] = args.tune
    try:
        return replace(TRAINING, **chosen)
    except ValueError as exc:
        raise InputError(f"bad option: {exc}", file="command line") from exc


def _date_arg(value: str, option: str):
    """An ISO date (YYYY-MM-DD) only: 04/01/2027 is 4 January in one hospital and 1 April in another."""
    import re

    import pandas as pd

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise InputError(f"{option} {value!r} is not a date in the form YYYY-MM-DD", file="command line")
    try:
        return pd.Timestamp(value.strip())
    except ValueError as exc:
        raise InputError(f"{option} {value!r} is not a date (YYYY-MM-DD)", file="command line") from exc


def _cmd_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from engine.forecast import evaluate
    from engine.forecast.registry import hospital_params

    cases, rooms, n_q, hospital = _load_cases_arg(args.data)
    params = _forecast_params(args)
    if hospital is not None:
        # The folder's settings fill what the command line leaves open (extra features, the time
        # zone of room minutes), as train_and_register does for train.
        params = hospital_params(hospital, params)
    with _cases_named(args.data):
        report = evaluate(cases, _date_arg(args.test_from, "--test-from"), params, rooms=rooms, quarantined=n_q)
    out = report.to_json()
    o = report.overall
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"trained on {o['n_train']} cases in {o['train_seconds']:.1f}s, tested on {o['n_test']} ({n_q} rows quarantined)")
    for k in ("mae_p50", "mae_baseline_booked", "mae_baseline_history", "mae_baseline_procedure", "coverage_p80",
              "coverage_p95", "pinball_p80", "within_10pct_p50", "within_15min_p50", "bias_p50", "cancel_auc"):
        print(f"  {k:22s} {fmt(o.get(k))}")
    print(f"  P50: {o.get('p50_source')}")
    table = report.by_service_line[["service_line", "n", "mae_p50", "mae_baseline_booked", "coverage_p80", "under_prediction_rate"]]
    print(table.round(3).astype(object).where(table.notna(), "n/a").to_string(index=False))
    for note in report.notes:
        print(f"note: {note}")
    return out


def _cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from engine.forecast import Registry, train_and_register
    from engine.hospital import load_hospital

    loaded = load_hospital(args.data)
    hid = args.name or args.data.resolve().name
    params = _forecast_params(args)  # train_and_register completes it from the hospital (hospital_params)
    with _cases_named(args.data):
        mv = train_and_register(loaded.hospital, hid, params, Registry(args.models),
                                progress=lambda f, t: log.info("%3.0f%% %s", 100 * f, t))
    m = mv.meta
    print(f"registered model {mv.version} for {hid}: trained {m['train_from']}..{m['train_until']} in {m['fit_seconds']}s; "
          f"backtest MAE P50 {m['mae_p50']:.1f} min, coverage P80 {m['coverage_p80']:.3f}, P95 {m['coverage_p95']:.3f}; drift {m['drift_state']}")
    for note in m.get("notes", []):
        print(f"note: {note}")
    return {"version": mv.version, **{k: m[k] for k in ("train_from", "train_until", "data_hash", "fit_seconds", "drift_state")},
            "metrics": m["metrics"], "notes": m.get("notes", []), "cancellation_available": m.get("cancellation_available")}


def _current_forecaster(hospital, hid: str, models: Path | None):
    """The registered model of this hospital; trains and registers one when there is none."""
    from engine.forecast import Registry, train_and_register

    reg = Registry(models)
    mv = reg.load(hid)
    if mv is None:
        print(f"no forecasting model registered for {hid!r}: training one now (python -m engine train)", file=sys.stderr)
        mv = train_and_register(hospital, hid, registry=reg)
    return mv


def _cmd_plan(args: argparse.Namespace) -> dict[str, Any]:
    from engine.hospital import load_hospital
    from engine.io import atomic_write_file, write_csv
    from engine.plan import PlanParams, plan
    from engine.plan.schedule_io import SCHEDULE_KINDS

    try:
        params = PlanParams(days=args.days, solver=args.solver, time_limit_s=args.time_limit, mip_gap=args.mip_gap)
    except ValueError as exc:
        raise InputError(f"bad option: {exc}", file="command line") from exc
    start = _date_arg(args.date, "--date")
    if args.all_sites:  # every site of a network as its own Dask task (engine/network/cli.py)
        from engine.network.cli import cmd_plan_network

        return cmd_plan_network(args, params, start)
    from engine.governance.audit import audit_key

    audit_key()  # no audit key: stop before any work (exit 2 naming OR_AUDIT_KEY / OR_AUDIT_KEY_FILE)
    loaded = load_hospital(args.data)
    h = loaded.hospital
    hid = args.name or args.data.resolve().name
    try:
        with _cases_named(args.data):
            mv = _current_forecaster(h, hid, args.models)
    except InputError as exc:
        # No model can be trained (too little history): plan on the one model-free forecast (booked
        # minutes, the history's spread), as coordinators do today, and say why; the rules need no more.
        from engine.governance.fallback import booked_forecasts

        print(f"no forecasting model can be trained ({exc.describe(limit=1)}): planning on booked minutes "
              f"(the model-free forecast)", file=sys.stderr)
        mv, forecasts, why_model_free = None, booked_forecasts(h), exc.describe(limit=1)
    else:
        booked = h.cases[h.cases["status"] == "booked"]
        forecasts = mv.forecaster.predict(booked, h.cases, as_of=min(h.as_of(), start))
    result = plan(h, forecasts, start, params)
    out = result.to_json()
    out["model_version"] = mv.version if mv is not None else None
    out["forecast"] = f"model {mv.version}" if mv is not None else f"booked minutes (model-free: {why_model_free})"
    from engine.pilot.record import record  # every recommendation audited (issue 19), before the file is written

    out["audit_seq"] = record(args.db, hid, "recommendation", hospital=h, model_version=out["model_version"], params=params, summary={
        "command": "plan", "horizon": [f"{start:%Y-%m-%d}", args.days], **{k: out.get(k) for k in (
            "solver", "status", "objective", "mip_gap", "n_scheduled", "n_deferred", "fallback_used")}},
        schedule=result.schedule).seq
    atomic_write_file(args.out, lambda p: write_csv(result.schedule, p, SCHEDULE_KINDS))
    if result.banner:
        print(f"FALLBACK: {result.banner}", file=sys.stderr)
    for d in result.diagnosis:
        print(f"diagnosis: {d}", file=sys.stderr)
    print(f"{out['solver']}: {out['n_scheduled']} scheduled, {out['n_deferred']} deferred; utilization "
          f"{out['utilization']:.1%}, expected overtime {out['expected_overtime_minutes']:.0f} min; status {out['status']}"
          + ("" if out["mip_gap"] is None or out["solver"] == "rules" else f", gap {out['mip_gap']:.2%}" if out["mip_gap"] < 1
             else ", bound too weak to give as a gap") + f" in {out['solve_seconds']:.1f}s -> {args.out}")
    return out


def _cmd_simulate(args: argparse.Namespace) -> dict[str, Any]:
    from engine.hospital import load_hospital
    from engine.sim import CONTRACT_METRICS, SimParams, load_scenario, read_schedule_file, simulate, validate_schedule

    if args.reps <= 0:
        raise InputError(f"--reps must be > 0, got {args.reps}", file="command line")
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}", file="command line")
    try:
        chosen = {"engine": args.engine, "addon_policy": args.addon_policy}
        params = SimParams(**{k: v for k, v in chosen.items() if v is not None})
    except ValueError as exc:
        raise InputError(f"bad option: {exc}", file="command line") from exc
    scenario = load_scenario(args.scenario)
    h = load_hospital(args.data).hospital
    schedule = validate_schedule(h, read_schedule_file(args.schedule), file=str(args.schedule))
    hid = args.name or args.data.resolve().name
    mv = _current_forecaster(h, hid, args.models)
    cases = h.cases[h.cases["case_id"].isin(set(schedule["case_id"]))]
    first = schedule["date"].min() if schedule["date"].notna().any() else h.as_of()
    forecasts = mv.forecaster.predict(cases, h.cases, as_of=min(h.as_of(), first))
    result = simulate(h, schedule, forecasts, scenario, args.reps, args.seed, params=params,
                      scheduler_address=args.scheduler)
    out = result.to_json()
    out["model_version"] = mv.version
    s = result.summary
    print(f"{args.reps} replications of {', '.join(out['dates'])} under {scenario.name} (seed {args.seed}, "
          f"{params.engine} engine{', dask' if args.scheduler else ''}) in {out['seconds']:.1f}s")
    for m in CONTRACT_METRICS:
        v = s[m]
        print(f"  {m:22s} mean {v['mean']:9.2f}  p5 {v['p5']:9.2f}  p50 {v['p50']:9.2f}  p95 {v['p95']:9.2f}  worst5 {v['worst5_mean']:9.2f}")
    for note in out["notes"]:
        print(f"note: {note}", file=sys.stderr)
    return out


def _cmd_fairness(args: argparse.Namespace) -> dict[str, Any]:
    from engine.fairness import fairness_report
    from engine.hospital import load_hospital
    from engine.sim import read_schedule_file, validate_schedule

    import pandas as pd

    from engine.forecast import Registry

    h = load_hospital(args.data).hospital
    schedule = validate_schedule(h, read_schedule_file(args.schedule), file=str(args.schedule))
    # Deferred cases' demand is their P50 from the registered model, as the plan counted it
    # (booked minutes when no model is registered).
    mv = Registry(args.models).load(args.name or args.data.resolve().name)
    forecasts = None
    if mv is not None:
        booked = h.cases[h.cases["case_id"].isin(schedule["case_id"])]
        start = pd.to_datetime(schedule["date"]).min()
        forecasts = mv.forecaster.predict(booked, h.cases, as_of=min(h.as_of(), start))
    rep = fairness_report(h, schedule, forecasts)
    rep["demand_basis"] = f"P50 of model {mv.version}" if mv is not None else "booked minutes (no model registered)"
    worst = rep["disparities"].get("worst_group")
    pol = rep["policy"]
    print(f"max prime-time gap {rep['max_prime_time_gap'] * 100:.1f} points ({worst}); "
          f"{len(rep['by_service_line'])} service lines; policy {pol['policy']['max_prime_time_gap_points']:g} points "
          f"({pol['source']}): {'met' if pol['met'] else 'MISSED'}")
    for line in pol["explanation"]:
        print(f"  why: {line}")
    small = rep["disparities"].get("small_groups") or []
    if small:
        print(f"  not judged (fewer than {rep['disparities'].get('min_group_cases')} cases, listed below): {', '.join(small)}")
    for sl, v in sorted(rep["by_service_line"].items(), key=lambda kv: -(kv[1]["prime_time_gap"] or 0)):
        print(f"  {sl:22s} demand {v['demand_share']:.3f}  prime {v['prime_time_share']:.3f}  late {v['late_slot_share'] or 0:.2f}"
              f"  overtime {v['overtime_burden_minutes']:.0f} min  deferred {v['deferral_rate']:.2f}")
    return rep


def _audit_target(args: argparse.Namespace) -> tuple[str, str]:
    from engine.store import default_url

    if not args.data.is_dir():
        raise InputError(f"hospital folder {str(args.data)!r} does not exist", file=str(args.data))
    return args.db or default_url(), args.name or args.data.resolve().name


def _cmd_audit_verify(args: argparse.Namespace) -> dict[str, Any]:
    from engine.governance.audit import verify_chain

    url, hid = _audit_target(args)
    res = verify_chain(url, hid)
    out = {"ok": res.ok, "n_entries": res.n_entries, "first_bad": res.first_bad, "first_bad_seq": res.first_bad_seq,
           "message": res.message, "hospital_id": hid}
    if not res.ok:
        raise ChainBroken(res.message, out)
    print(f"audit chain of {hid!r} intact: {res.n_entries} entries")
    return out


def _cmd_audit_export(args: argparse.Namespace) -> dict[str, Any]:
    from engine.governance.audit import export_jsonl

    url, hid = _audit_target(args)
    n = export_jsonl(url, args.out, hid)
    print(f"exported {n} audit entries of {hid!r} to {args.out}")
    return {"hospital_id": hid, "n_entries": n, "out": str(args.out)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine", description="Predictive OR allocation engine.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str, fn: Callable[[argparse.Namespace], dict[str, Any]]) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=fn)
        sp.add_argument("--json", type=Path, metavar="PATH", help="write the machine-readable result here")
        return sp

    g = add("generate", "Write the seeded synthetic demo hospital folder.", _cmd_generate)
    g.add_argument("--out", type=Path, required=True, metavar="DIR")
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--rooms", type=int, default=16)
    g.add_argument("--history-days", type=int, default=730)
    g.add_argument("--horizon-days", type=int, default=14)
    g.add_argument("--sites", type=int, default=1,
                   help="a network of N sites, one hospital folder each, --rooms rooms per site (1: one hospital)")

    i = add("import", "Turn a foreign export (CSV, Parquet, Excel) into a hospital folder.", _cmd_import)
    i.add_argument("--source", type=Path, default=None, metavar="FILE", help="required unless --fhir")
    i.add_argument("--fhir", type=Path, default=None, metavar="BUNDLE.json",
                   help="import a FHIR R4 Bundle (Appointment, Procedure, Encounter, Location, Practitioner) instead")
    i.add_argument("--mapping", type=Path, default=None, metavar="MAP.yaml", help="required unless --suggest-mapping")
    i.add_argument("--out", type=Path, default=None, metavar="DIR", help="required unless --suggest-mapping")
    i.add_argument("--suggest-mapping", action="store_true",
                   help="write a commented mapping suggested from the source's headers and values to stdout")

    v = add("validate", "Validate a hospital folder and print its quality report.", _cmd_validate)
    v.add_argument("--data", type=Path, required=True, metavar="DIR")

    s = add("ingest", "Validate a hospital folder and store it (SQLite default, DATABASE_URL for PostgreSQL).", _cmd_ingest)
    s.add_argument("--data", type=Path, required=True, metavar="DIR")
    s.add_argument("--db", default=None, metavar="URL", help="SQLAlchemy URL (default: DATABASE_URL or the embedded SQLite file)")
    s.add_argument("--name", default=None, help="hospital id in the store (default: the folder name)")
    s.add_argument("--append", type=Path, default=None, metavar="FILE",
                   help="add or update cases by case_id from this cases.csv increment (folder and store; idempotent)")

    e = add("evaluate", "Train on cases before a date and score forecasts on cases from it on.", _cmd_evaluate)
    e.add_argument("--data", type=Path, required=True, metavar="DIR_OR_CASES_CSV")
    e.add_argument("--test-from", required=True, metavar="DATE")
    e.add_argument("--iterations", type=int, default=None, help="CatBoost iterations (default: ForecastParams)")
    e.add_argument("--extra-features", default=None, metavar="A,B,C",
                   help="extra cases.csv columns to use as features (default: the folder's settings.toml extra_features)")
    e.add_argument("--tune", action=argparse.BooleanOptionalAction, default=None,
                   help="choose model settings by time-split validation (default: on)")

    t = add("train", "Backtest, train on all history and register the forecasting model.", _cmd_train)
    t.add_argument("--data", type=Path, required=True, metavar="DIR")
    t.add_argument("--name", default=None, help="hospital id (default: the folder name)")
    t.add_argument("--models", type=Path, default=None, metavar="DIR", help="registry folder (default: var/models)")
    t.add_argument("--iterations", type=int, default=None, help="CatBoost iterations (default: ForecastParams)")
    t.add_argument("--extra-features", default=None, metavar="A,B,C",
                   help="extra cases.csv columns to use as features (default: settings.toml extra_features)")
    t.add_argument("--tune", action=argparse.BooleanOptionalAction, default=None,
                   help="choose model settings by time-split validation (default: on)")

    pl = add("plan", "Plan booked cases into rooms and times (optimizer or rules) and write schedule.csv.", _cmd_plan)
    pl.add_argument("--data", type=Path, required=True, metavar="DIR")
    pl.add_argument("--date", required=True, metavar="DATE", help="first date of the horizon")
    pl.add_argument("--days", type=int, default=1, help="horizon length in days (1..7)")
    pl.add_argument("--solver", choices=["highs", "glpk", "rules"], default="highs")
    pl.add_argument("--time-limit", type=float, default=30.0, metavar="S", help="solver time limit in seconds")
    pl.add_argument("--mip-gap", type=float, default=0.01, help="relative MIP gap to stop at")
    pl.add_argument("--out", type=Path, required=True, metavar="schedule.csv")
    pl.add_argument("--name", default=None, help="hospital id for the model registry (default: the folder name)")
    pl.add_argument("--models", type=Path, default=None, metavar="DIR", help="model registry (default: var/models)")
    pl.add_argument("--all-sites", action="store_true",
                    help="plan every site of a network folder as its own Dask task; --out is then a folder")
    pl.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="with --all-sites: this Dask scheduler (default: a LocalCluster; 'inprocess': one by one here)")
    pl.add_argument("--workers", type=int, default=2, help="with --all-sites: LocalCluster workers (default 2)")
    pl.add_argument("--connect-timeout", type=float, default=30.0, metavar="SECONDS",
                    help="with --scheduler: how long to wait for the Dask scheduler to answer (default 30)")
    pl.add_argument("--db", default=None, metavar="URL", help="store whose audit log records the plan (default: DATABASE_URL or the embedded SQLite file)")

    sm = add("simulate", "Simulate a schedule's days under a scenario (Monte Carlo, common random numbers).", _cmd_simulate)
    sm.add_argument("--data", type=Path, required=True, metavar="DIR")
    sm.add_argument("--schedule", type=Path, required=True, metavar="schedule.csv")
    sm.add_argument("--scenario", required=True, metavar="NAME|FILE.toml",
                    help="normal, high_addon, staff_shortage, bed_constraint (data/scenarios/) or a scenario file")
    sm.add_argument("--reps", type=int, required=True, help="replications (> 0)")
    sm.add_argument("--seed", type=int, default=0, help="the same seed gives any schedule the same random days")
    sm.add_argument("--scheduler", default=None, metavar="ADDRESS", help="run on this Dask scheduler (e.g. tcp://host:8786)")
    sm.add_argument("--engine", choices=["vector", "simpy"], default=None,
                    help="vectorised numpy or the SimPy reference (default: SimParams.engine)")
    sm.add_argument("--addon-policy", choices=["reserve", "next_free", "bump"], default=None,
                    help="where add-ons go (default: SimParams.addon_policy)")
    sm.add_argument("--name", default=None, help="hospital id for the model registry (default: the folder name)")
    sm.add_argument("--models", type=Path, default=None, metavar="DIR", help="model registry (default: var/models)")

    fa = add("fairness", "Fairness of a schedule by service line (prime-time access, late slots, overtime, deferrals).", _cmd_fairness)
    fa.add_argument("--data", type=Path, required=True, metavar="DIR")
    fa.add_argument("--schedule", type=Path, required=True, metavar="schedule.csv")
    fa.add_argument("--name", help="hospital id of the registered model (default: the folder's name)")
    fa.add_argument("--models", type=Path, default=None, help="model registry folder (default var/models)")

    au = sub.add_parser("audit", help="Verify or export the hash-chained audit log.",
                        description="Verify or export the hash-chained audit log.")
    au_sub = au.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    for action, fn, help_ in (("verify", _cmd_audit_verify, "exit 0 when the chain is intact, 3 naming the first bad entry"),
                              ("export", _cmd_audit_export, "write the log as JSON lines")):
        a = au_sub.add_parser(action, help=help_, description=help_)
        a.set_defaults(func=fn)
        a.add_argument("--json", type=Path, metavar="PATH", help="write the machine-readable result here")
        a.add_argument("--data", type=Path, required=True, metavar="DIR")
        a.add_argument("--db", default=None, metavar="URL", help="store URL (default: DATABASE_URL or the embedded SQLite file)")
        a.add_argument("--name", default=None, help="hospital id (default: the folder name)")
        if action == "export":
            a.add_argument("--out", type=Path, required=True, metavar="FILE.jsonl")
    from engine.govcli import add_gov_parser

    add_gov_parser(sub)  # python -m engine gov ... (engine/govcli.py)
    from engine.network.cli import add_network_parser

    add_network_parser(sub)  # python -m engine network train ... (engine/network/cli.py)
    from engine.api.cli import add_serve_parser

    add_serve_parser(sub)  # python -m engine serve ... (engine/api/cli.py)
    from engine.pilotcli import add_pilot_parsers

    add_pilot_parsers(sub)  # python -m engine replay|shadow|monitor|drill|canary|incident ... (engine/pilotcli.py)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = args.func(args)
        if args.json:
            atomic_write_json(args.json, result)
        return EXIT_OK
    except InputError as exc:
        print(f"error: bad input\n{exc.describe()}", file=sys.stderr)
        return EXIT_INPUT
    except ChainBroken as exc:
        if args.json:
            atomic_write_json(args.json, exc.result)
        print(f"AUDIT CHAIN BROKEN: {exc}", file=sys.stderr)
        return EXIT_TAMPERED
    except Exception as exc:  # noqa: BLE001 - the contract maps any other failure to exit 1
        log.exception("internal failure")
        print(f"error: internal failure: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
