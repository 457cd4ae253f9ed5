"""State for the Pilot & rollout page (pages/rollout.py): role checks, engine calls, results kept in the session.

Runs are started by a button and kept in ``st.session_state`` (each one is audited when it runs, so a
rerun of the page never repeats it or its audit entry).
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import state

REPLAY_KEY = "rollout_replay"


def _actor(user) -> tuple[str, str]:
    return user.name, user.role


def run_replay(hospital_id: str, loaded, start, params, progress=None) -> dict[str, Any]:
    """Replay past days (engine.pilot.replay.audited_replay) for the signed-in user; kept in the session."""
    from engine.pilot.record import require_pilot
    from engine.pilot.replay import audited_replay

    user = state.active_user()
    require_pilot(user, "replay")
    out = audited_replay(state.governance().engine, hospital_id, loaded.hospital, start, params, actor=_actor(user),
                         progress=progress)
    st.session_state[REPLAY_KEY] = {"hospital_id": hospital_id, "report": out}
    return out


def last_replay(hospital_id: str) -> dict[str, Any] | None:
    got = st.session_state.get(REPLAY_KEY)
    return got["report"] if got and got["hospital_id"] == hospital_id else None


def replay_tables(report: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(policies side by side: metric x optimized/rules/actual means; paired differences; per-day frame)."""
    pol = report["policies"]
    side = pd.DataFrame({p: {m: v["mean"] for m, v in pol[p].items()} for p in ("optimized", "rules", "actual") if p in pol})
    side["recorded"] = pd.Series({m: v["mean"] for m, v in report.get("observed", {}).items()})
    paired = pd.DataFrame([{"metric": m, "optimized - rules (mean a day)": v["diff_mean"],
                            f"{v['level']:.0%} interval low": v["ci_lo"], f"{v['level']:.0%} interval high": v["ci_hi"],
                            "days better": v["better_days"], "days worse": v["worse_days"]}
                           for m, v in report["paired"].items()])
    per_day = pd.DataFrame(report["per_day"])
    return side, paired, per_day
