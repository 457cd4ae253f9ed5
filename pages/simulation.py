"""Simulation page: the verdict against the block rules first, then replay schedules under stress and
compare policies on the same random days (paired intervals, one axis per unit), and the frontier."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, keys, state
from dashboard import simulation_state as ss
from dashboard.simulation_state import ADDON_POLICIES, CONTRACT_METRICS, DEFAULT_REPS, DEFAULT_SEED, KNOBS, POLICIES
from engine.errors import InputError

st.title("Simulation")
verdict_box = st.container()  # the verdict opens the page; it follows the run chosen below

hid, loaded = state.require_hospital()
h = loaded.hospital
mv = state.require_model(hid, "The simulation draws durations from the forecasts.")
state.require_booked_cases(h, "to simulate")

scenarios = ss.scenarios()
first_day = state.first_booked_day(h)
# The knobs shown, as range sliders (a scenario may give a range [lo, hi], drawn once per replication;
# a fixed number is a range of width 0). label, slider bounds, step.
SLIDERS = {
    "duration_inflation": ("Duration inflation", -0.2, 0.5, 0.05),
    "cancel_multiplier": ("Cancellation multiplier", 0.0, 5.0, 0.25),
    "late_start_prob": ("Late first-case rate", 0.0, 1.0, 0.05),
    "room_downtime_prob": ("Room downtime probability", 0.0, 0.5, 0.01),
}


knob_key = keys.knob_key


def set_knobs_from_scenario() -> None:
    """Every knob starts from the chosen scenario's own values (its file), also after a change of scenario."""
    sc_ = ss.scenario(st.session_state[keys.SIM_SCENARIO_KEY])
    for k in SLIDERS:
        st.session_state[knob_key(k)] = sc_.bounds(k)


c0 = st.columns(4)
name = c0[0].selectbox("Scenario", scenarios, index=scenarios.index("normal") if "normal" in scenarios else 0,
                       key=keys.SIM_SCENARIO_KEY, on_change=set_knobs_from_scenario)
sc = ss.scenario(name)
if any(knob_key(k) not in st.session_state for k in SLIDERS):
    set_knobs_from_scenario()
st.markdown(f"*{sc.description}* The knobs start from this scenario's values; a range is drawn once per replication.")
others = {k: v for k, v in sc.knobs.items() if k not in SLIDERS and v != KNOBS[k].default}
if others:
    st.caption("Also from the scenario file: " + "; ".join(
        f"{k.replace('_', ' ')} {list(v) if isinstance(v, tuple) else v}" for k, v in others.items()) + ".")
with st.form("sim_form"):
    c = st.columns(3)
    start = c[0].date_input("First date", value=first_day.date(), key="sim_date")
    days = c[1].number_input("Days", min_value=1, max_value=7, value=1, key="sim_days")
    reps = c[2].number_input("Replications", min_value=50, max_value=5000, value=DEFAULT_REPS, step=50, key="sim_reps")
    k = st.columns(4)
    knobs = {}
    for col, (key, (label, lo, hi, step)) in zip(k, SLIDERS.items()):
        v_lo, v_hi = sc.bounds(key)
        knobs[key] = col.slider(label, min_value=min(lo, v_lo), max_value=max(hi, v_hi), step=step, key=knob_key(key),
                                help=KNOBS[key].doc + " (a range: drawn uniformly once per replication)")
    p = st.columns(3)
    policies = p[0].multiselect("Policies", list(POLICIES), default=list(POLICIES), key="sim_policies")
    addon_policy = p[1].selectbox("Add-on placement", ADDON_POLICIES, index=ADDON_POLICIES.index(ss.default_addon_policy()),
                                  key="sim_addon_policy")
    seed = p[2].number_input("Seed (same seed = same random days)", min_value=0, value=DEFAULT_SEED, key="sim_seed")
    st.form_submit_button("Run the simulation", type="primary")

# The form's last submitted values (its defaults on the first visit): every rerun reads the cached run.
if not policies:
    st.error("Choose at least one policy.")
    st.stop()
scenario = sc.with_(**{key: (float(lo) if lo == hi else (float(lo), float(hi))) for key, (lo, hi) in knobs.items()})
version, lat = mv.version, state.loaded_at(hid)
try:
    run = state.policy_run(hid, version, lat, str(start), int(days), tuple(policies), scenario, int(reps), int(seed),
                           ss.sim_params(addon_policy))
except (InputError, ValueError) as exc:
    st.error(f"Cannot simulate: {exc}")
    st.stop()
comp, plans, dc = run.comparison, run.plans, run.decision
with verdict_box:
    if dc is None:
        st.info("Choose both the optimized and the rules policy to see the verdict against your block rules.")
    else:
        {"better": st.success, "worse": st.warning}.get(dc.outcome, st.info)(f"**{dc.verdict}**")
        st.caption(f"The optimized plan against the rules plan, both on the same {dc.reps} random days ({sc.name} "
                   f"scenario with the knobs below, seed {dc.seed}); a change counts when its paired 95% interval "
                   "excludes zero.")
if dc is not None:
    st.subheader("Optimized against your block rules (paired, 95% intervals)")
    d1, d2 = st.columns([3, 2])
    d1.plotly_chart(charts.decision_intervals(dc.table), width="stretch", key="sim_decision_chart")
    d2.dataframe(charts.decision_display(dc.table), hide_index=True, width="stretch", key="sim_decision_table")
    st.subheader("Cases scheduled against P95 overtime")
    st.caption("The optimized plan, the rules schedule and plans at other trade-offs between a deferral and overtime "
               "risk, each simulated on the same random days (normal scenario, this seed and number of days).")
    if st.button("Plan the trade-offs", key="sim_frontier_button") or st.session_state.get(state.FRONTIER_SHOWN_KEY):
        st.session_state[state.FRONTIER_SHOWN_KEY] = True
        front = state.frontier(hid, version, lat, str(start), state.default_plan_params(days=int(days)), int(reps),
                               int(seed))
        st.plotly_chart(charts.frontier_chart(front), width="stretch", key="sim_frontier")
for n, pj in plans.items():
    if pj.get("fallback_used"):
        st.warning(f"The {n} plan fell back to the rules: {pj.get('fallback_reason')}")
per_rep = {n: r.per_rep for n, r in comp.results.items()}
metric = st.selectbox("Metric", list(CONTRACT_METRICS), format_func=lambda m: charts.METRIC_LABELS.get(m, m), key="sim_metric")
v, e = st.columns(2)
v.plotly_chart(charts.policy_violins(per_rep, metric), width="stretch", key="sim_violin")
e.plotly_chart(charts.policy_ecdf(per_rep, metric), width="stretch", key="sim_ecdf")

st.subheader("Tails")
rows = []
for n, r in comp.results.items():
    for m in (*CONTRACT_METRICS, "total_cancellations"):
        if m in r.summary:
            rows.append({"policy": n, "metric": m, **{s: r.summary[m].get(s) for s in ("mean", "p5", "p50", "p95", "worst5_mean")}})
st.dataframe(pd.DataFrame(rows).round(2), hide_index=True, width="stretch", key="sim_tails",
             column_config={"metric": st.column_config.TextColumn("metric", help="; ".join(
                 f"{m}: {charts.METRIC_LABELS.get(m, m)}" for m in (*CONTRACT_METRICS, "total_cancellations")))})
st.caption("Simulated over the replications (each policy on the same random days). `cancellations` are the day's own "
           "(a case that would overrun close plus the cap, or PACU beds); `total_cancellations` adds patient and staff "
           "cancellations and is the figure the What-if page shows as 'Cancellations (all causes)'. Overtime here is "
           "simulated; the Schedule page's expected overtime is planned (forecast durations only, no add-ons, late "
           "starts or cancellations).")

if len(comp.paired):
    st.subheader("Policy comparison (paired, 95% intervals)")
    shown = ss.paired_table(comp.paired)
    st.plotly_chart(charts.paired_ci(shown), width="stretch", key="sim_paired")
    st.dataframe(shown.round(3), hide_index=True, width="stretch", key="sim_paired_table")

st.subheader("Reliability by service line")
rel = pd.concat([r.by_service_line.assign(policy=n) for n, r in comp.results.items()], ignore_index=True)
st.dataframe(rel[rel["metric"].isin(["end_delay_minutes", "on_time_rate", "overtime_minutes"])].round(2),
             hide_index=True, width="stretch", key="sim_by_sl")
