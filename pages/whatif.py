"""What-if planning: sliders re-plan with the optimizer and re-simulate; the result sits beside
the baseline; named scenarios can be saved, compared (up to 4) and exported."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, keys, state
from dashboard import whatif_state as ws

st.title("What-if")
DEFAULT = ws.no_change()
REPS, SEED = 200, 0
# label, scale, decimals, unit of the value, unit of the change against the baseline
KPI_LABELS = {
    "prime_time_utilization": ("Prime-time utilization", 100, 1, "%", " pts"),
    "p95_overtime_minutes": ("P95 overtime (min)", 1, 0, "", ""),
    "deferred_cases": ("Deferred cases", 1, 0, "", ""),
    "pacu_hold_minutes": ("PACU hold (min)", 1, 1, "", ""),
    "cancellations": ("Cancellations (all causes)", 1, 1, "", ""),
}
# Each KPI's basis, said under the row (one number per quantity: the Simulation page's
# "cancellations by overrun or beds" is a part of the all-causes count here).
KPI_BASIS = ("Basis: deferred cases as planned; utilization, PACU hold and cancellations are means over "
             "{reps} simulated days, overtime their P95 (same random days for every what-if). Cancellations count every "
             "cause: patient, staff, overrun and PACU beds.")
COMPARE_LABELS = {
    "prime_time_utilization": "Prime-time utilization (share)",
    "p95_overtime_minutes": "P95 overtime (min)",
    "mean_overtime_minutes": "Mean overtime (min)",
    "scheduled_cases": "Scheduled cases",
    "deferred_cases": "Deferred cases",
    "bumped_cases": "Elective cases bumped by add-ons",
    "spillover_cases": "Cases with no room time left (spillover)",
    "pacu_hold_minutes": "PACU hold (min)",
    "cancellations": "Cancellations (all causes)",
}
SETTING_LABELS = {
    "staffed_rooms_delta": "Staffed rooms (change)", "staffed_rooms_by_day": "Staffed rooms on a day",
    "anesthesia_teams_delta": "Anesthesia teams (change)", "pacu_beds_delta": "PACU beds (change)",
    "addon_multiplier": "Add-on volume (x)", "duration_inflation": "Duration inflation",
    "cancel_multiplier": "Cancellation rate (x)",
}
LOWER_IS_BETTER = {"p95_overtime_minutes", "deferred_cases", "pacu_hold_minutes", "cancellations"}

hid, loaded = state.require_hospital()
h = loaded.hospital
mv = state.require_model(hid, "What-ifs re-plan with the forecasts.")
state.require_booked_cases(h, "to re-plan")
first_day = state.first_booked_day(h)
version, lat = mv.version, state.loaded_at(hid)

top = st.columns(3)
day = top[0].date_input("Day to plan", value=first_day.date(), key="wi_day")
solver = top[1].selectbox("Solver", list(ws.solvers()), key="wi_solver",
                          help="HiGHS optimizes; rules is today's block scheduling (faster, for a first answer).")
top[2].caption(f"Each change re-plans the day and simulates it {REPS} times on the same random days (seed {SEED}).")
params = ws.plan_params(solver)
DEFAULTS_LIMIT = state.default_plan_time_limit_s()
baseline = ws.cached_run(hid, version, lat, str(day), DEFAULT, params, REPS, SEED)
bk = baseline.plan.kpis
st.caption(f"Baseline (the day as it stands, no change): {bk['n_scheduled']} scheduled, {bk['n_deferred']} deferred; "
           f"solver {bk['solver']}" + (f" (fallback: {baseline.plan.banner})" if baseline.plan.banner else "")
           + f". Changes below are against it; a plan on the Schedule page may differ (it has {DEFAULTS_LIMIT:.0f} s, "
           f"a what-if {params.time_limit_s:.0f} s).")


def show_run(run) -> None:
    """The KPIs against the baseline, the cases that moved and the day's Gantt chart (the table and
    the chart once the answer is final: a first answer is drawn as fast as it can be)."""
    k = st.columns(len(KPI_LABELS))
    worse = [key for key in LOWER_IS_BETTER if run.kpis[key] > baseline.kpis[key] + 1e-9]
    for col, (key, (label, scale, dec, unit, delta_unit)) in zip(k, KPI_LABELS.items()):
        v, b = run.kpis[key], baseline.kpis[key]
        change = round((v - b) * scale, dec)
        col.metric(label, f"{v * scale:.{dec}f}{unit}", delta=f"{change:+.{dec}f}{delta_unit}" if change else None,
                   delta_color=charts.kpi_delta_color(key, change, worse, LOWER_IS_BETTER))
    st.caption(KPI_BASIS.format(reps=REPS)
               + (" Utilization is not shown as better: it rose while "
                  + ", ".join(KPI_LABELS[w][0].lower() for w in sorted(worse)) + " got worse."
                  if worse and run.kpis["prime_time_utilization"] > baseline.kpis["prime_time_utilization"] else ""))
    s = run.plan.solve
    if run.final:
        answer = "final answer"
    else:
        answer = f"first answer (optimizer gap {s.mip_gap:.1%}); refining..." if s and s.mip_gap is not None else "first answer; refining..."
    st.caption(f"**{answer[0].upper() + answer[1:]}** Plan {run.seconds['plan_s']:.2f} s, simulation "
               f"{run.seconds['simulate_s']:.2f} s; solver {run.plan.kpis['solver']}"
               + (f", gap {s.mip_gap:.1%}" if run.final and s is not None and s.mip_gap is not None else "")
               + (f" (fallback: {run.plan.banner})" if run.plan.banner else ""))
    moved = ws.moved_cases(baseline.plan.schedule, run.plan.schedule)
    st.markdown(f"**{len(moved)} cases changed against the baseline**")
    if not run.final:
        return
    if len(moved):
        st.dataframe(moved, hide_index=True, width="stretch")
    closes = dict(zip(h.rooms["room_id"], h.rooms["close_time"]))
    st.plotly_chart(charts.gantt(run.plan.schedule, pd.Timestamp(day), closes, highlight=set(moved["case_id"])),
                    width="stretch")


@st.fragment
def sliders_and_result() -> None:
    c = st.columns(3)
    fewest = -min(6, max(len(h.rooms) - 1, 0))  # at least one room stays: a what-if with none plans nothing
    rooms = c[0].slider("Staffed rooms (change, all days)", fewest, 4, max(DEFAULT.staffed_rooms_delta, fewest), key="wi_rooms")
    teams = c[1].slider("Anesthesia teams (change)", fewest, 4, max(DEFAULT.anesthesia_teams_delta, fewest), key="wi_teams")
    beds = c[2].slider("PACU beds (change)", -8, 6, DEFAULT.pacu_beds_delta, key="wi_beds")
    d = st.columns(3)
    addons = d[0].slider("Add-on volume (x)", 0.5, 2.0, DEFAULT.addon_multiplier, 0.1, key="wi_addons")
    inflation = d[1].slider("Duration inflation", -0.2, 0.5, DEFAULT.duration_inflation, 0.05, key="wi_inflation")
    cancel = d[2].slider("Cancellation rate (x)", 0.0, 3.0, DEFAULT.cancel_multiplier, 0.25, key="wi_cancel")
    staffed = int(h.staffing.set_index("date")["staffed_rooms"].get(pd.Timestamp(day), 0))
    per_day = st.number_input(f"Staffed rooms on {day} only (blank keeps {staffed} + change)", min_value=0, max_value=60,
                              value=None, key="wi_day_rooms")
    w = ws.setting(rooms, ((str(day), int(per_day)),) if per_day is not None else (), teams, beds, addons, inflation, cancel)
    session = ws.user_session(hid, version, lat, str(day), baseline, REPS, SEED)
    shown = st.empty()
    with st.spinner("Re-planning and re-simulating..."):
        for run in ws.answers(hid, version, lat, str(day), w, params, REPS, SEED, session):
            # A first answer is drawn at once and replaced when the refined one is ready.
            with shown.container():
                show_run(run)
    s = st.columns([2, 1])
    name = s[0].text_input("Save this what-if as", key="wi_name")
    if s[1].button("Save scenario", key="wi_save"):
        saved = st.session_state.setdefault(keys.WI_SAVED_KEY, {})
        if not name.strip():
            st.error("Give the scenario a name.")
        else:
            saved[name.strip()] = run
            chosen = [n for n in st.session_state.get(keys.WI_COMPARE_KEY, []) if n in saved and n != name.strip()]
            st.session_state[keys.WI_COMPARE_KEY] = (chosen + [name.strip()])[-4:]
            # The comparison below lives outside this fragment: rerun the whole page to show it.
            st.rerun(scope="app")


sliders_and_result()

st.divider()
st.subheader("Saved scenarios")
saved = st.session_state.get(keys.WI_SAVED_KEY, {})
if not saved:
    st.caption("Save what-ifs to compare up to four of them side by side.")
else:
    if keys.WI_COMPARE_KEY not in st.session_state:
        st.session_state[keys.WI_COMPARE_KEY] = list(saved)[:4]
    chosen = st.multiselect("Compare (up to 4)", list(saved), max_selections=4, key=keys.WI_COMPARE_KEY)
    runs = {"baseline": baseline, **{n: saved[n] for n in chosen}}
    table = ws.compare_runs(runs, "baseline")
    wide = table.pivot(index="kpi", columns="scenario", values="value").reindex(columns=list(runs))
    wide = wide.reindex([k for k in COMPARE_LABELS if k in wide.index] + [k for k in wide.index if k not in COMPARE_LABELS])
    wide.index = [COMPARE_LABELS.get(k, k.replace("_", " ")) for k in wide.index]
    wide = wide.rename_axis("KPI").reset_index()
    st.dataframe(wide.round(3), hide_index=True, width="stretch", key="wi_compare_table")
    settings = pd.DataFrame([{"scenario": n, **{SETTING_LABELS.get(k, k): (v or "-") if isinstance(v, dict) else v
                                                for k, v in r.whatif.to_dict().items() if k != "name"}}
                             for n, r in runs.items()])
    st.dataframe(settings, hide_index=True, width="stretch", key="wi_settings")
    st.download_button("Export the comparison (CSV)", wide.to_csv(index=False).encode() + b"\n" + settings.to_csv(index=False).encode(),
                       file_name="whatif-comparison.csv", key="wi_export")
