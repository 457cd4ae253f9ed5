"""Shadow mode (issue 19): the product plans and records its recommendation every day, publishes nothing.

A shadow run plans a day's booked cases of the shadow scope (the whole hospital, or chosen service lines
or sites) and keeps the recommendation (schedule rows and the forecasts it used) in the store's
``pilot_shadow_runs`` table (:mod:`engine.pilot.store`), versioned per day (1, 2, ...), with a
``shadow_run`` audit entry in the same transaction (data hash, model version, parameters, actor, the
schedule's digest). It never touches the governance ledger's versions, so nothing of it can be published.
A past day is planned as the hospital stood the evening before (``engine.policies.as_of_hospital``), so a
pilot can also be back-filled on history.

When the day's actuals arrive, :func:`shadow_report` compares the day's latest recommendation with what
happened: forecast error of its cases (P50 error, P80/P95 coverage), overtime it would have avoided or
caused (the recommendation and the real schedule both run on the day's actual durations, cancellations
and add-ons, with turnovers and PACU stays drawn on common random numbers), and the cases it would have
deferred and what became of them. The report is audited (``shadow_report``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from engine.errors import InputError, Problem
from engine.governance.canonical import canonical, schedule_from_records, schedule_to_records, sha256
from engine.hospital import Hospital
from engine.timeutil import room_minutes


def _err(file: str, column: str | None, message: str) -> InputError:
    return InputError(Problem(file, None, column, message))


FORECAST_COLUMNS = ["case_id", "p50", "p80", "p95", "cancel_prob"]
SIM_METRICS = ("overtime_minutes", "pacu_hold_minutes", "elective_cases_run")


@dataclass(frozen=True)
class ShadowParams:
    """What a shadow run covers and how it plans. Empty ``service_lines`` and ``sites``: the whole hospital."""

    service_lines: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    solver: str = "highs"
    time_limit_s: float = 20.0
    reps: int = 30  # draws of turnovers / PACU stays when the report runs both schedules on the actuals
    seed: int = 0

    def __post_init__(self) -> None:
        from engine.plan.params import SOLVERS

        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0, got {self.time_limit_s}")
        if self.reps < 1:
            raise ValueError(f"reps must be >= 1, got {self.reps}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    def scope(self) -> dict[str, list[str]]:
        return {"service_lines": sorted(self.service_lines), "sites": sorted(self.sites)}

    def scope_label(self) -> str:
        parts = ([f"service lines {', '.join(sorted(self.service_lines))}"] if self.service_lines else []) + (
            [f"sites {', '.join(sorted(self.sites))}"] if self.sites else [])
        return " and ".join(parts) or "the whole hospital"


def in_scope(hospital: Hospital, params: ShadowParams) -> Hospital:
    """The hospital limited to the shadow scope: its rooms at the chosen sites, its cases of the chosen lines
    (other cases' history is kept, so forecasts see the whole record)."""
    h = hospital
    rooms = h.rooms
    if params.sites:
        if "site" not in rooms.columns:
            raise _err("rooms.csv", "site", "the hospital's rooms name no site (rooms.csv has no site column)")
        unknown = sorted(set(params.sites) - set(rooms["site"].astype(str)))
        if unknown:
            raise _err("command line", "--sites", f"no rooms at site(s) {', '.join(unknown)} (known: {', '.join(sorted(set(rooms['site'].astype(str))))})")
        rooms = rooms[rooms["site"].astype(str).isin(params.sites)]
    cases = h.cases
    if params.service_lines:
        known = set(cases["service_line"].dropna().astype(str))
        unknown = sorted(set(params.service_lines) - known)
        if unknown:
            raise _err("command line", "--service-lines", f"no cases of service line(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        keep = cases["service_line"].astype(str).isin(params.service_lines) | (cases["status"] != "booked")
        cases = cases[keep]
    if params.sites:
        elsewhere = (cases["status"] == "booked") & cases["room_id"].notna() & ~cases["room_id"].isin(rooms["room_id"])
        cases = cases[~elsewhere]
        return dataclasses.replace(h, rooms=rooms.reset_index(drop=True), cases=cases.reset_index(drop=True),
                                   blocks=h.blocks[h.blocks["room_id"].isin(rooms["room_id"])].reset_index(drop=True))
    return dataclasses.replace(h, cases=cases.reset_index(drop=True))


def planning_hospital(hospital: Hospital, day) -> Hospital:
    """The hospital a shadow run of ``day`` plans on: as it stood the evening before a past day, else as it is."""
    from engine.policies import as_of_hospital

    d = pd.Timestamp(day).normalize()
    return as_of_hospital(hospital, d)[0] if d < hospital.as_of() else hospital


def shadow_run(store_or_url: Any, hospital_id: str, hospital: Hospital, forecasts: pd.DataFrame, day, model_version: str,
               params: ShadowParams | None = None, actor: tuple[str, str] | None = None) -> dict[str, Any]:
    """Plan ``day`` in shadow and keep the recommendation (stored, audited, versioned, never published).

    ``hospital`` is the planning hospital (:func:`planning_hospital`); ``forecasts`` cover its booked cases.
    Returns the run's summary with ``shadow_version`` and ``audit_seq``.
    """
    from engine.governance.audit import append_entry, audit_key
    from engine.governance.audit_store import run_tx
    from engine.pilot.record import cli_actor, payload
    from engine.pilot.store import insert_shadow_run, next_shadow_version, pilot_engine
    from engine.plan import PlanParams, plan

    audit_key()  # no key: nothing planned, nothing kept
    p = params or ShadowParams()
    d = pd.Timestamp(day).normalize()
    h = in_scope(hospital, p)
    booked = h.cases[(h.cases["status"] == "booked") & (h.cases["surgery_date"] == d)]
    if booked.empty:
        raise _err("command line", "--date", f"no booked cases on {d:%Y-%m-%d} in the shadow scope ({p.scope_label()})")
    missing = sorted(set(booked["case_id"]) - set(forecasts["case_id"]))
    if missing:
        raise ValueError(f"forecasts miss {len(missing)} booked case(s) of {d:%Y-%m-%d}, e.g. {missing[0]}")
    res = plan(h, forecasts, d, PlanParams(days=1, solver=p.solver, time_limit_s=p.time_limit_s))
    s, pj = res.schedule, res.to_json()
    sched_records = schedule_to_records(s)
    fc_records = forecasts[forecasts["case_id"].isin(booked["case_id"])].reindex(columns=FORECAST_COLUMNS).to_dict("records")
    name, role = actor or cli_actor()
    summary = {"command": "shadow run", "day": f"{d:%Y-%m-%d}", "scope": p.scope(), "published": False,
               "solver": pj.get("solver"), "status": pj.get("status"), "fallback_used": pj.get("fallback_used"),
               "n_scheduled": int((s["status"] == "scheduled").sum()), "n_deferred": int((s["status"] == "deferred").sum()),
               "expected_overtime_minutes": pj.get("expected_overtime_minutes"), "utilization": pj.get("utilization")}
    eng, owned = pilot_engine(store_or_url)
    from engine.governance.audit_store import ensure_tables

    ensure_tables(eng)

    def tx(conn) -> dict[str, Any]:
        version = next_shadow_version(conn, hospital_id, d.date())
        body = summary | {"shadow_version": version}
        e = append_entry(conn, hospital_id, "shadow_run", name, role,
                         payload(hospital=h, model_version=model_version, params=p, summary=body, schedule=s))
        insert_shadow_run(conn, hospital_id, d.date(), version, scope=p.scope(), model_version=model_version, actor=name,
                          summary=body, schedule=sched_records, forecasts=fc_records, audit_seq=e.seq)
        return body | {"audit_seq": e.seq, "model_version": model_version}

    try:
        return run_tx(eng, tx)
    finally:
        if owned:
            eng.dispose()


def shadow_days(store_or_url: Any, hospital_id: str, hospital: Hospital, days: list, params: ShadowParams | None = None, *,
                forecaster: Any = None, model_version: str | None = None, iterations: int = 150,
                actor: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """Shadow-run each of ``days`` (all past, or all coming). Past days get one forecaster trained on data
    before the first of them (leak-free, ``iterations``); coming days need the caller's ``forecaster`` (the
    registered model) and its ``model_version``. Days without booked cases in the scope are skipped."""
    from engine.pilot.replay import train_before

    days = [pd.Timestamp(d).normalize() for d in days]
    in_scope(hospital, params or ShadowParams())  # an unknown service line or site: refused before any training
    past = [d for d in days if d < hospital.as_of()]
    if past and len(past) < len(days):
        raise _err("command line", "--days", f"the days {days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d} straddle the hospital's "
                                             f"as-of date {hospital.as_of():%Y-%m-%d}: shadow past and coming days separately")
    if past:
        forecaster, meta = train_before(hospital, days[0], iterations)
        model_version = f"trained before {meta['trained_until']} ({iterations} iterations)"
    elif forecaster is None:
        raise ValueError("coming days need the registered forecaster (forecaster=...)")
    runs = []
    for d in days:
        hp = in_scope(planning_hospital(hospital, d), params or ShadowParams())
        booked = hp.cases[(hp.cases["status"] == "booked") & (hp.cases["surgery_date"] == d)]
        if booked.empty:
            continue
        forecasts = forecaster.predict(booked, hp.cases[hp.cases["surgery_date"] < d], as_of=d)[FORECAST_COLUMNS]
        runs.append(shadow_run(store_or_url, hospital_id, planning_hospital(hospital, d), forecasts, d, str(model_version),
                               params, actor=actor))
    return runs


def shadow_runs(store_or_url: Any, hospital_id: str, day=None) -> pd.DataFrame:
    """The kept shadow runs (oldest first): day, shadow_version, scope, model_version, actor, created_at,
    n_scheduled, n_deferred, expected_overtime_minutes, audit_seq."""
    from engine.pilot.store import shadow_rows

    cols = ["day", "shadow_version", "scope", "model_version", "actor", "created_at", "n_scheduled", "n_deferred",
            "expected_overtime_minutes", "audit_seq"]
    rows = [{"day": f"{r['day']:%Y-%m-%d}", "shadow_version": r["shadow_version"], "scope": ShadowParams(
                service_lines=tuple(r["scope"]["service_lines"]), sites=tuple(r["scope"]["sites"])).scope_label(),
             "model_version": r["model_version"], "actor": r["actor"], "created_at": r["created_at"],
             **{k: r["summary"].get(k) for k in ("n_scheduled", "n_deferred", "expected_overtime_minutes")},
             "audit_seq": r["audit_seq"]} for r in shadow_rows(store_or_url, hospital_id, day)]
    return pd.DataFrame(rows, columns=cols)


def latest_recommendation(store_or_url: Any, hospital_id: str, day) -> dict[str, Any]:
    """The day's newest shadow run, checked against its audit entry (the stored schedule's digest must match)."""
    from engine.governance.audit import read_log
    from engine.pilot.store import shadow_rows

    d = pd.Timestamp(day).normalize()
    rows = shadow_rows(store_or_url, hospital_id, d)
    if not rows:
        raise _err("command line", "--from", f"no shadow run kept for {d:%Y-%m-%d}: run `python -m engine shadow run --date {d:%Y-%m-%d}` first")
    rec = rows[-1]
    log = read_log(store_or_url, hospital_id)
    entry = log[(log["kind"] == "shadow_run") & (log["seq"] == rec["audit_seq"])]
    digest = sha256(canonical(rec["schedule"]))
    if entry.empty or entry.iloc[0]["payload"].get("schedule_sha256") != digest:
        raise InputError(f"the shadow run of {d:%Y-%m-%d} (version {rec['shadow_version']}) does not match its audit entry "
                         f"(seq {rec['audit_seq']}): the stored recommendation was altered; run `python -m engine audit verify`",
                         file="pilot_shadow_runs")
    return rec


def _forecast_error(sched: pd.DataFrame, fc: pd.DataFrame, cases: pd.DataFrame, timezone: str | None = None) -> dict[str, Any]:
    got = cases.reindex([i for i in sched["case_id"] if i in cases.index])
    done = got[(got["status"] == "completed") & got["wheels_in"].notna() & got["wheels_out"].notna()]
    actual = room_minutes(done, timezone)
    f = fc.set_index("case_id").reindex(done.index)
    ok = f["p50"].notna()
    actual, f = actual[ok], f[ok]
    err = actual - f["p50"]
    n = int(len(err))
    return {"n_cases": n, "mae_p50_minutes": float(err.abs().mean()) if n else None,
            "bias_p50_minutes": float(err.mean()) if n else None,
            "coverage_p80": float((actual <= f["p80"]).mean()) if n else None,
            "coverage_p95": float((actual <= f["p95"]).mean()) if n else None}


def shadow_report_day(store_or_url: Any, hospital_id: str, hospital: Hospital, day, params: ShadowParams | None = None
                      ) -> dict[str, Any]:
    """The day's latest shadow recommendation against what happened (``hospital`` holds the day's actuals). Not audited."""
    from engine.policies import as_booked_schedule, as_of_hospital
    from engine.sim import compare_policies, replay_actuals

    from engine.pilot.replay import observed_day

    p = params or ShadowParams()
    d = pd.Timestamp(day).normalize()
    if d >= hospital.as_of():
        raise _err("command line", "--from", f"the actuals of {d:%Y-%m-%d} have not arrived (the hospital is as of {hospital.as_of():%Y-%m-%d})")
    rec = latest_recommendation(store_or_url, hospital_id, d)
    scope = ShadowParams(service_lines=tuple(rec["scope"]["service_lines"]), sites=tuple(rec["scope"]["sites"]))
    sched = schedule_from_records(rec["schedule"])
    fc = pd.DataFrame(rec["forecasts"], columns=FORECAST_COLUMNS)
    cases = hospital.cases.set_index("case_id")
    deferred = sched.loc[sched["status"] == "deferred", "case_id"].tolist()
    fate = cases["status"].reindex(deferred).fillna("unknown")
    would_defer = {"n": len(deferred), "case_ids": deferred, "ran_anyway": int((fate == "completed").sum()),
                   "cancelled_anyway": int((fate == "cancelled").sum())}
    # Both schedules on the day's actuals, same draws: the recommendation against the real (booked) schedule.
    scoped = in_scope(as_of_hospital(hospital, d)[0], scope)
    booked_ids = scoped.cases.loc[(scoped.cases["status"] == "booked") & (scoped.cases["surgery_date"] == d), "case_id"]
    fc_all = fc.set_index("case_id").reindex(booked_ids)
    fc_all = fc_all.fillna({"p50": fc["p50"].median(), "p80": fc["p80"].median(), "p95": fc["p95"].median(),
                            "cancel_prob": 0.0}).reset_index()
    actual_sched = as_booked_schedule(scoped, fc_all, d, 1)
    cmp_ = compare_policies(scoped, {"shadow": sched, "actual": actual_sched}, fc_all, "normal", p.reps, p.seed,
                            pd.DataFrame(columns=["date", "service_line", "expected_cases"]),
                            actuals=replay_actuals(hospital, [d]))
    sim = {name: {m: float(r.per_rep[m].mean()) for m in SIM_METRICS} for name, r in cmp_.results.items()}
    delta = sim["shadow"]["overtime_minutes"] - sim["actual"]["overtime_minutes"]
    whole = not scope.service_lines and not scope.sites
    return {"day": f"{d:%Y-%m-%d}", "shadow_version": rec["shadow_version"], "shadow_audit_seq": rec["audit_seq"],
            "scope": rec["scope"], "model_version": rec["model_version"],
            "forecast": _forecast_error(sched, fc, cases, hospital.settings.timezone),
            "overtime": {"shadow_minutes": sim["shadow"]["overtime_minutes"],
                         "actual_schedule_minutes": sim["actual"]["overtime_minutes"],
                         "recorded_minutes": observed_day(hospital, d)["overtime_minutes"] if whole else None,
                         "avoided_minutes": max(0.0, -delta), "caused_minutes": max(0.0, delta)},
            "pacu_hold": {"shadow_minutes": sim["shadow"]["pacu_hold_minutes"],
                          "actual_schedule_minutes": sim["actual"]["pacu_hold_minutes"]},
            "cases_run": {"shadow": sim["shadow"]["elective_cases_run"], "actual_schedule": sim["actual"]["elective_cases_run"]},
            "would_defer": would_defer}


def _mean(xs: list[Any]) -> float | None:
    v = [float(x) for x in xs if x is not None]
    return sum(v) / len(v) if v else None


def shadow_report(store_or_url: Any, hospital_id: str, hospital: Hospital, days: list, params: ShadowParams | None = None,
                  actor: tuple[str, str] | None = None) -> dict[str, Any]:
    """:func:`shadow_report_day` for each of ``days`` that has a shadow run, the totals, and one audit entry."""
    from engine.pilot.record import record

    p = params or ShadowParams()
    per_day, skipped = [], []
    for d in days:
        d = pd.Timestamp(d).normalize()
        try:
            per_day.append(shadow_report_day(store_or_url, hospital_id, hospital, d, p))
        except InputError as exc:
            if "no shadow run kept" not in str(exc):
                raise
            skipped.append(f"{d:%Y-%m-%d}")
    if not per_day:
        raise _err("command line", "--from", f"no shadow run kept for any of the {len(days)} day(s) asked: run `python -m engine shadow run` first")
    ot = [r["overtime"] for r in per_day]
    totals = {"n_days": len(per_day), "overtime_avoided_minutes": sum(o["avoided_minutes"] for o in ot),
              "overtime_caused_minutes": sum(o["caused_minutes"] for o in ot),
              "overtime_net_minutes": sum(o["shadow_minutes"] - o["actual_schedule_minutes"] for o in ot),
              "shadow_overtime_minutes_mean": _mean([o["shadow_minutes"] for o in ot]),
              "actual_schedule_overtime_minutes_mean": _mean([o["actual_schedule_minutes"] for o in ot]),
              "mae_p50_minutes_mean": _mean([r["forecast"]["mae_p50_minutes"] for r in per_day]),
              "coverage_p80_mean": _mean([r["forecast"]["coverage_p80"] for r in per_day]),
              "would_defer": sum(r["would_defer"]["n"] for r in per_day),
              "would_defer_ran_anyway": sum(r["would_defer"]["ran_anyway"] for r in per_day)}
    out = {"days": per_day, "totals": totals, "skipped_days": skipped, "published": False,
           "method": (f"each day's latest shadow recommendation and the real booked schedule run on the day's actual "
                      f"durations, cancellations and add-ons; turnovers and PACU stays drawn {p.reps} times on common "
                      "random numbers; forecast error from the cases' recorded wheels-in to wheels-out")}
    out["audit_seq"] = record(store_or_url, hospital_id, "shadow_report", hospital=hospital, params=p, actor=actor,
                              summary={"command": "shadow report", "days": [r["day"] for r in per_day],
                                       "shadow_audit_seqs": [r["shadow_audit_seq"] for r in per_day], "totals": totals}).seq
    return out
