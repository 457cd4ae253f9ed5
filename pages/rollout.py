"""Pilot & rollout (issue 19): the evidence before go-live and the guard rails after it.

Sections: retrospective replay ("had we used it last month..."). Every run is audited with the
signed-in user; the engine checks the role (engine.pilot.record.PILOT_ACTIONS)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import rollout_state as rs
from dashboard import state
from engine.errors import InputError
from engine.pilot.replay import ReplayParams

st.title("Pilot & rollout")

current = state.current_hospital()
user = state.active_user()
if current is None or user is None:
    st.info("Choose a hospital (Data page) and sign in (sidebar).")
    st.stop()
hid, loaded = current
h = loaded.hospital
D = ReplayParams()

st.header("Retrospective replay")
st.caption("Past weekdays planned as of the day before by the optimizer and by your block rules (forecasts trained "
           "only on data before the first day), then run on what really happened: actual durations, cancellations "
           "and add-ons. `actual` is your real schedule run the same way; `recorded` is what your records say. "
           "Only turnovers and PACU stays are drawn. The command line does the same: "
           "`python -m engine replay --data DIR --from DATE --days 20`.")
with st.form("replay_form"):
    c1, c2, c3, c4 = st.columns(4)
    start = c1.date_input("First day", value=(h.as_of() - pd.Timedelta(days=28)).date(), key="replay_from")
    days = c2.number_input("Weekdays", 1, 60, 5, key="replay_days",
                           help=f"The command line's default is {D.days}; each day takes seconds to a minute.")
    reps = c3.number_input("Draws a day", 1, 500, D.reps, key="replay_reps")
    limit = c4.number_input("Optimizer limit per day (s)", 1.0, 300.0, D.time_limit_s, key="replay_limit")
    go = st.form_submit_button("Run the replay", disabled=state.why_not("view_schedule") is not None)
if go:
    bar = st.progress(0.0, text="Starting...")
    try:
        rs.run_replay(hid, loaded, pd.Timestamp(start),
                      ReplayParams(days=int(days), reps=int(reps), time_limit_s=float(limit), iterations=D.iterations),
                      progress=lambda f, t: bar.progress(min(max(f, 0.0), 1.0), text=t))
    except (InputError, ValueError, PermissionError) as exc:
        st.error(f"Replay refused: {exc}")
    bar.empty()
report = rs.last_replay(hid)
if report is None:
    st.info("No replay run in this session yet.")
else:
    side, paired, per_day = rs.replay_tables(report)
    st.success(report["verdict"])
    st.markdown(f"**{report['n_days']} weekdays, {report['from']} to {report['to']}**; model trained before "
                f"{report['model'].get('trained_until')}; audit entry {report['audit_seq']}."
                + (f" The optimizer fell back to the rules on {len(report['optimizer_fallback_days'])} day(s)."
                   if report["optimizer_fallback_days"] else ""))
    st.subheader("Mean a day, side by side")
    st.dataframe(side.round(3), key="replay_side")
    st.subheader("Optimized minus rules, paired by day")
    st.dataframe(paired.round(3), hide_index=True, key="replay_paired")
    st.subheader("Overtime by day")
    st.line_chart(per_day.pivot(index="date", columns="policy", values="overtime_minutes"))
    st.download_button("Download the replay (JSON)", data=pd.Series(report).to_json(), file_name="replay.json",
                       key="replay_download")
