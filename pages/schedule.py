"""Schedule page: the verdict against the block rules first, then plan, see the day per room (P50
bars, P80 whiskers), PACU load, deferrals, case details, the comparison with the rules and the
frontier, the service levels in force, alternatives, exports and day-of re-planning."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, state
from dashboard import schedule_state as ss
from dashboard.schedule_state import EVENT_KINDS, SOLVERS
from engine.errors import InputError

st.title("Schedule")
verdict_box = st.container()  # the verdict opens the page; it follows the plan chosen below
DEFAULTS = state.default_plan_params()
ALT_COLUMNS = {"alternative": "Alternative", "n_scheduled": "Scheduled", "n_deferred": "Deferred",
               "utilization": "Prime-time utilization (planned, P50)", "expected_overtime_minutes": "Expected overtime (min, planned mean)",
               "p80_overtime_minutes": "Overtime if last cases end at P80 (min, planned)", "pacu_peak": "PACU peak (patients)",
               "schedule_from": "Schedule from"}

hid, loaded = state.require_hospital()
h = loaded.hospital
mv = state.require_model(hid, "Plans use the duration forecasts.")
state.require_booked_cases(h, "to plan")

first_day = state.first_booked_day(h)
with st.form("plan_form"):
    c = st.columns(4)
    start = c[0].date_input("First date", value=first_day.date(), key="plan_date")
    days = c[1].number_input("Days", min_value=1, max_value=7, value=DEFAULTS.days, key="plan_days")
    solver = c[2].selectbox("Solver", SOLVERS, index=SOLVERS.index(DEFAULTS.solver),
                            key="plan_solver", help="HiGHS (default) or GLPK optimize; rules = today's first-come-first-served block scheduling")
    limit = c[3].number_input("Time limit (s)", min_value=1.0, max_value=600.0, value=DEFAULTS.time_limit_s, key="plan_time_limit")
    st.form_submit_button("Plan", type="primary")

params = state.default_plan_params(days=int(days), solver=solver, time_limit_s=float(limit))
version, lat = mv.version, state.loaded_at(hid)
try:
    result = state.cached_plan(hid, version, lat, str(start), params)
except InputError as exc:
    st.error(f"Cannot plan: {exc.describe()}")
    st.stop()

if not len(result.schedule):  # no verdict on an empty horizon: nothing was compared
    with verdict_box:
        st.info(f"No booked case falls on the {int(days)} day(s) from {start:%Y-%m-%d}: nothing to plan. "
                f"{' '.join(result.diagnosis)}")
    st.stop()
dc = None if solver == "rules" else state.decision(hid, version, lat, str(start), params)
with verdict_box:
    if dc is None:
        st.info("This is your block rules schedule itself. Choose an optimizer (HiGHS or GLPK) to see it against the rules.")
    else:
        {"better": st.success, "worse": st.warning}.get(dc.outcome, st.info)(f"**{dc.verdict}**")
        st.caption(f"This plan against the rules plan of the same days, both simulated on the same {dc.reps} random "
                   f"days ({dc.scenario} scenario, seed {dc.seed}); a change counts when its paired 95% interval "
                   "excludes zero (tab 'Against the rules').")
if result.banner:
    st.error(f"**Fallback in use.** {result.banner}")
for d in result.diagnosis:
    st.warning(f"Diagnosis: {d}")
k = result.kpis
if result.notice:
    st.warning(result.notice)
if k.get("addon_rooms_held"):
    st.info("Held free for add-ons (the add-on forecast's P80 reserve): " + ", ".join(k["addon_rooms_held"]) + ".")
js = result.to_json()
m = st.columns(6)
m[0].metric("Scheduled", k["n_scheduled"])
m[1].metric("Deferred", k["n_deferred"])
m[2].metric("Prime-time utilization (planned, P50)", f"{k['utilization']:.1%}",
            help="Prime time the plan fills if every case runs to its P50.")
m[3].metric("Expected overtime (planned mean)", f"{k['expected_overtime_minutes']:.0f} min",
            help="Mean minutes past close over the forecast durations of this plan's cases, delays carried from case to case.")
m[4].metric("PACU peak (patients)", k["pacu_peak"])
m[5].metric("Solver", k["solver"])
status = {"optimal": "solved to the MIP gap", "time_limit": "stopped at the time limit", "infeasible": "infeasible",
          "error": "failed", "not_available": "not available"}.get(js["status"], js["status"])
st.caption("Planned figures for this schedule as it stands. The Simulation and What-if pages replay it with "
           "cancellations, add-ons and late starts too, so their simulated overtime differs and says so.")
st.caption(f"Solver {k['solver']}: {status}" + ("" if js["mip_gap"] is None else f", gap {js['mip_gap']:.2%}")
           + f", {js['solve_seconds']:.1f} s.")

schedule = result.schedule
dates = sorted(pd.to_datetime(schedule["date"]).dropna().unique())
if not dates:
    st.info("No booked cases in this horizon.")
    st.stop()
day = st.selectbox("Day", dates, format_func=lambda d: f"{pd.Timestamp(d):%a %d %b %Y}", key="plan_day")

gantt_tab, pacu_tab, deferred_tab, rules_tab, levels_tab, alt_tab, export_tab, replan_tab = st.tabs(
    ["Rooms", "PACU", "Deferred", "Against the rules", "Service levels", "Alternatives", "Export", "Re-plan"])
closes = dict(zip(h.rooms["room_id"], h.rooms["close_time"]))
fc = state.forecasts(hid, version, lat).set_index("case_id")  # masked for the signed-in role
names = state.case_names(hid, lat)

with gantt_tab:
    event = st.plotly_chart(charts.gantt(schedule, day, closes), width="stretch", key="gantt",
                            on_select="rerun", selection_mode="points")
    picked = None
    pts = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) or hasattr(event, "get") else []
    if pts and pts[0].get("customdata"):
        picked = pts[0]["customdata"][0]
    sched_day = schedule[(schedule["status"] == "scheduled") & (pd.to_datetime(schedule["date"]) == pd.Timestamp(day))]
    ids = sched_day["case_id"].tolist()
    if ids:
        idx = ids.index(picked) if picked in ids else 0
        label = {r.case_id: f"{r.case_id} · {pd.Timestamp(r.start):%H:%M} {r.room_id} · {r.service_line} · surgeon {r.surgeon_id}"
                 for r in sched_day.itertuples()}
        cid = st.selectbox("Case details (or click a bar)", ids, index=idx, key="plan_case", format_func=label.get)
        row = schedule.set_index("case_id").loc[cid]
        f = fc.loc[cid] if cid in fc.index else None
        st.markdown(f"**{cid}**: {row['service_line']}, surgeon {row['surgeon_id']}, {row['room_id']} "
                    f"{pd.Timestamp(row['start']):%H:%M} to {pd.Timestamp(row['end_p50']):%H:%M} (P50), "
                    f"{pd.Timestamp(row['end_p80']):%H:%M} (P80)")
        st.markdown(f"**Why this room and time**: {row['reason']}")
        if f is not None:
            st.markdown(f"**Forecast**: P50 {f['p50']:.0f}, P80 {f['p80']:.0f}, P95 {f['p95']:.0f} min; "
                        f"cancellation risk {f['cancel_prob']:.0%}")
            for i in (1, 2, 3):
                if isinstance(f.get(f"reason_{i}"), str):
                    st.markdown(f"- {f[f'reason_{i}']}")
            if f.get("fallback_note"):
                st.warning(f["fallback_note"])

with pacu_tab:
    beds = int(result.instance.staffing.loc[pd.Timestamp(day), "pacu_beds"])
    st.plotly_chart(charts.pacu_load(ss.pacu_occupancy(schedule, day), beds), width="stretch", key="pacu_chart")
    st.caption("Patients in recovery over the day if every case runs to its P50, each staying the typical PACU time.")

with deferred_tab:
    deferred = schedule[schedule["status"] == "deferred"]
    st.markdown(f"**{len(deferred)} deferred cases** in the horizon.")
    st.dataframe(charts.words(charts.display_table(deferred[["case_id", "date", "service_line", "surgeon_id", "reason"]])),
                 hide_index=True, width="stretch")

with rules_tab:
    if dc is None:
        st.info("The rules schedule is shown: there is nothing to compare it with.")
    else:
        st.plotly_chart(charts.decision_intervals(dc.table), width="stretch", key="decision_chart")
        st.dataframe(charts.decision_display(dc.table), hide_index=True, width="stretch", key="decision_table")
        st.caption("Optimized minus rules on the same random days, with paired 95% intervals (minutes, utilization points "
                   "and counts on their own axes). Cases scheduled and deferrals are the plans' own counts.")
        st.markdown("**Cases scheduled against P95 overtime**: this plan, the rules schedule and plans at other "
                    "trade-offs between a deferral and overtime risk, on the same random days.")
        if st.button("Plan the trade-offs", key="frontier_button") or st.session_state.get(state.FRONTIER_SHOWN_KEY):
            st.session_state[state.FRONTIER_SHOWN_KEY] = True
            front = state.frontier(hid, version, lat, str(start), params, dc.reps, dc.seed)
            st.plotly_chart(charts.frontier_chart(front), width="stretch", key="schedule_frontier")
        else:
            st.caption("A few more plans of these days (the Leadership overview shows the same frontier for its plan).")

with levels_tab:
    st.dataframe(charts.words(ss.service_levels(h, k.get("service_level"))), hide_index=True, width="stretch",
                 key="service_levels_table")
    if k.get("service_level"):
        st.caption(k["service_level"]["text"])

with alt_tab:
    if st.button("Compute the alternatives", key="alternatives_button") or st.session_state.get(state.ALTERNATIVES_SHOWN_KEY):
        st.session_state[state.ALTERNATIVES_SHOWN_KEY] = True
        alts = state.cached_alternatives(hid, version, lat, str(start), params.with_(solver="highs" if solver == "rules" else solver))
        table = ss.alternatives_table(alts)
        st.dataframe(table.drop(columns=["solver", "fallback"]).rename(columns=ALT_COLUMNS),
                     hide_index=True, width="stretch", key="alternatives_table",
                     column_config={"Prime-time utilization": st.column_config.NumberColumn(format="percent")})
        fell_back = table.loc[table["fallback"], "alternative"].tolist()
        if fell_back:
            st.warning(f"{', '.join(fell_back)}: the optimizer could not prove {'this weighting' if len(fell_back) == 1 else 'these weightings'} "
                       "within the tolerance, so the row shows the rules schedule (see 'Schedule from'); rows that fell back "
                       "are the same schedule. A longer time limit or fewer days may let the optimizer finish.")
        st.plotly_chart(charts.alternatives_bars(table), width="stretch", key="alternatives_chart")
        st.caption("Same hard rules, different weights: utilization-first fills prime time harder, "
                   "overtime-averse protects the close at P80. Ranked by the order shown. Expected overtime is the mean "
                   "over the forecast durations with delays carried from case to case; 'if last cases end at P80' takes "
                   "each room's planned P80 finish as it stands (no carried delay), so it can be below the mean: it is "
                   "not the 80th percentile of overtime.")
    else:
        st.caption("Three ranked alternatives (utilization-first, balanced, overtime-averse) with their KPIs side by side.")

with export_tab:
    st.download_button("Download schedule.csv", ss.schedule_csv(schedule), file_name=f"schedule-{start}.csv", key="download_schedule")
    for by, label in (("room_id", "room"), ("surgeon_id", "surgeon")):
        st.download_button(f"Printable day list per {label} (HTML)", ss.day_list_html(schedule, names, h.name, by).encode(),
                           file_name=f"day-list-by-{label}-{start}.html", mime="text/html", key=f"download_daylist_{label}")
    st.dataframe(charts.words(ss.day_list(schedule, names, "room_id")), hide_index=True, width="stretch",
                 key="day_list_table")

with replan_tab:
    st.caption("Something happened during the day: re-plan the rest of it with minimal disruption.")
    replan_refusal = state.why_not("replan")
    if replan_refusal:
        st.info(f"Re-planning is not available: {replan_refusal}")
    with st.form("replan_form"):
        kind = st.selectbox("Event", EVENT_KINDS, key="replan_kind",
                            format_func=lambda k: {"running_long": "a case is running long", "add_on": "an emergency add-on",
                                                   "room_down": "a room goes down", "cancellation": "a cancellation"}[k])
        r1 = st.columns(3)
        at = r1[0].time_input("Now", value=pd.Timestamp("10:00").time(), key="replan_time")
        case_pick = r1[1].selectbox("Case", ids or ["-"], key="replan_case")
        extra = r1[2].number_input("Extra minutes (running long) / P50 (add-on)", min_value=0, value=60, key="replan_minutes")
        r2 = st.columns(3)
        room = r2[0].selectbox("Room (room down)", sorted(h.rooms["room_id"]), key="replan_room")
        line = r2[1].selectbox("Service line (add-on)", sorted(h.surgeons["service_line"].unique()), key="replan_line")
        go_ = st.form_submit_button("Re-plan the rest of the day", disabled=replan_refusal is not None)
    if go_:
        now = pd.Timestamp(day) + pd.Timedelta(hours=at.hour, minutes=at.minute)
        try:
            ev = {
                "running_long": lambda: ss.event("running_long", case_id=case_pick, extra_minutes=float(extra)),
                "cancellation": lambda: ss.event("cancellation", case_id=case_pick),
                "room_down": lambda: ss.event("room_down", room_id=room),
                "add_on": lambda: state.add_on_event(hid, lat, f"ADDON-{now:%H%M}", line, float(extra)),
            }[kind]()
            rr = state.replan(hid, version, lat, schedule, ev, now, params)
        except (InputError, ValueError, PermissionError) as exc:
            st.error(f"Cannot re-plan: {exc}")
        else:
            st.session_state[state.REPLAN_RESULT_KEY] = rr
    rr = st.session_state.get(state.REPLAN_RESULT_KEY)
    if rr is not None:
        if rr.result.banner:
            st.error(rr.result.banner)
        st.markdown(f"**After {rr.event.describe()}**: {len(rr.changes)} changes; "
                    f"{rr.result.kpis['n_scheduled']} scheduled, {rr.result.kpis['n_deferred']} deferred.")
        moved = rr.changes["minutes"].map(lambda v: "" if pd.isna(v) else f"{v:+.0f}")
        st.dataframe(charts.words(rr.changes.assign(minutes=moved).rename(columns={"minutes": "start moved (min)"})),
                     hide_index=True, width="stretch", key="replan_changes")
        st.plotly_chart(charts.gantt(rr.result.schedule, day, closes, highlight=set(rr.changes["case_id"])),
                        width="stretch", key="replan_gantt")

# Network plans (issue 21): the progress of `plan --all-sites` runs, site by site (dashboard/network_state.py).
from dashboard import network_state  # noqa: E402

runs = network_state.network_runs()
if runs:
    st.subheader("Network plans")
    for i, run in enumerate(runs):
        st.progress(run.fraction, text=run.caption)
        st.dataframe(run.table, hide_index=True, width="stretch", key=f"network_run_{i}")
