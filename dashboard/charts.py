"""Plotly figure builders. They take engine DataFrames and return figures; no state, no I/O."""
from __future__ import annotations

import re

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def display_table(df: pd.DataFrame, decimals: int | dict[str, int] = 1) -> pd.DataFrame:
    """A copy for st.dataframe: numeric columns rounded, midnight-only datetime columns shown as dates.

    Rounds column by column (DataFrame.round warns on datetime columns)."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            v = s.dropna()
            if len(v) and (v == v.dt.normalize()).all():
                out[col] = s.dt.date
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            d = decimals.get(col) if isinstance(decimals, dict) else decimals
            if d is not None:
                out[col] = s.round(d)
    return out


def weekly_cases(counts: pd.DataFrame, statuses: list[str]) -> go.Figure:
    """Stacked bars: cases per week per service line (from engine.feeds.weekly_case_counts)."""
    d = counts[counts["status"].isin(statuses)].groupby(["week", "service_line"], as_index=False)["cases"].sum()
    fig = px.bar(d, x="week", y="cases", color="service_line", labels={"week": "week starting", "service_line": "service line"})
    fig.update_layout(barmode="stack", height=380, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="")
    return fig


def duration_distribution(durations: pd.DataFrame) -> go.Figure:
    """Box plots of room minutes per service line, ordered by median."""
    order = durations.groupby("service_line")["room_minutes"].median().sort_values().index.tolist()
    fig = px.box(
        durations,
        x="service_line",
        y="room_minutes",
        color="service_line",
        category_orders={"service_line": order},
        points=False,
        labels={"room_minutes": "room time (min, wheels in to wheels out)", "service_line": ""},
    )
    fig.update_layout(showlegend=False, height=420, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def calibration(points: pd.DataFrame) -> go.Figure:
    """Nominal against observed coverage (points: nominal, observed, group)."""
    fig = px.line(points, x="nominal", y="observed", color="group", markers=True,
                  labels={"nominal": "stated coverage (quantile level)", "observed": "observed share of cases at or below"})
    fig.add_trace(go.Scatter(x=[0.4, 1.0], y=[0.4, 1.0], mode="lines", name="perfect calibration",
                             line=dict(dash="dash", color="grey")))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), xaxis_range=[0.4, 1.0], yaxis_range=[0.4, 1.0])
    return fig


def error_by_group(table: pd.DataFrame, group: str) -> go.Figure:
    """MAE of the model's P50 against the baselines, per group (e.g. service line)."""
    long = table.melt(id_vars=[group], value_vars=["mae_p50", "mae_baseline_history", "mae_baseline_booked"],
                      var_name="forecast", value_name="MAE (min)").dropna()
    names = {"mae_p50": "model P50", "mae_baseline_history": "surgeon x procedure median", "mae_baseline_booked": "booked minutes"}
    long["forecast"] = long["forecast"].map(names)
    fig = px.bar(long, x=group, y="MAE (min)", color="forecast", barmode="group")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="", xaxis_title="")
    return fig


def under_prediction(table: pd.DataFrame, group: str, nominal: float = 0.2) -> go.Figure:
    """Share of cases running past their P80, per group, against the nominal 20%."""
    fig = px.bar(table, x=group, y="under_prediction_rate", labels={"under_prediction_rate": "share of cases longer than P80"})
    fig.add_hline(y=nominal, line_dash="dash", annotation_text=f"nominal {nominal:.0%}")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="", yaxis_tickformat=".0%")
    return fig


def psi_bars(drift: pd.DataFrame, warn: float, stop: float) -> go.Figure:
    colors = {"ok": "#2e7d32", "warn": "#f9a825", "stop": "#c62828", "n/a": "#9e9e9e"}
    fig = px.bar(drift, x="quantity", y="psi", color="state", color_discrete_map=colors, labels={"psi": "PSI"})
    fig.add_hline(y=warn, line_dash="dot", annotation_text="warn")
    fig.add_hline(y=stop, line_dash="dash", annotation_text="stop")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="")
    return fig


SERVICE_COLORS = px.colors.qualitative.Safe + px.colors.qualitative.Pastel


def gantt(schedule: pd.DataFrame, date: pd.Timestamp, close_by_room: dict[str, str] | None = None,
          highlight: set[str] | None = None) -> go.Figure:
    """Rooms x time: a bar from start to the P50 end per case, a whisker to the P80 end,
    coloured by service line. Each bar carries its case_id for selection."""
    d = schedule[(schedule["status"] == "scheduled") & (pd.to_datetime(schedule["date"]) == pd.Timestamp(date))].copy()
    fig = go.Figure()
    if not len(d):
        fig.update_layout(height=200, annotations=[dict(text="No cases scheduled on this date", showarrow=False)])
        return fig
    for col in ("start", "end_p50", "end_p80"):
        d[col] = pd.to_datetime(d[col])
    lines = sorted(d["service_line"].unique())
    colors = {sl: SERVICE_COLORS[i % len(SERVICE_COLORS)] for i, sl in enumerate(lines)}
    rooms = sorted(d["room_id"].unique(), reverse=True)
    for sl in lines:
        g = d[d["service_line"] == sl]
        ms = (g["end_p50"] - g["start"]).dt.total_seconds() * 1000
        widths = [3 if highlight and cid in highlight else 0.5 for cid in g["case_id"]]
        fig.add_trace(go.Bar(
            y=g["room_id"], x=ms, base=g["start"], orientation="h", name=sl, marker_color=colors[sl],
            marker_line_width=widths, marker_line_color="black", customdata=g[["case_id", "surgeon_id"]].to_numpy(),
            hovertemplate="%{customdata[0]} (%{customdata[1]})<br>%{base|%H:%M} to P50 end<extra>" + sl + "</extra>",
        ))
    # P80 whiskers: a line from each case's P50 end to its P80 end (error bars misplace on date bases).
    xs, ys = [], []
    for r in d.itertuples():
        xs += [r.end_p50, r.end_p80, None]
        ys += [r.room_id, r.room_id, None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name="to P80 end", line=dict(color="#222", width=1.5),
                             marker=dict(symbol="line-ns-open", size=10, color="#222"), hoverinfo="skip"))
    if close_by_room:
        for room in rooms:
            t = close_by_room.get(room)
            if t:
                x = pd.Timestamp(date) + pd.Timedelta(hours=int(t[:2]), minutes=int(t[3:5]))
                fig.add_shape(type="line", x0=x, x1=x, y0=rooms.index(room) - 0.45, y1=rooms.index(room) + 0.45,
                              line=dict(color="red", width=2, dash="dot"))
    fig.update_layout(barmode="overlay", height=max(300, 34 * len(rooms) + 120), xaxis_type="date",
                      yaxis=dict(categoryorder="array", categoryarray=rooms), margin=dict(l=10, r=10, t=30, b=10),
                      legend_title_text="", xaxis_title="bar: start to P50 end; whisker: to P80 end; red: room close")
    return fig


def pacu_load(curve: pd.DataFrame, beds: int) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=curve["time"], y=curve["occupancy"], mode="lines", line_shape="hv", name="patients in PACU"))
    fig.add_hline(y=beds, line_color="red", line_dash="dash", annotation_text=f"{beds} beds")
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), yaxis_title="patients", xaxis_title="")
    return fig


ALTERNATIVE_KPIS = {"utilization": "Prime-time utilization", "expected_overtime_minutes": "Expected overtime (min)",
                    "n_deferred": "Deferred cases"}


def alternatives_bars(table: pd.DataFrame) -> go.Figure:
    long = table.melt(id_vars=["alternative"], value_vars=list(ALTERNATIVE_KPIS), var_name="kpi", value_name="value")
    long["kpi"] = long["kpi"].map(ALTERNATIVE_KPIS)
    fig = px.bar(long, x="alternative", y="value", facet_col="kpi", color="alternative", labels={"alternative": ""})
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_yaxes(matches=None, showticklabels=True, title_text="")
    fig.update_layout(height=300, showlegend=False, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def addon_bars(f: pd.DataFrame) -> go.Figure:
    """Expected add-on minutes per date, stacked by service line, with the total's reserve level."""
    fig = px.bar(f, x="date", y="expected_minutes", color="service_line",
                 labels={"expected_minutes": "Expected add-on minutes", "date": "", "service_line": "Service line"})
    fig.update_layout(barmode="stack", height=340, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="")
    return fig


FAIRNESS_LABELS = {
    "service_line": "Service line",
    "surgeon_id": "Surgeon",
    "site": "Site",
    "n_cases": "Cases (n)",
    "n_scheduled": "Scheduled (n)",
    "demand_minutes": "Demand (min)",
    "prime_minutes": "Prime-time minutes",
    "demand_share": "Demand share",
    "prime_time_share": "Prime-time share",
    "prime_time_gap": "Prime-time gap (points)",
    "late_slot_share": "Late-slot share",
    "overtime_burden_minutes": "Overtime burden (min)",
    "deferral_rate": "Deferral rate",
    "period_start": "",
}
NA_TEXT = "n/a"
NA_REASON = "n/a: no scheduled cases in this group, so there is no late-slot share to compute"
_HEAT_METRICS = ("prime_time_gap", "late_slot_share", "overtime_burden_minutes", "deferral_rate")


def fairness_label(column: str) -> str:
    """Plain-words label of a fairness column (the column name itself when unknown)."""
    return FAIRNESS_LABELS.get(column, column.replace("_", " "))


def _fairness_text(metric: str, v: float) -> str:
    if pd.isna(v):
        return NA_TEXT
    if metric == "prime_time_gap":
        return f"{v * 100:+.1f}"
    if metric == "overtime_burden_minutes":
        return f"{v:.0f}"
    return f"{v:.0%}"


def fairness_heatmap(table: pd.DataFrame, by: str) -> go.Figure:
    """Groups x metrics, each metric scaled to its own range (darker = worse for the group).

    Undefined cells (a group with no scheduled case has no late-slot share) read "n/a" with the
    reason on hover; every hover names the group's case count so tiny groups can be discounted."""
    metrics = list(_HEAT_METRICS)
    t = table.set_index(by)[metrics].astype(float)
    scaled = (t - t.min()) / (t.max() - t.min()).replace(0, 1)
    n = table.set_index(by)["n_cases"] if "n_cases" in table else pd.Series(pd.NA, index=t.index)
    n_sched = table.set_index(by)["n_scheduled"] if "n_scheduled" in table else n
    text = [[_fairness_text(m, t.iloc[i][m]) for m in metrics] for i in range(len(t))]
    hover = [[(f"{t.index[i]}<br>{fairness_label(m)}: "
               + (NA_REASON if pd.isna(t.iloc[i][m]) else _fairness_text(m, t.iloc[i][m]))
               + f"<br>{n.iloc[i]} cases booked, {n_sched.iloc[i]} scheduled") for m in metrics] for i in range(len(t))]
    # Undefined cells are drawn at the light end (a gap would also hide the "n/a" text).
    fig = go.Figure(go.Heatmap(z=scaled.fillna(0.0).to_numpy(), x=[fairness_label(m) for m in metrics],
                               y=[f"{g} (n={c})" for g, c in zip(t.index, n)], colorscale="Reds",
                               text=text, texttemplate="%{text}", customdata=hover, hovertemplate="%{customdata}<extra></extra>",
                               showscale=False, hoverongaps=True))
    fig.update_layout(height=max(300, 26 * len(t) + 100), margin=dict(l=10, r=10, t=30, b=10))
    return fig


def fairness_display_table(table: pd.DataFrame, by: str):
    """The per-group table for people: plain column names, percentages, and "n/a" (not NaN/None) for
    undefined cells. Returns a pandas Styler so the numbers stay numbers (sortable)."""
    cols = [by, "n_cases", "n_scheduled", "demand_share", "prime_time_share", "prime_time_gap", "late_slot_share",
            "overtime_burden_minutes", "deferral_rate"]
    d = table[[c for c in cols if c in table.columns]].copy()
    if "prime_time_gap" in d:
        d["prime_time_gap"] = d["prime_time_gap"] * 100
    d = d.rename(columns=fairness_label)
    fmt = {fairness_label(c): "{:.1%}" for c in ("demand_share", "prime_time_share", "late_slot_share", "deferral_rate")}
    fmt[fairness_label("prime_time_gap")] = "{:+.1f}"
    fmt[fairness_label("overtime_burden_minutes")] = "{:.0f}"
    fmt = {k: v for k, v in fmt.items() if k in d.columns}
    return d.style.format(fmt, na_rep=NA_TEXT)


def demand_vs_prime(table: pd.DataFrame, by: str) -> go.Figure:
    long = table.melt(id_vars=[by], value_vars=["demand_share", "prime_time_share"], var_name="share", value_name="fraction")
    long["share"] = long["share"].map(fairness_label)
    fig = px.bar(long, x=by, y="fraction", color="share", barmode="group", labels={"fraction": "share", by: fairness_label(by)})
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), yaxis_tickformat=".0%", xaxis_title="", legend_title_text="")
    return fig


def trend_lines(tr: pd.DataFrame, by: str, metric: str) -> go.Figure:
    if metric == "prime_time_gap":  # labelled in points
        tr = tr.assign(prime_time_gap=tr["prime_time_gap"] * 100)
    fig = px.line(tr, x="period_start", y=metric, color=by, markers=True,
                  labels={"period_start": "", metric: fairness_label(metric), by: fairness_label(by)})
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="")
    return fig


METRIC_LABELS = {
    "utilization": "prime-time utilization",
    "overtime_minutes": "staff overtime (min)",
    "cancellations": "cancellations by overrun or beds",
    "total_cancellations": "cancellations, all causes (patient, staff, overrun, beds)",
    "spillover_cases": "spillover cases",
    "pacu_hold_minutes": "PACU hold (min)",
    "surgeon_idle_minutes": "surgeon idle (min)",
}


def policy_violins(per_rep: dict[str, pd.DataFrame], metric: str) -> go.Figure:
    """Distribution of one metric per policy over replications (same random days)."""
    fig = go.Figure()
    for name, df in per_rep.items():
        fig.add_trace(go.Violin(y=df[metric], name=name, box_visible=True, meanline_visible=True, points=False))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), yaxis_title=METRIC_LABELS.get(metric, metric),
                      showlegend=False)
    return fig


def policy_ecdf(per_rep: dict[str, pd.DataFrame], metric: str) -> go.Figure:
    long = pd.concat([pd.DataFrame({"policy": n, metric: df[metric]}) for n, df in per_rep.items()], ignore_index=True)
    fig = px.ecdf(long, x=metric, color="policy", labels={metric: METRIC_LABELS.get(metric, metric)})
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="")
    return fig


def _unit_axes(d: pd.DataFrame, label: str, group: str | None, x_title: str) -> go.Figure:
    """Intervals (``diff``, ``ci_lo``, ``ci_hi``) in one panel per unit group (engine.sim.verdict.UNIT_GROUPS):
    minutes, utilization points and counts never share an axis."""
    from plotly.subplots import make_subplots

    from engine.sim.verdict import UNIT_GROUPS

    d = d.assign(_axis=d["unit"].map(lambda u: UNIT_GROUPS.get(u, u)))
    axes = [a for a in dict.fromkeys(UNIT_GROUPS.values()) if a in set(d["_axis"])] + \
        sorted(set(d["_axis"]) - set(UNIT_GROUPS.values()))
    heights = [max(1, d.loc[d["_axis"] == a, label].nunique()) for a in axes]
    fig = make_subplots(rows=len(axes), cols=1, row_heights=heights, vertical_spacing=0.12,
                        subplot_titles=[f"{x_title} ({a})" for a in axes])
    groups = list(d.groupby(group, sort=False)) if group else [(None, d)]
    for i, a in enumerate(axes, start=1):
        for name, g in groups:
            g = g[g["_axis"] == a]
            if not len(g):
                continue
            fig.add_trace(go.Scatter(x=g["diff"], y=g[label], mode="markers", name=name or "difference",
                                     legendgroup=str(name), showlegend=i == 1 and name is not None,
                                     error_x=dict(type="data", symmetric=False, array=g["ci_hi"] - g["diff"],
                                                  arrayminus=g["diff"] - g["ci_lo"])), row=i, col=1)
        fig.add_vline(x=0, line_dash="dash", line_color="grey", row=i, col=1)
    fig.update_layout(height=max(300, 40 * sum(heights) + 110 * len(axes)), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def paired_ci(paired: pd.DataFrame) -> go.Figure:
    """Policy minus baseline with 95% intervals, one row per metric and statistic, one panel per unit
    (``paired`` from engine.sim.verdict.paired_units)."""
    d = paired.copy()
    d["label"] = d["metric"].map(lambda m: METRIC_LABELS.get(m, m)) + " (" + d["statistic"] + ")"
    d["pair"] = d["policy"] + " - " + d["baseline"]
    return _unit_axes(d, "label", "pair", "policy - baseline, 95% interval")


def decision_intervals(table: pd.DataFrame) -> go.Figure:
    """Optimized minus rules per measure with its paired 95% interval (engine.sim.decision_table),
    minutes, utilization points and counts each on their own axis."""
    return _unit_axes(table, "measure", None, "optimized - rules, 95% interval")


DECISION_COLUMNS = {"measure": "Measure", "basis": "Basis", "optimized": "Optimized", "rules": "Rules",
                    "diff": "Difference", "ci_lo": "95% interval low", "ci_hi": "95% interval high",
                    "judgement": "Optimized is"}


def decision_display(table: pd.DataFrame) -> pd.DataFrame:
    """The decision table for people: the unit in the measure's name, numbers rounded, columns in words."""
    d = table.assign(measure=table["measure"] + " (" + table["unit"] + ")")
    return display_table(d[list(DECISION_COLUMNS)], 1).rename(columns=DECISION_COLUMNS)



KPI_LABELS = {
    "prime_time_utilization": "Prime-time utilization",
    "overtime_minutes": "Staff overtime (min)",
    "cancellation_rate": "Cancellation rate",
    "addon_cases": "Add-on cases",
    "on_time_first_case": "On-time first case",
}


def kpi_trend(k: pd.DataFrame, metric: str, color: str | None = None) -> go.Figure:
    label = KPI_LABELS.get(metric, metric.replace("_", " ").capitalize())
    fig = px.line(k, x="period", y=metric, color=color, markers=False, labels={"period": "", metric: label})
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="", title=label)
    return fig


def frontier_chart(f: pd.DataFrame) -> go.Figure:
    """Cases scheduled (planned) against P95 overtime (simulated, with its chance band) per plan of
    engine.overview.frontier; the rules schedule and the current plan are marked."""
    kind = f["point"].map(lambda p: p if p in ("rules", "current plan") else "other trade-off")
    fig = go.Figure()
    style = {"rules": dict(symbol="square", size=14, color="#c62828"), "current plan": dict(symbol="star", size=16, color="#1565c0"),
             "other trade-off": dict(symbol="circle", size=10, color="#757575")}
    trade = f[kind != "rules"].sort_values("p95_overtime_minutes")
    fig.add_trace(go.Scatter(x=trade["p95_overtime_minutes"], y=trade["cases_scheduled"], mode="lines",
                             line=dict(color="grey", dash="dot"), showlegend=False, hoverinfo="skip"))
    for k, st_ in style.items():
        g = f[kind == k]
        if not len(g):
            continue
        fig.add_trace(go.Scatter(
            x=g["p95_overtime_minutes"], y=g["cases_scheduled"], mode="markers+text", name=k, marker=st_,
            text=g["point"], textposition="top center",
            error_x=dict(type="data", symmetric=False, array=g["p95_overtime_hi"] - g["p95_overtime_minutes"],
                         arrayminus=g["p95_overtime_minutes"] - g["p95_overtime_lo"]),
            customdata=g[["deferred_cases", "mean_pacu_hold_minutes"]].to_numpy(),
            hovertemplate="%{text}<br>P95 overtime %{x:.0f} min<br>%{y} cases scheduled, %{customdata[0]} deferred"
                          "<br>mean PACU hold %{customdata[1]:.0f} min<extra></extra>"))
    fig.update_layout(height=400, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="",
                      xaxis_title="P95 staff overtime (min, simulated; bar: 90% chance band)",
                      yaxis_title="cases scheduled (planned)")
    return fig


# Column names in words, for every table a page shows (the engine's names stay in CSV/JSON exports).
COLUMN_LABELS = {
    "case_id": "Case", "surgeon_id": "Surgeon", "service_line": "Service line", "room_id": "Room", "site": "Site",
    "date": "Date", "surgery_date": "Surgery date", "status": "Status", "start": "Start", "reason": "Reason",
    "end_p50": "End at P50", "end_p80": "End at P80", "pacu_in": "Recovery in", "pacu_out": "Recovery out",
    "procedure": "Procedure", "procedure_code": "Procedure code", "procedure_name": "Procedure",
    "booked_minutes": "Booked (min)", "p50": "P50", "p80": "P80", "p95": "P95",
    "cancel_prob": "Cancellation risk", "novelty": "Familiarity", "reasons": "Reasons",
    "version": "Version", "version_id": "Version", "horizon_start": "From", "horizon_end": "To", "source": "Source",
    "created_by": "Created by", "approved_by": "Approved by", "published_by": "Published by", "status_note": "Note",
    "model_version": "Model version", "n_cases": "Cases (n)",
    "id": "Rule", "name": "Name", "mode": "Mode", "severity": "Severity", "owner": "Owner",
    "override_role": "May override", "description": "Description",
    "threshold_days": "Threshold (days)", "age_days": "Age (days)", "last_date": "Last date", "feed": "Feed",
    "policy": "Policy", "metric": "Metric", "mean": "Mean", "p5": "P5", "worst5_mean": "Mean of the worst 5%",
    "w_overtime": "Overtime weight", "prime_time_utilization": "Prime-time utilization (simulated mean)",
    "p95_overtime_minutes": "P95 overtime (min, simulated)", "deferred_cases": "Deferred cases (planned)",
    "solver": "Solver", "current_policy": "Current policy", "point": "Plan", "risk_factor": "Risk weight (x current)",
    "cases_scheduled": "Cases scheduled (planned)", "fallback_used": "Rules fallback",
    "p95_vs_rules_lo": "P95 vs rules, 95% low (min)", "p95_vs_rules_hi": "P95 vs rules, 95% high (min)",
    "mean_pacu_hold_minutes": "Mean PACU hold (min, simulated)",
    "n_overridden": "Overridden cases (n)", "n_recommended": "Recommended cases (n)", "override_rate": "Override rate",
    "p95_overtime_lo": "P95 overtime, band low (min)", "p95_overtime_hi": "P95 overtime, band high (min)",
    "mean_overtime_minutes": "Mean overtime (min, simulated)", "expected_overtime_minutes": "Expected overtime (min, planned mean)",
    "expected_cases": "Expected add-ons", "expected_minutes": "Expected add-on minutes",
    "reserve_minutes": "Reserve (min, P80 of add-on minutes)",
}


def column_label(column: str) -> str:
    """A column name in words: the table above, else the name with spaces and a capital."""
    c = str(column)
    if c in COLUMN_LABELS or c in FAIRNESS_LABELS:
        return COLUMN_LABELS.get(c) or FAIRNESS_LABELS[c]
    # An engine name (lower case, underscores) becomes words; a label already in words stays as it is.
    return c.replace("_", " ").capitalize() if re.fullmatch(r"[a-z0-9_]+", c) else c


def words(df: pd.DataFrame) -> pd.DataFrame:
    """The frame with its columns in words (for st.dataframe; exports keep the contract's names)."""
    return df.rename(columns=column_label)


def kpi_delta_color(key: str, change: float, worse: list[str], lower_is_better: set[str]) -> str:
    """st.metric's delta colour by what the KPI means, not by its sign: green for better, red for
    worse. Higher utilization is only better when nothing else got worse (two rooms fewer raise it
    by deferring cases), so it is grey then."""
    if key in lower_is_better:
        return "inverse"
    if key == "prime_time_utilization" and change > 0 and worse:
        return "off"
    return "normal"
