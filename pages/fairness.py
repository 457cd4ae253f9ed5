"""Fairness review (governance board): breakdowns by group, flags with drill-down, trends,
patient-group audit, guardrails, and an exportable review pack."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, keys, state
from dashboard import fairness_state as fs

st.title("Fairness review")
DEFAULTS = fs.fairness_params()

current = state.current_hospital()
if current is None:
    st.info("No hospital loaded: choose or import one on the Data page.")
    st.stop()
hid, loaded = current
h = loaded.hospital
refusal = state.why_not("view_fairness")
if refusal:
    st.info(f"Fairness reports are not available: {refusal}")
    st.stop()
mv = state.current_model(hid)
# The patient-group audit (patient attributes, even aggregated) is for the roles that may read it.
audit_refusal = state.why_not("view_patient_groups")

c = st.columns(4)
source = c[0].selectbox("Schedule", ["proposed (optimizer)", "rules-based baseline", "history (last 4 weeks)"],
                        key="fair_source", disabled=False)
by = c[1].selectbox("Group by", ["service_line", "surgeon_id", "site"], key="fair_by",
                    format_func={"service_line": "service line", "surgeon_id": "surgeon", "site": "site"}.get)
days = c[2].number_input("Days planned", min_value=1, max_value=7, value=1, key="fair_days")
policy = h.settings.fairness  # the governance board's policy: flags default to its limit
threshold = c[3].number_input("Flag prime-time gap above (points)", min_value=0.0, max_value=50.0,
                              value=float(policy.max_prime_time_gap_points), step=0.5, key="fair_threshold")
params = fs.fairness_params(max_prime_gap_points=threshold / 100, min_group_cases=policy.min_group_cases)

forecasts = None
if source.startswith("history"):
    end = h.as_of().normalize()
    schedule, forecasts = fs.history_schedule(h, end - pd.Timedelta(weeks=4), end)
    st.caption(f"History: cases from {end - pd.Timedelta(weeks=4):%Y-%m-%d} to {end - pd.Timedelta(days=1):%Y-%m-%d}, "
               "actual times; cancellations count as deferrals.")
else:
    if mv is None:
        st.warning("Proposed and rules-based schedules need the duration forecasts: train a model on the Forecasts page, "
                   "or review history.")
        st.stop()
    solver = "rules" if source.startswith("rules") else "highs"
    start = state.first_booked_day(h)
    result = state.cached_plan(hid, mv.version, state.loaded_at(hid), str(start.date()),
                              state.default_plan_params(days=int(days), solver=solver))
    schedule = result.schedule
    forecasts = state.upcoming_forecasts(hid, mv.version, state.loaded_at(hid))
    if result.banner:
        st.error(result.banner)
    st.caption(f"{'Proposed' if solver == 'highs' else 'Rules-based'} plan of {int(days)} days from {start:%Y-%m-%d}.")

if not len(schedule):
    st.info("This schedule has no cases (no booked cases in the planned days, or no completed history in the last "
            "4 weeks), so there is nothing to review. Choose another schedule or more days.")
    st.stop()
table, summary = fs.group_table(h, schedule, by, forecasts, params.min_group_cases)
flagged = fs.flags(table, by, params)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0%}"


m = st.columns(4)
m[0].metric("Largest prime-time shortfall", f"{summary['max_prime_time_gap'] * 100:.1f} points",
            help="Demand share minus prime-time share, largest over groups large enough to compare.")
m[1].metric("Late-slot share spread", _pct(summary["late_slot_share_difference"]))
m[2].metric("Deferral-rate spread", _pct(summary["deferral_rate_difference"]))
m[3].metric("Flags", len(flagged))
if summary.get("worst_group"):
    st.caption(f"Largest prime-time shortfall: {summary['worst_group']}.")
if summary["small_groups"]:
    st.caption(f"Groups with fewer than {params.min_group_cases} booked cases ({', '.join(summary['small_groups'])}) are shown "
               "with their case count (n) but are not flagged and do not count in the spreads: one case there would swing "
               "a rate by 100%.")

heat, bars, flags_tab, trend_tab, audit_tab, term_tab, policy_tab = st.tabs(
    ["Heatmap", "Prime time vs demand", "Flags", "Trends", "Patient groups (audit)", "Fairness policy", "Guardrails"])
with heat:
    st.plotly_chart(charts.fairness_heatmap(table, by), width="stretch", key="fair_heatmap")
    st.dataframe(charts.fairness_display_table(table, by), hide_index=True, width="stretch", key="fair_table")
    if "n_scheduled" in table and (table["n_scheduled"] == 0).any():
        st.caption("n/a: the group has no scheduled cases in this plan (all deferred or cancelled), so its late-slot "
                   "share has no denominator.")
with bars:
    st.plotly_chart(charts.demand_vs_prime(table, by), width="stretch", key="fair_bars")
with flags_tab:
    if not len(flagged):
        st.success("No group is beyond the thresholds.")
    else:
        for msg in flagged["message"]:
            st.warning(msg)
        pick = st.selectbox("Drill down into", flagged.index, key="fair_flag",
                            format_func=lambda i: f"{flagged.loc[i, by]}: {charts.fairness_label(flagged.loc[i, 'metric'])}")
        f = flagged.loc[pick]
        rows = schedule[schedule[by if by != "site" else "service_line"].astype(str) == str(f[by])] if by != "site" else schedule
        if by == "site":
            sites = schedule["room_id"].map(h.rooms.set_index("room_id")["site"])
            rows = schedule[sites == f[by]]
        if f["metric"] == "deferral_rate":
            rows = rows[rows["status"] == "deferred"]
        elif f["metric"] == "late_slot_share":
            rows = rows[(rows["status"] == "scheduled")].sort_values("end_p50", ascending=False)
        st.markdown(f"**Cases behind the flag** ({len(rows)}):")
        st.dataframe(rows, hide_index=True, width="stretch", key="fair_drill")
with trend_tab:
    tr = fs.trends(hid, state.loaded_at(hid), by if by != "surgeon_id" else "service_line", DEFAULTS.trend_weeks)
    if len(tr):
        metric = st.selectbox("Metric", ["prime_time_gap", "late_slot_share", "deferral_rate", "overtime_burden_minutes"],
                              key="fair_trend_metric", format_func=charts.fairness_label)
        st.plotly_chart(charts.trend_lines(tr, by if by != "surgeon_id" else "service_line", metric), width="stretch", key="fair_trend")
        st.caption(f"History in {DEFAULTS.trend_weeks}-week periods (cancellations count as deferrals).")
    else:
        st.info("Not enough history for trends.")
with audit_tab:
    if audit_refusal:
        st.info(f"The patient-group audit is not available: {audit_refusal}")
    else:
        audit = fs.patient_group_audit(h, schedule,
                                       forecasts if isinstance(forecasts, pd.DataFrame) and "cancel_prob" in forecasts else None)
        st.markdown("Audit only: these attributes are **never** model inputs. The table checks whether any patient group "
                    "ends up in late slots or deferred more often, and whether cancellation risk differs by group.")
        if len(audit):
            st.dataframe(audit.pivot_table(index=["attribute", "group"], columns="metric", values="value").round(3).reset_index(),
                         hide_index=True, width="stretch", key="fair_audit")
with term_tab:
    source_words = "settings.toml [fairness]" if h.settings.fairness_stated else \
        "the shipped default: this hospital's settings.toml has no [fairness] section"
    st.markdown(f"**Policy in force** ({source_words}): no service line with at least {policy.min_group_cases} booked "
                f"cases may get a prime-time share more than **{policy.max_prime_time_gap_points:g} points** below its "
                "demand share. Every plan applies it (Schedule, What-if, re-planning, the command line).")
    verdict = fs.policy_check(h, schedule, forecasts)
    if verdict.met:
        st.success(f"This schedule meets the policy: largest shortfall {verdict.max_prime_time_gap_points:.1f} points.")
    else:
        st.warning(f"This schedule misses the policy: largest shortfall {verdict.max_prime_time_gap_points:.1f} points.")
        for line in verdict.explanation:
            st.markdown(f"- {line}")
    policy_refusal = state.why_not("set_fairness_policy")
    with st.expander("Change the policy (governance board)"):
        with st.form("fair_policy_form"):
            new_gap = st.number_input("Largest allowed prime-time shortfall (points)", min_value=0.0, max_value=100.0,
                                      value=float(policy.max_prime_time_gap_points), step=0.5, key="fair_policy_gap")
            new_min = st.number_input("Judge service lines with at least this many booked cases", min_value=1,
                                      value=int(policy.min_group_cases), step=1, key="fair_policy_min")
            note = st.text_input("Reason for the change (kept in the audit log)", key="fair_policy_note")
            if st.form_submit_button("Change the policy", disabled=policy_refusal is not None,
                                     help=policy_refusal):
                try:
                    fs.set_policy(hid, h, {"max_prime_time_gap_points": float(new_gap),
                                                       "min_group_cases": int(new_min)}, note)
                    st.success("Policy changed and audited; the previous settings.toml is kept. Plans use it from now on.")
                except (PermissionError, ValueError) as exc:
                    st.error(str(exc))
        if policy_refusal:
            st.caption(f"Only the governance board changes the policy: {policy_refusal}")
    st.markdown("Here is what the policy costs, as measured: each day planned without and with it.")
    if mv is None:
        st.info("Train a forecasting model first (Forecasts page).")
    elif st.button(f"Compare plans with a {threshold:g}-point policy", key="fair_term_button") or \
            st.session_state.get(keys.FAIR_TERM_SHOWN_KEY) == threshold:
        st.session_state[keys.FAIR_TERM_SHOWN_KEY] = threshold
        start_t = state.first_booked_day(h)
        cost = fs.term_cost(hid, mv.version, state.loaded_at(hid), str(start_t.date()), int(days), float(threshold))
        st.dataframe(cost.round(3), hide_index=True, width="stretch", key="fair_term_table")
        a, b = cost.iloc[0], cost.iloc[1]
        st.markdown(f"Cost of the policy: utilization {100 * (b['utilization'] - a['utilization']):+.1f} points, expected overtime "
                    f"{b['expected_overtime_minutes'] - a['expected_overtime_minutes']:+.0f} min, deferrals "
                    f"{b['deferred'] - a['deferred']:+.0f}; largest prime-time gap {a['max_prime_time_gap_points']:.1f} -> "
                    f"{b['max_prime_time_gap_points']:.1f} points.")
with policy_tab:
    g = fs.guardrails()
    st.markdown(f"**What the system uses.** {g.uses}")
    st.markdown(f"**What it refuses to use or infer.** {g.refuses}")
    st.caption(f"Policy file: {g.source}. Forbidden attributes: {', '.join(sorted(g.forbidden))}.")

pack = fs.review_pack(
    h.name, f"Fairness review: {source}",
    {f"By {by}": table.rename(columns=charts.fairness_label),
     **({} if audit_refusal else {"Patient-group audit": fs.patient_group_audit(h, schedule)})},
    flagged, {"Largest prime-time shortfall": f"{summary['max_prime_time_gap'] * 100:.1f} points ({summary.get('worst_group') or 'n/a'})",
              "Minimum group size for flags and spreads": f"{params.min_group_cases} booked cases",
              "Flag threshold": f"{params.max_prime_gap_points * 100:.1f} points"},
)
st.download_button("Download the review pack (HTML, prints to PDF)", pack.encode(), file_name="fairness-review.html",
                   mime="text/html", key="download_review_pack")
