"""Rollback drills (issue 19, Deliver 5): inject a fault into a copy of the hospital, show that the product
detects it and withholds or falls back as designed, restore, and time every step.

``run_drill`` copies the hospital folder into the drill's own folder (the original is never written;
its files' hashes are compared before and after), then for the fault asked:

==================  ================================================  ==============================================
fault               injected into the copy                            detected by / designed response
==================  ================================================  ==============================================
stale-feed          staffing.csv loses every row from the as-of date  gate G-FEEDS (staffing); publication withheld
stale-model         the model's training window ends long ago          gate G-MODEL; withheld, the rules schedule
                                                                       (no model) is the fallback
mislabeled-service  the first planning day's booked cases of one      import quarantine + gate G-SERVICE-LINES;
                    service line get an unknown code                   publication withheld
solver-down         the solver reports itself unavailable (HiGHS and  the planner falls back to the rules schedule;
                    GLPK, in this process only)                        gate G-SOLVER withholds the optimizer version
db-down             the store URL points at a closed local port        the governance store refuses at once, nothing
                                                                       is written; the rules schedule is still
                                                                       computed and saved as a file
==================  ================================================  ==============================================

The publication step runs the real flow (propose, approve, gates, publish) on a throw-away SQLite
store inside the drill folder, so the shared store sees only the drill's one audit entry
(``drill``, written by the caller, :func:`audited_drill`). The stale-model drill uses the model
in force when given (its metadata, copied), else a stand-in model record; the drill says which.
"""
from __future__ import annotations

import hashlib
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from unittest import mock

import pandas as pd

from engine.io import atomic_write_json

FAULTS = ("stale-feed", "stale-model", "mislabeled-service", "solver-down", "db-down")
FAULT_GATE = {"stale-feed": "feeds", "stale-model": "model", "mislabeled-service": "service_lines",
              "solver-down": "solver", "db-down": None}
FAULT_CLASS = {"stale-feed": "data", "stale-model": "model", "mislabeled-service": "data", "solver-down": "process",
               "db-down": "process"}  # the defect class an incident of this kind would carry (engine/pilot/incident.py)


@dataclass(frozen=True)
class DrillParams:
    """``fault`` (:data:`FAULTS`); ``time_limit_s`` of the optimizer runs (solver-down only); ``day`` to plan
    (default: the first day with booked cases); ``plan_params``: the deployment's plan settings the drill's
    optimizer runs start from (the dashboard passes its own, with ``OR_PLAN_PARAMS``; None: PlanParams'
    defaults), with one day and ``time_limit_s``."""

    fault: str
    time_limit_s: float = 10.0
    day: str | None = None
    plan_params: Any = None  # engine.plan.PlanParams | None (not imported here: the drill loads engine.plan late)

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, got {self.fault!r}")
        if not 1 <= self.time_limit_s <= 600:
            raise ValueError(f"time_limit_s must be within 1..600, got {self.time_limit_s!r}")


@dataclass
class Step:
    step: str
    ok: bool
    seconds: float
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


class _Steps:
    def __init__(self) -> None:
        self.steps: list[Step] = []

    def run(self, name: str, fn: Callable[[], tuple[bool, str, dict[str, Any]]]) -> Step:
        t0 = time.perf_counter()
        try:
            ok, detail, data = fn()
        except Exception as exc:  # noqa: BLE001 - a step that crashes is a failed step, reported
            ok, detail, data = False, f"{type(exc).__name__}: {exc}", {}
        s = Step(name, bool(ok), round(time.perf_counter() - t0, 3), detail, data)
        self.steps.append(s)
        return s


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def closed_port_url() -> str:
    """A PostgreSQL URL on a local port nobody listens on (bound, then released): connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql+psycopg2://drill@127.0.0.1:{port}/drill?connect_timeout=3"


@contextmanager
def solver_down() -> Iterator[None]:
    """Within the block, in this process only, HiGHS and GLPK report themselves unavailable."""
    with mock.patch("engine.plan.solve.highs_available", return_value=False), \
            mock.patch("engine.plan.solve.glpsol_path", return_value=None):
        yield


def _first_day(h) -> pd.Timestamp:
    booked = h.cases[h.cases["status"] == "booked"]
    if not len(booked):
        raise ValueError("day: the hospital has no booked cases to plan")
    return pd.Timestamp(booked["surgery_date"].min()).normalize()


def _model_meta(model: Any, h, hospital_id: str) -> tuple[dict[str, Any], str]:
    from engine.governance.canonical import input_data_hash

    if model is not None:
        meta = dict(model) if isinstance(model, dict) else dict(getattr(model, "meta", {}) or {})
        meta.setdefault("version", getattr(model, "version", "?"))
        return meta, f"the model in force ({meta['version']}), its metadata copied"
    return ({"version": "drill-stand-in", "train_until": f"{h.as_of() - pd.Timedelta(days=1):%Y-%m-%d}",
             "data_hash": input_data_hash(h), "hospital_id": hospital_id},
            "a stand-in model record (no model given): trained up to the day before the as-of date")


def run_drill(folder: str | Path, params: DrillParams, work_dir: str | Path, *, hospital_id: str,
              actor: tuple[str, str] = ("drill", "unauthenticated"), model: Any = None) -> dict[str, Any]:
    """Run one drill on a copy of ``folder`` inside ``work_dir``; returns the report (also written as
    ``work_dir/drill-report.json``). ``passed`` is True when every step did what the design says."""
    from engine.governance import GateParams, Governance, PublicationWithheld, User, evaluate_gates, load_catalog, rules_schedule
    from engine.governance.fallback import booked_forecasts
    from engine.hospital import load_hospital
    from engine.plan import PlanParams, plan

    folder, work = Path(folder), Path(work_dir)
    if not folder.is_dir():
        raise ValueError(f"data: hospital folder {str(folder)!r} does not exist")
    work.mkdir(parents=True, exist_ok=True)
    copy = work / "hospital"
    fault, gate = params.fault, FAULT_GATE[params.fault]
    catalog = load_catalog()
    gparams = GateParams.from_catalog(catalog)
    before = _hashes(folder)
    st = _Steps()
    ctx: dict[str, Any] = {}
    drill_store = f"sqlite:///{work / 'drill-store.sqlite'}"
    coord, lead = User(f"{actor[0]} (drill)", "coordinator"), User(f"{actor[0]} (drill lead)", "leadership")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def make_copy():
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(folder, copy)
        return True, f"copied {len(before)} files of {folder} to {copy}", {"files": sorted(before)}

    loads: dict[tuple, Any] = {}

    def load():
        """The copy as loaded now (loaded again only when one of its files changed)."""
        key = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(copy.iterdir()) if p.is_file())
        if key not in loads:
            loads.clear()
            loads[key] = load_hospital(copy)
        lh = loads[key]
        h = lh.hospital
        day = pd.Timestamp(params.day).normalize() if params.day else _first_day(h)
        return lh, h, day

    def gates_for(lh, result, model_meta=None) -> list:
        return evaluate_gates(lh.hospital, plan_json=result.to_json(), schedule=result.schedule, model=model_meta,
                              quality=lh.report, params=gparams, hospital_id=hospital_id)

    def state(which: str):
        """Plan the day on the copy and run the fault's gate: (gate passed, message, data)."""
        lh, h, day = load()
        ctx["day"], ctx["as_of"] = day, h.as_of()
        if fault == "solver-down":
            base = params.plan_params or PlanParams()
            res = plan(h, booked_forecasts(h), day, base.with_(days=1, time_limit_s=params.time_limit_s))
            ctx[f"{which}_result"] = res
            g = next(x for x in gates_for(lh, res) if x.gate == gate)
            # the fault is the solver's absence: what counts is whether the optimizer made the schedule
            # (a time-limited run with a wide gap still fails the gate for its own reason, said with it)
            made = res.banner is None
            msg = ("the optimizer made the schedule" if made else "the optimizer did not make the schedule") + f"; solver gate: {g.message}"
            return made, msg, {"fallback_used": not made, "banner": res.banner, "solver_gate_passed": g.passed}
        res = rules_schedule(h, day, 1, catalog=catalog)
        ctx[f"{which}_result"], ctx["lh"] = res, lh
        if fault == "db-down":
            from engine.governance.audit import read_log

            url = ctx.get("url", drill_store)
            n = len(read_log(url, hospital_id))
            return True, f"the store at {url.split('?')[0]} answers ({n} audit entries of the drill so far)", {"url": url.split("?")[0]}
        meta = None
        if fault == "stale-model":
            meta = ctx.get("model_meta")
            if meta is None:
                meta, ctx["model_source"] = _model_meta(model, h, hospital_id)
                meta = {**meta, "train_until": f"{h.as_of() - pd.Timedelta(days=1):%Y-%m-%d}", "data_hash": meta.get("data_hash") or "drill"}
                ctx["model_meta"] = meta
        g = next(x for x in gates_for(lh, res, meta) if x.gate == gate)
        passed = g.passed
        if fault == "stale-feed":  # the feeds gate covers three feeds: the drill's is staffing
            passed = "staffing" not in (g.details or {}).get("stale", [])
            return passed, g.message, {"stale": (g.details or {}).get("stale", [])}
        return passed, g.message, {"quarantined": int(lh.report.n_quarantined)} if fault == "mislabeled-service" else {}

    def baseline():
        ok, msg, data = state("baseline")
        return ok, ("before the fault: " + msg) if ok else (f"the {gate or 'store'} check already fails before the "
                                                            f"fault, so the drill cannot show the fault: {msg}"), data

    def inject():
        if fault == "stale-feed":
            p = copy / "staffing.csv"
            s = pd.read_csv(p, dtype=str)
            as_of = ctx["as_of"]
            keep = s[pd.to_datetime(s["date"]) < as_of - pd.Timedelta(days=7)]
            keep.to_csv(p, index=False)
            return True, f"staffing.csv: {len(s) - len(keep)} rows from {as_of - pd.Timedelta(days=7):%Y-%m-%d} on removed", {}
        if fault == "stale-model":
            old = ctx["as_of"] - pd.Timedelta(days=gparams.max_model_age_days + 30)
            ctx["model_meta"] = {**ctx["model_meta"], "train_until": f"{old:%Y-%m-%d}"}
            return True, f"{ctx['model_source']}; its training window now ends {old:%Y-%m-%d}", {}
        if fault == "mislabeled-service":
            p = copy / "cases.csv"
            c = pd.read_csv(p, dtype=str, keep_default_na=False)
            day = f"{ctx['day']:%Y-%m-%d}"
            booked = c[(c["status"] == "booked") & (c["surgery_date"] == day)]
            line = booked["service_line"].value_counts().index[0]
            rows = booked.index[booked["service_line"] == line]
            c.loc[rows, "service_line"] = f"{line[:3].upper()}-XX"
            c.to_csv(p, index=False)
            return True, f"cases.csv: {len(rows)} booked case(s) of {line} on {day} relabelled {line[:3].upper()}-XX", {"cases": list(c.loc[rows, "case_id"])}
        if fault == "solver-down":
            ctx["patch"] = solver_down()
            ctx["patch"].__enter__()
            return True, "HiGHS and GLPK now report themselves unavailable (in this process)", {}
        ctx["url"] = closed_port_url()
        return True, f"the store URL now points at {ctx['url'].split('?')[0]} (a closed local port)", {}

    def detect():
        if fault == "db-down":
            import sqlalchemy as sa

            t0 = time.perf_counter()
            try:
                Governance(ctx["url"]).propose(hospital_id, ctx["baseline_result"], coord, hospital=ctx["lh"].hospital)
            except sa.exc.OperationalError as exc:
                ctx["db_error"] = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                return True, (f"the store refused the proposal after {time.perf_counter() - t0:.1f}s: {ctx['db_error']}"), {}
            return False, "the proposal reached a store that should be down", {}
        ok, msg, data = state("fault")
        return (not ok), ("detected: " + msg) if not ok else f"NOT detected: the {gate} gate still passes: {msg}", data

    def respond():
        if fault == "db-down":
            lh = ctx["lh"]
            out = work / "rules-schedule.csv"
            res = rules_schedule(lh.hospital, ctx["day"], 1, catalog=catalog)
            res.schedule.to_csv(out, index=False)
            return True, (f"nothing was written (the store is unreachable); the rules schedule for {ctx['day']:%Y-%m-%d} "
                          f"({int((res.schedule['status'] == 'scheduled').sum())} cases) was computed without it and saved "
                          f"to {out.name} for the coordinator"), {"file": str(out)}
        res, lh = ctx["fault_result"], load()[0]
        meta = ctx.get("model_meta") if fault == "stale-model" else None
        with Governance(drill_store) as gov:
            ver = gov.propose(hospital_id, res, coord, hospital=lh.hospital,
                              model_version=(meta or {}).get("version"), model_data_hash=(meta or {}).get("data_hash"),
                              note=f"drill {fault}")
            gov.approve(ver.version_id, lead, f"drill {fault}")
            gates = gov.check_gates(ver.version_id, coord, lh, model=meta, params=gparams)
            try:
                gov.publish(ver.version_id, coord, gates, hospital=lh.hospital)
                return False, f"version {ver.version_id} was PUBLISHED despite the fault", {}
            except PublicationWithheld as exc:
                why = [g.gate for g in exc.gates if g.withholds]
            text = f"publication of version {ver.version_id} withheld by gate(s) {', '.join(why)}"
            data = {"version_id": ver.version_id, "withheld_by": why}
            ok = gate in why
            if fault in ("stale-model", "solver-down"):
                lh2 = load()[0]
                rules = rules_schedule(lh2.hospital, ctx["day"], 1, catalog=catalog)
                rv = gov.propose(hospital_id, rules, coord, hospital=lh2.hospital, note=f"drill {fault}: rules fallback")
                g2 = gov.check_gates(rv.version_id, coord, lh2, model=None, params=gparams)
                fb = next(g for g in g2 if g.gate == gate)
                others = [g.gate for g in g2 if g.withholds]
                ok = ok and fb.passed
                text += (f"; the fallback, the rules schedule (version {rv.version_id}, booked durations, no solver), "
                         f"passes the {gate} gate" if fb.passed else f"; the rules fallback FAILS the {gate} gate: {fb.message}")
                if others:
                    text += f" (it would still wait on {', '.join(others)}, which the drill did not touch)"
                data.update({"fallback_version_id": rv.version_id, "fallback_withheld_by": others})
        return ok, text, data

    def restore():
        if fault == "stale-feed":
            shutil.copy2(folder / "staffing.csv", copy / "staffing.csv")
        elif fault == "mislabeled-service":
            shutil.copy2(folder / "cases.csv", copy / "cases.csv")
        elif fault == "stale-model":
            ctx["model_meta"] = {**ctx["model_meta"], "train_until": f"{ctx['as_of'] - pd.Timedelta(days=1):%Y-%m-%d}"}
        elif fault == "solver-down" and "patch" in ctx:
            ctx.pop("patch").__exit__(None, None, None)
        else:
            ctx["url"] = drill_store
        ok, msg, data = state("restored")
        return ok, ("restored: " + msg) if ok else f"NOT restored: {msg}", data

    try:
        st.run("copy", make_copy)
        base = st.run("baseline", baseline)
        if base.ok:
            for name, fn in (("inject", inject), ("detect", detect), ("respond", respond)):
                if not st.run(name, fn).ok:
                    break
            if len(st.steps) > 2:  # restore whatever was injected, even after a failed step
                st.run("restore", restore)
    finally:
        if "patch" in ctx:  # never leave the solver patched
            ctx.pop("patch").__exit__(None, None, None)
    after = _hashes(folder)
    untouched = after == before
    names = [s.step for s in st.steps]
    passed = untouched and names == ["copy", "baseline", "inject", "detect", "respond", "restore"] and all(s.ok for s in st.steps)
    report = {
        "fault": fault, "gate": gate, "defect_class": FAULT_CLASS[fault], "hospital_id": hospital_id,
        "day": f"{ctx['day']:%Y-%m-%d}" if "day" in ctx else None, "started_at": started,
        "passed": passed, "original_untouched": untouched, "work_dir": str(work),
        "seconds": round(sum(s.seconds for s in st.steps), 3),
        "steps": [{"step": s.step, "ok": s.ok, "seconds": s.seconds, "detail": s.detail, **({"data": s.data} if s.data else {})}
                  for s in st.steps],
    }
    if not untouched:
        report["steps"].append({"step": "original", "ok": False, "seconds": 0.0,
                                "detail": f"the original folder changed during the drill: {sorted(k for k in before if before[k] != after.get(k))}"})
    atomic_write_json(work / "drill-report.json", report)
    return report


def audited_drill(store_or_url: Any, folder: str | Path, params: DrillParams, work_dir: str | Path, *, hospital_id: str,
                  actor: tuple[str, str], model: Any = None) -> dict[str, Any]:
    """:func:`run_drill`, then one ``drill`` audit entry (fault, passed, steps and their seconds) in the store."""
    from engine.governance.audit import append, audit_key

    audit_key()  # no key: no drill (its entry could not be written)
    rep = run_drill(folder, params, work_dir, hospital_id=hospital_id, actor=actor, model=model)
    e = append(store_or_url, hospital_id, "drill", actor[0], actor[1],
               {"fault": rep["fault"], "gate": rep["gate"], "passed": rep["passed"], "day": rep["day"],
                "original_untouched": rep["original_untouched"], "seconds": rep["seconds"], "report": str(Path(work_dir) / "drill-report.json"),
                "steps": [{k: s[k] for k in ("step", "ok", "seconds", "detail")} for s in rep["steps"]]})
    rep["audit_entry_id"] = e.entry_id
    atomic_write_json(Path(work_dir) / "drill-report.json", rep)
    return rep


def drills(store_or_url: Any, hospital_id: str | None = None) -> pd.DataFrame:
    """The drills in the audit log: entry id, when, who, fault, passed, seconds, report path."""
    from engine.governance.audit import read_log

    log = read_log(store_or_url, hospital_id)
    cols = ["entry_id", "hospital_id", "at", "actor", "fault", "passed", "seconds", "report"]
    if not len(log):
        return pd.DataFrame(columns=cols)
    d = log[log["kind"] == "drill"]
    rows = [{"entry_id": r.entry_id, "hospital_id": r.hospital_id, "at": r.at, "actor": r.actor,
             "fault": r.payload.get("fault"), "passed": r.payload.get("passed"), "seconds": r.payload.get("seconds"),
             "report": r.payload.get("report")} for r in d.itertuples()]
    return pd.DataFrame(rows, columns=cols)
