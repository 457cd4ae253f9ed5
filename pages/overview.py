"""Leadership overview: the verdict against the block rules first (the coming plan against the rules on
the same random days, paired intervals), KPIs with trends, the frontier of cases scheduled against P95
overtime, distributions and tails, breakdowns by site and service line, and the coming week's risks."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, keys, state
from dashboard import overview_state as ovs
from dashboard import whatif_state as ws

st.title("Leadership overview")

current = state.current_hospital()
if current is None:
    st.info("No hospital loaded: choose or import one on the Data page.")
    st.stop()
hid, loaded = current
h = loaded.hospital
lat = state.loaded_at(hid)

mv = state.current_model(hid)
first_day = state.first_booked_day(h)
NO_BOOKED = "This hospital has no booked cases, so there is no coming plan to look at."
booked = state.has_booked_cases(h)
DEFAULT_PLAN = state.default_plan_params()  # the Schedule page's defaults: the same cached plans and numbers
dc = None
if booked and mv is not None:
    dc = state.decision(hid, mv.version, lat, str(first_day.date()), DEFAULT_PLAN)
    {"better": st.success, "worse": st.warning}.get(dc.outcome, st.info)(f"**{dc.verdict}**")
    st.caption(f"The plan of {first_day:%a %d %b} ({DEFAULT_PLAN.days} day{'s' if DEFAULT_PLAN.days != 1 else ''}, the "
               f"Schedule page's defaults) against your block rules' plan of the same days, both simulated on the same "
               f"{dc.reps} random days ({dc.scenario} scenario); a change counts when its paired 95% interval excludes "
               "zero (tab 'Against the rules').")

k = ovs.history_kpis(hid, lat)
last, prev = (k.iloc[-1], k.iloc[-2]) if len(k) >= 2 else (None, None)
if last is not None:
    recent = k.tail(4)
    before = k.iloc[-8:-4] if len(k) >= 8 else k.head(0)
    cols = st.columns(5)
    for col, (metric, label, fmt) in zip(cols, [
        ("prime_time_utilization", "Prime-time utilization", "{:.1%}"),
        ("overtime_minutes", "Overtime per week (min)", "{:.0f}"),
        ("cancellation_rate", "Elective cancellations", "{:.1%}"),
        ("addon_cases", "Add-ons per week", "{:.0f}"),
        ("on_time_first_case", "On-time first cases", "{:.0%}"),
    ]):
        v = recent[metric].mean()
        d = v - before[metric].mean() if len(before) else None
        col.metric(label, fmt.format(v), delta=None if d is None or pd.isna(d) else fmt.format(d),
                   delta_color="inverse" if metric in ("overtime_minutes", "cancellation_rate") else "normal",
                   help="Mean of the last 4 weeks; change against the 4 weeks before.")

# Lazy tabs: only the open tab's content runs, so the frontier (several plans), the week's risks (a
# plan a day) and the tails (a simulation) are computed when their tab is opened, not on every visit.
rules_tab, frontier_tab, risks_tab, trends_tab, tails_tab, breakdown_tab = st.tabs(
    ["Against the rules", "Trade-off frontier", "Risks this week", "Trends", "Distributions and tails",
     "By site and service line"], on_change="rerun", key=keys.OVERVIEW_TAB_KEY)

with risks_tab:
    if not risks_tab.open:
        pass
    elif not booked:
        st.info(NO_BOOKED)
    elif mv is None:
        st.info("Train a forecasting model (Forecasts page) to see the coming week's risks.")
    else:
        st.caption("Read from each day's plan with the Schedule page's default settings (the same cached plan), "
                   "so deferrals and P80 finishes here are the Schedule page's numbers.")
        risks = ovs.week_risks(hid, mv.version, lat, str(first_day.date()))
        if not risks:
            st.success("No risk found in the coming week's plans.")
        for r in risks:
            {3: st.error, 2: st.warning, 1: st.info}[r["severity"]](r["risk"])
with trends_tab:
    if not len(k):
        st.info("No completed cases in the history yet, so there are no trends to show.")
    for metric in ([] if not len(k) else ("prime_time_utilization", "overtime_minutes", "cancellation_rate", "addon_cases", "on_time_first_case")):
        st.plotly_chart(charts.kpi_trend(k, metric), width="stretch", key=f"ov_trend_{metric}")
with rules_tab:
    if dc is None:
        st.info(NO_BOOKED if not booked else "Train a forecasting model (Forecasts page) to compare the plan with your block rules.")
    else:
        st.plotly_chart(charts.decision_intervals(dc.table), width="stretch", key="ov_decision_chart")
        st.dataframe(charts.decision_display(dc.table), hide_index=True, width="stretch", key="ov_decision_table")
        st.caption("Optimized minus rules on the same random days, with paired 95% intervals (minutes, utilization "
                   "points and counts on their own axes). Cases scheduled and deferrals are the plans' own counts.")
with frontier_tab:
    if not frontier_tab.open:
        pass
    elif dc is None:
        st.info(NO_BOOKED if not booked else "Train a forecasting model first.")
    else:
        f = state.frontier(hid, mv.version, lat, str(first_day.date()), DEFAULT_PLAN, dc.reps, dc.seed)
        st.caption(f"Plans of {first_day:%a %d %b}: the current plan, your block rules and plans at other trade-offs "
                   f"between a deferral and overtime risk (risk weights times a factor), each simulated on the same "
                   f"{dc.reps} random days. A P95 over {dc.reps} days rests on its worst 5%, so it moves by chance: "
                   "the bar is its 90% band, and 'P95 vs rules' gives the paired 95% interval of the difference.")
        st.plotly_chart(charts.frontier_chart(f), width="stretch", key="ov_frontier")
        st.dataframe(charts.words(f.round(3)), hide_index=True, width="stretch", key="ov_frontier_table")
with tails_tab:
    if not tails_tab.open:
        pass
    elif not booked:
        st.info(NO_BOOKED)
    elif mv is None:
        st.info("Train a forecasting model first.")
    else:
        run = ws.cached_run(hid, mv.version, lat, str(first_day.date()), ws.no_change(),
                                  ws.plan_params(), 200, 0)
        per_rep = {"current plan": run.per_rep}
        c1, c2 = st.columns(2)
        c1.plotly_chart(charts.policy_violins(per_rep, "overtime_minutes"), width="stretch", key="ov_violin_ot")
        c2.plotly_chart(charts.policy_violins(per_rep, "utilization"), width="stretch", key="ov_violin_util")
        desc = run.per_rep[["utilization", "overtime_minutes", "pacu_hold_minutes", "spillover_cases"]].describe(
            percentiles=[0.05, 0.5, 0.95]).T
        st.dataframe(desc.round(3), width="stretch", key="ov_tails")
with breakdown_tab:
    by_site = ovs.history_kpis(hid, lat, "site")
    by_sl = ovs.history_kpis(hid, lat, "service_line")
    st.plotly_chart(charts.kpi_trend(by_site, "overtime_minutes", "site"), width="stretch", key="ov_site_ot")
    st.plotly_chart(charts.kpi_trend(by_sl, "prime_time_share", "service_line"), width="stretch", key="ov_sl_share")
    last12 = by_sl[by_sl["period"] >= by_sl["period"].max() - pd.Timedelta(weeks=12)]
    st.dataframe(last12.groupby("service_line")[["cases", "addon_cases", "cancellation_rate", "overtime_minutes", "prime_time_share"]]
                 .mean().round(3).reset_index(), hide_index=True, width="stretch", key="ov_sl_table")
