"""State for the governance page's rollout section (pages/governance.py): the canary, drills and incidents.

Every action runs as the signed-in user; the engine checks the role (engine.pilot.record.PILOT_ACTIONS)
and audits it. Drill reports go to ``DRILLS_DIR`` (default ``var/drills``); the last one is kept in the
session so a rerun of the page never runs it again.
"""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import state

from dashboard.keys import DRILL_KEY, REPORT_KEY  # noqa: F401


def _store():
    return state.governance().engine


def _user():
    user = state.active_user()
    if user is None:
        raise PermissionError("Sign in first.")
    return user


# ------------------------------------------------------------------ canary


def canary_status(hospital_id: str) -> tuple[Any, Any, pd.DataFrame]:
    """(the active canary or None, the newest canary or None, every canary of the hospital as a table, newest first)."""
    from engine.pilot.canary import canaries

    rows = canaries(_store(), hospital_id)
    table = pd.DataFrame([{"canary": c.canary_id, "state": c.state, "scope": c.scope.label(), "go_live": f"{c.go_live:%Y-%m-%d}",
                           "started_by": c.started_by, "stopped_by": c.stopped_by, "stop_reason": c.stop_reason,
                           "audit_entries": ", ".join(str(x) for x in (c.start_entry_id, c.stop_entry_id) if x)} for c in rows])
    return next((c for c in rows if c.active), None), (rows[0] if rows else None), table


def proposal(hospital_id: str, h, mv, day, params):
    """(PlanResult, note) to propose for ``day``: the optimizer's plan, or under an active canary the
    canary's (engine.pilot.canary.canary_plan: control cases where the rules put them)."""
    from engine.pilot.canary import active_canary, canary_plan

    c = active_canary(_store(), hospital_id)
    if c is None or pd.Timestamp(day) < c.go_live:
        return state.cached_plan(hospital_id, mv.version, state.loaded_at(hospital_id), str(pd.Timestamp(day).date()), params), ""
    fc = state.upcoming_forecasts(hospital_id, mv.version, state.loaded_at(hospital_id))
    cp = canary_plan(h, fc, day, c, params)
    return cp.result, f"canary {c.canary_id}: " + "; ".join(cp.notes)


def scope_choices(h, kind: str) -> list[str]:
    from engine.pilot.canary import CanaryScope

    return CanaryScope(kind, ("-",)).known(h)


def start_canary(hospital_id: str, h, kind: str, values: list[str], go_live, note: str = ""):
    from engine.pilot.canary import CanaryScope
    from engine.pilot.canary import start_canary as start

    return start(_store(), hospital_id, h, CanaryScope(kind, tuple(values)), pd.Timestamp(go_live), _user(), note=note)


def stop_canary(hospital_id: str, reason: str):
    from engine.pilot.canary import stop_canary as stop

    st.session_state.pop(REPORT_KEY, None)
    return stop(_store(), hospital_id, _user(), reason)


def canary_report(hospital_id: str, h, canary, pre_weeks: int) -> dict[str, Any]:
    """The difference-in-differences report (kept in the session for the canary it was made for)."""
    from engine.pilot.canary import DidParams
    from engine.pilot.canary import canary_report as report
    from engine.pilot.record import require_pilot

    require_pilot(_user(), "shadow_report")  # reading outcomes: anyone who may read schedules
    rep = report(h, canary, DidParams(pre_weeks=pre_weeks))
    st.session_state[REPORT_KEY] = {"hospital_id": hospital_id, "canary_id": canary.canary_id, "report": rep}
    return rep


def last_report(hospital_id: str, canary) -> dict[str, Any] | None:
    got = st.session_state.get(REPORT_KEY)
    if got and canary is not None and got["hospital_id"] == hospital_id and got["canary_id"] == canary.canary_id:
        return got["report"]
    return None


def estimates_table(report: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"metric": m, "canary minus control, after minus before (a day)": e["did"],
                          f"{e['level']:.0%} interval low": e["ci_lo"], f"{e['level']:.0%} interval high": e["ci_hi"],
                          "gap before go-live": e["pre_gap_mean"], "gap after": e["post_gap_mean"], "favours": e["favours"]}
                         for m, e in report["estimates"].items()])


# ------------------------------------------------------------------ drills


def drill_folder(h) -> Path | None:
    """The hospital's source folder when it still exists (drills copy it), else None."""
    src = Path(str(getattr(h, "source", "") or ""))
    return src if str(src) and src.is_dir() and (src / "cases.csv").exists() else None


def drill_faults() -> tuple[str, ...]:
    """The faults a rollback drill can inject (engine.pilot.drill.FAULTS)."""
    from engine.pilot.drill import FAULTS

    return FAULTS


def run_drill(hospital_id: str, h, fault: str) -> dict[str, Any]:
    from engine.pilot.drill import DrillParams, audited_drill
    from engine.pilot.record import require_pilot

    user = _user()
    require_pilot(user, "drill")
    folder = drill_folder(h)
    if folder is None:
        raise ValueError(f"the hospital's folder ({getattr(h, 'source', '')!r}) is not on this machine: run "
                         f"`python -m engine drill --data DIR --fault {fault}` on a copy of its files")
    root = Path(os.environ.get("DRILLS_DIR") or Path("var") / "drills")
    work = root / hospital_id / f"{fault}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}"
    params = DrillParams(fault, plan_params=state.default_plan_params())
    rep = audited_drill(_store(), folder, params, work, hospital_id=hospital_id, actor=(user.name, user.role),
                        model=state.current_model(hospital_id))
    st.session_state[DRILL_KEY] = {"hospital_id": hospital_id, "report": rep}
    return rep


def last_drill(hospital_id: str) -> dict[str, Any] | None:
    got = st.session_state.get(DRILL_KEY)
    return got["report"] if got and got["hospital_id"] == hospital_id else None


# ------------------------------------------------------------------ incidents and the board


def board(hospital_id: str) -> dict[str, Any]:
    from engine.pilot.incident import board as b
    from engine.pilot.record import require_pilot

    require_pilot(_user(), "incident")
    return b(_store(), hospital_id)


def incident_table(b: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"incident": i["incident_id"], "class": i["defect_class"], "title": i["title"],
                          "occurred_on": i["occurred_on"], "audit_entries": ", ".join(map(str, i["audit_entry_ids"])),
                          "recorded_by": i["recorded_by"], "recorded_at": i["recorded_at"], "remedy": i["remedy"]}
                         for i in b["incidents"]])


def add_incident(hospital_id: str, title: str, defect_class: str, description: str, entries: str, remedy: str = "",
                 occurred_on=None) -> dict[str, Any]:
    from engine.pilot.incident import IncidentInput, add_incident as add

    try:
        ids = tuple(int(x) for x in str(entries or "").replace(" ", "").split(",") if x)
    except ValueError as exc:
        raise ValueError(f"audit entry ids: {entries!r} must be whole numbers, comma-separated") from exc
    rec = IncidentInput(title, defect_class, description, ids, remedy, f"{pd.Timestamp(occurred_on):%Y-%m-%d}" if occurred_on else None)
    return add(_store(), hospital_id, rec, _user())


def export_board_bytes(hospital_id: str) -> bytes:
    from engine.pilot.incident import export_board

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "board.json"
        export_board(_store(), path, hospital_id, _user())
        return path.read_bytes()
