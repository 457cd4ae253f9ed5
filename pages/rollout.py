"""Pilot & rollout (issue 19): the evidence before go-live and the guard rails after it.

Sections: retrospective replay ("had we used it last month..."), shadow mode (plan and record every day,
publish nothing, compare with what happened), planned against actual (the daily gaps and the outcome gate).
Every run is audited with the signed-in user; the engine checks the role (engine.pilot.record.PILOT_ACTIONS)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import rollout_state as rs
from dashboard import state
from engine.errors import InputError

st.title("Pilot & rollout")

current = state.current_hospital()
user = state.active_user()
if current is None or user is None:
    st.info("Choose a hospital (Data page) and sign in (sidebar).")
    st.stop()
hid, loaded = current
h = loaded.hospital
D = rs.replay_params()

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
                      rs.replay_params(days=int(days), reps=int(reps), time_limit_s=float(limit), iterations=D.iterations),
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

st.header("Shadow mode")
st.caption("The product plans each day and records its recommendation (audited, versioned) but publishes nothing. "
           "Past days are planned as the hospital stood the evening before, with a model trained only on earlier data; "
           "coming days use the registered model. Once a day's actuals are in, compare: forecast error, overtime the "
           "recommendation would have avoided or caused (both schedules run on the day's actual durations, cancellations "
           "and add-ons), and the cases it would have deferred. Command line: `python -m engine shadow run|report|list`.")
SP = rs.shadow_params()
lines = sorted(h.cases["service_line"].dropna().astype(str).unique())
sites = sorted(h.rooms["site"].dropna().astype(str).unique()) if "site" in h.rooms.columns else []
with st.form("shadow_run_form"):
    c1, c2, c3, c4 = st.columns(4)
    s_start = c1.date_input("First day", value=(h.as_of() - pd.Timedelta(days=14)).date(), key="shadow_from")
    s_days = c2.number_input("Weekdays", 1, 20, 1, key="shadow_days")
    s_limit = c3.number_input("Optimizer limit per day (s)", 1.0, 300.0, SP.time_limit_s, key="shadow_limit")
    s_iter = c4.number_input("Training iterations (past days)", 10, 2000, D.iterations, key="shadow_iterations")
    s_lines = st.multiselect("Service lines in shadow (none: all)", lines, key="shadow_lines")
    s_sites = st.multiselect("Sites in shadow (none: all)", sites, key="shadow_sites") if len(sites) > 1 else []
    s_go = st.form_submit_button("Plan in shadow", disabled=state.why_not("propose") is not None)
if s_go:
    with st.spinner("Planning in shadow..."):
        try:
            runs = rs.run_shadow(hid, loaded, pd.Timestamp(s_start), int(s_days),
                                 rs.shadow_params(service_lines=tuple(s_lines), sites=tuple(s_sites),
                                                  time_limit_s=float(s_limit)),
                                 iterations=int(s_iter))
            st.success(f"Recorded {len(runs)} shadow recommendation(s); nothing was published.")
        except (InputError, ValueError, PermissionError) as exc:
            st.error(f"Shadow run refused: {exc}")
kept = rs.shadow_table(hid)
if kept.empty:
    st.info("No shadow runs kept for this hospital yet.")
else:
    st.dataframe(kept.drop(columns=["created_at"]), hide_index=True, key="shadow_runs")
    with st.form("shadow_report_form"):
        c1, c2, c3 = st.columns(3)
        r_start = c1.date_input("First day", value=pd.Timestamp(kept["day"].iloc[0]).date(), key="shadow_report_from")
        r_days = c2.number_input("Weekdays", 1, 60, 5, key="shadow_report_days")
        r_reps = c3.number_input("Draws a day", 1, 500, SP.reps, key="shadow_report_reps")
        r_go = st.form_submit_button("Compare with what happened", disabled=state.why_not("view_schedule") is not None)
    if r_go:
        with st.spinner("Running the recommendation and the real schedule on the actuals..."):
            try:
                rs.run_shadow_report(hid, loaded, pd.Timestamp(r_start), int(r_days), rs.shadow_params(reps=int(r_reps)))
            except (InputError, ValueError, PermissionError) as exc:
                st.error(f"Shadow report refused: {exc}")
    srep = rs.last_shadow_report(hid)
    if srep is not None:
        t = srep["totals"]
        st.markdown(f"**Over {t['n_days']} day(s)** the recommendation would have avoided "
                    f"{t['overtime_avoided_minutes']:.0f} min of overtime and caused {t['overtime_caused_minutes']:.0f} min "
                    f"(net {t['overtime_net_minutes']:+.0f} min); it would have deferred {t['would_defer']} case(s), "
                    f"{t['would_defer_ran_anyway']} of which ran. Audit entry {srep['audit_seq']}.")
        st.dataframe(rs.shadow_report_table(srep).round(2), hide_index=True, key="shadow_report_table")

st.header("Planned against actual")
st.caption("After each day: the gaps between the plan in force (the published version, else your booked schedule) and "
           "what happened: start delays, overtime, forecast error and P80 coverage, override rate, PACU holds (estimated "
           "from wheels-out times), fairness. The outcome gate (G-OUTCOMES, thresholds in the rules catalog) reads the "
           "last monitored days; when it trips, the next publish is withheld. Command line: `python -m engine monitor`.")
with st.form("monitor_form"):
    c1, c2 = st.columns(2)
    m_start = c1.date_input("First day", value=(h.as_of() - pd.Timedelta(days=7)).date(), key="monitor_from")
    m_days = c2.number_input("Weekdays", 1, 60, 5, key="monitor_days")
    m_go = st.form_submit_button("Monitor these days", disabled=state.why_not("run_gates") is not None)
if m_go:
    with st.spinner("Comparing plans with what happened..."):
        try:
            rs.run_monitor(hid, loaded, pd.Timestamp(m_start), int(m_days))
        except (InputError, ValueError, PermissionError) as exc:
            st.error(f"Monitoring refused: {exc}")
days_kept, gate = rs.monitored(hid)
if days_kept.empty:
    st.info("No day monitored yet.")
else:
    (st.success if gate.passed else st.error)(f"Outcome gate: {gate.message}")
    if not gate.passed:
        st.markdown(f"**Next publish withheld.** {gate.inspect_next}")
    st.dataframe(days_kept.round(2), hide_index=True, key="monitor_days_table")
    st.line_chart(days_kept.set_index("day")[["overtime observed (min)", "overtime planned (min)"]])
