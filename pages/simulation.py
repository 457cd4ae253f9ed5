"""Simulation page: replay schedules under stress, compare policies on the same random days."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, state
from engine.errors import InputError
from engine.sim import CONTRACT_METRICS, KNOBS, POLICIES, SimParams, available_scenarios, compare_policies, load_scenario

st.title("Simulation")

hid, loaded = state.require_hospital()
h = loaded.hospital
mv = state.require_model(hid, "The simulation draws durations from the forecasts.")

scenarios = available_scenarios()
first_day = state.first_booked_day(h)
with st.form("sim_form"):
    c = st.columns(4)
    name = c[0].selectbox("Scenario", scenarios, index=scenarios.index("normal") if "normal" in scenarios else 0, key="sim_scenario")
    start = c[1].date_input("First date", value=first_day.date(), key="sim_date")
    days = c[2].number_input("Days", min_value=1, max_value=7, value=1, key="sim_days")
    reps = c[3].number_input("Replications", min_value=50, max_value=5000, value=1000, step=50, key="sim_reps")
    sc = load_scenario(name)
    st.markdown(f"*{sc.description}* Knobs below start from the scenario's values.")
    k = st.columns(4)

    def knob(col, key, label, lo, hi, step):
        base = sc.knobs.get(key, KNOBS[key].default)
        base = float(sum(base) / 2) if isinstance(base, tuple) else float(base)
        return col.slider(label, min_value=lo, max_value=hi, value=min(max(base, lo), hi), step=step, key=f"sim_knob_{key}",
                          help=KNOBS[key].doc)

    inflation = knob(k[0], "duration_inflation", "Duration inflation", -0.2, 0.5, 0.05)
    cancel = knob(k[1], "cancel_multiplier", "Cancellation multiplier", 0.0, 5.0, 0.25)
    late = knob(k[2], "late_start_prob", "Late first-case rate", 0.0, 1.0, 0.05)
    down = knob(k[3], "room_downtime_prob", "Room downtime probability", 0.0, 0.5, 0.01)
    p = st.columns(3)
    policies = p[0].multiselect("Policies", list(POLICIES), default=list(POLICIES), key="sim_policies")
    addon_policy = p[1].selectbox("Add-on placement", ["reserve", "next_free", "bump"], key="sim_addon_policy")
    seed = p[2].number_input("Seed (same seed = same random days)", min_value=0, value=0, key="sim_seed")
    run = st.form_submit_button("Run the simulation", type="primary")

if run:
    if not policies:
        st.error("Choose at least one policy.")
    else:
        scenario = sc.with_(duration_inflation=inflation, cancel_multiplier=cancel, late_start_prob=late,
                            room_downtime_prob=down)
        bar = st.progress(0.0, text="planning the policies' schedules")
        try:
            schedules = state.cached_policy_schedules(hid, mv.version, state.loaded_at(hid), str(start), int(days), tuple(policies))
            bar.progress(0.4, text=f"simulating {int(reps)} days per policy on common random numbers")
            fc = state.upcoming_forecasts(hid, mv.version, state.loaded_at(hid))
            comp = compare_policies(h, schedules, fc, scenario, int(reps), int(seed), params=SimParams(addon_policy=addon_policy))
        except (InputError, ValueError) as exc:
            bar.empty()
            st.error(f"Cannot simulate: {exc}")
        else:
            bar.progress(1.0, text="done")
            st.session_state["sim_result"] = (comp, {n: s.attrs.get("plan", {}) for n, s in schedules.items()})

stored = st.session_state.get("sim_result")
if stored is None:
    st.info("Choose a scenario and policies, then run. Each policy faces the same random days (common random numbers).")
    st.stop()
comp, plans = stored
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
    for m in CONTRACT_METRICS:
        rows.append({"policy": n, "metric": m, **{s: r.summary[m].get(s) for s in ("mean", "p5", "p50", "p95", "worst5_mean")}})
st.dataframe(pd.DataFrame(rows).round(2), hide_index=True, width="stretch", key="sim_tails")

if len(comp.paired):
    st.subheader("Policy comparison (paired, 95% intervals)")
    shown = comp.paired[comp.paired["metric"].isin(CONTRACT_METRICS)]
    st.plotly_chart(charts.paired_ci(shown), width="stretch", key="sim_paired")
    st.dataframe(shown.round(3), hide_index=True, width="stretch", key="sim_paired_table")

st.subheader("Reliability by service line")
rel = pd.concat([r.by_service_line.assign(policy=n) for n, r in comp.results.items()], ignore_index=True)
st.dataframe(rel[rel["metric"].isin(["end_delay_minutes", "on_time_rate", "overtime_minutes"])].round(2),
             hide_index=True, width="stretch", key="sim_by_sl")
