"""Forecasts page: accuracy against baselines, calibration, errors by service line, drift, per-case reasons."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, state
from engine.errors import InputError

st.title("Forecasts")

current = state.current_hospital()
if current is None:
    st.info("No hospital loaded: choose or import one on the Data page.")
    st.stop()
hid, loaded = current
mv = state.current_model(hid)

with st.expander("Model registry and retraining", expanded=mv is None):
    if mv is None:
        st.warning("No forecasting model is registered for this hospital yet. Train one (about a minute on two years of history).")
    else:
        m = mv.meta
        st.markdown(
            f"Current model **{mv.version}**: trained on {m['train_from']} .. {m['train_until']} "
            f"(calibration from {m['calibration_from']}), data hash `{m['data_hash']}`, fit in {m['fit_seconds']} s, "
            f"trained at {m['trained_at']}."
        )
        st.dataframe(charts.display_table(state.registry().versions(hid), decimals={}), hide_index=True, width="stretch")
    refusal = state.why_not("retrain")
    if st.button("Retrain the model now", key="retrain", type="primary" if mv is None else "secondary",
                 disabled=refusal is not None, help=refusal):
        bar = st.progress(0.0, text="starting")
        try:
            new = state.train_model(hid, loaded, lambda f, t: bar.progress(min(max(f, 0.0), 1.0), text=t))
        except InputError as exc:
            st.error(f"Training refused: {exc.describe()}")
        except PermissionError as exc:
            st.error(f"Training refused: {exc}")
        else:
            st.success(f"Registered {new.version}.")
            st.rerun()

if mv is None:
    st.stop()

metrics = mv.meta["metrics"]
st.caption(
    f"Backtest: trained before {mv.meta['backtest_test_from']}, scored on {metrics['n_test']} completed cases from then on "
    f"(the last weeks of history), against the scheduler's booked minutes and the historical surgeon x procedure "
    f"and procedure medians."
)
if mv.meta.get("p50_source"):
    st.caption(f"The P50 is {mv.meta['p50_source']}: chosen on the calibration window, so the forecast is never "
               f"knowingly worse than the simple baseline.")
if mv.meta.get("notes"):
    with st.expander("Adapted to this hospital's data", expanded=not mv.meta.get("cancellation_available", True)):
        for note in mv.meta["notes"]:
            st.markdown(f"- {note}")

acc, by_sl, drift_tab, cases_tab, addon_tab = st.tabs(["Accuracy", "By service line", "Drift", "Per case", "Add-ons"])
with acc:
    c = st.columns(5)
    c[0].metric("P50 MAE (min)", f"{metrics['mae_p50']:.1f}")
    if metrics.get("mae_baseline_booked"):
        c[1].metric("Booked-minutes MAE", f"{metrics['mae_baseline_booked']:.1f}",
                    delta=f"model is {metrics['mae_p50'] / metrics['mae_baseline_booked']:.2f}x", delta_color="off")
    if metrics.get("mae_baseline_history"):
        c[2].metric("History-median MAE", f"{metrics['mae_baseline_history']:.1f}",
                    delta=f"model is {metrics['mae_p50'] / metrics['mae_baseline_history']:.2f}x", delta_color="off")
    c[3].metric("P80 coverage", f"{metrics['coverage_p80']:.1%}", delta=f"{(metrics['coverage_p80'] - 0.8) * 100:+.1f} pts vs 80%", delta_color="off")
    c[4].metric("P95 coverage", f"{metrics['coverage_p95']:.1%}", delta=f"{(metrics['coverage_p95'] - 0.95) * 100:+.1f} pts vs 95%", delta_color="off")
    c = st.columns(4)
    if metrics.get("mae_baseline_procedure"):
        c[0].metric("Procedure-median MAE", f"{metrics['mae_baseline_procedure']:.1f}",
                    delta=f"model is {metrics['mae_p50'] / metrics['mae_baseline_procedure']:.2f}x", delta_color="off")
    share = lambda k: "n/a" if metrics.get(k) is None else f"{metrics[k]:.0%}"  # noqa: E731
    if metrics.get("within_10pct_p50") is not None:
        c[1].metric("Within 10% of actual", share("within_10pct_p50"),
                    delta=f"booked: {share('within_10pct_booked')}, history median: {share('within_10pct_history')}", delta_color="off")
        c[2].metric("Within 15 min of actual", share("within_15min_p50"),
                    delta=f"booked: {share('within_15min_booked')}, history median: {share('within_15min_history')}", delta_color="off")
    if metrics.get("bias_p50") is not None:
        c[3].metric("Bias of the P50 (min)", f"{metrics['bias_p50']:+.1f}",
                    delta="under-predicts" if metrics["bias_p50"] < 0 else "over-predicts", delta_color="off",
                    help="Mean of P50 minus the actual room time; negative means cases run longer than forecast.")
    if not mv.meta.get("cancellation_available", True):
        st.info("**Cancellation model**: not trained for this hospital. "
                + next((n for n in mv.meta.get("notes", []) if "cancel" in n), "Too few cancellations in the history."))
    elif metrics.get("cancel_auc") is not None:
        st.markdown(
            f"**Cancellation model**: AUC {metrics['cancel_auc']:.3f}; Brier score {metrics['cancel_brier']:.4f} "
            f"against {metrics['cancel_brier_base_rate']:.4f} for always predicting the base rate "
            f"({metrics['cancel_rate']:.1%} of elective cases cancelled in the test window)."
        )
    scored = mv.artefact("backtest.parquet")
    st.subheader("Calibration")
    st.plotly_chart(charts.calibration(state.calibration_points(scored, by="novelty")), width="stretch", key="calibration_chart")
    st.caption("Each point: the share of test cases whose actual room time was at or below the stated quantile. "
               "On the dashed line, a P80 is exceeded by exactly 20% of cases. Groups: familiar surgeon x procedure pairs and unfamiliar ones.")
with by_sl:
    table = mv.artefact("by_service_line.csv")
    st.plotly_chart(charts.error_by_group(table, "service_line"), width="stretch", key="error_by_sl")
    st.plotly_chart(charts.under_prediction(table, "service_line"), width="stretch", key="under_by_sl")
    st.dataframe(charts.display_table(table, 3), hide_index=True, width="stretch")
with drift_tab:
    drift = mv.artefact("drift.csv")
    dp = state.drift_params()
    state_ = mv.meta.get("drift_state", "n/a")
    text = {"ok": st.success, "warn": st.warning, "stop": st.error}.get(state_, st.info)
    text(f"Drift state: **{state_.upper()}**. PSI of key features and of the residuals, the training window's calibration "
         f"weeks against the last {dp.recent_days} days. Below {dp.warn_psi} is stable, from {dp.stop_psi} a major shift.")
    if len(drift):
        st.plotly_chart(charts.psi_bars(drift, dp.warn_psi, dp.stop_psi), width="stretch", key="psi_chart")
        st.dataframe(charts.display_table(drift, 3), hide_index=True, width="stretch")
with cases_tab:
    # Masked for the signed-in role (patient attributes, procedure names, reasons) in dashboard/state.py.
    fc = state.forecasts(hid, mv.version, state.loaded_at(hid))
    if not len(fc):
        st.info("No booked cases to forecast.")
    else:
        st.markdown(f"{len(fc)} booked cases. Choose one to see its forecast and the reasons behind it.")
        labels = {r.case_id: f"{r.case_id}: {pd.Timestamp(r.surgery_date):%a %d %b}, procedure {r.procedure_code}"
                             + (f" {r.procedure_name}" if isinstance(r.procedure_name, str) and r.procedure_name != state.MASK else "")
                             + f" ({r.surgeon_id})"
                  for r in fc.itertuples()}
        cid = st.selectbox("Case", list(labels), format_func=labels.get, key="forecast_case")
        row = fc[fc["case_id"] == cid].iloc[0]
        k = st.columns(5)
        k[0].metric("P50", f"{row['p50']:.0f} min")
        k[1].metric("P80", f"{row['p80']:.0f} min")
        k[2].metric("P95", f"{row['p95']:.0f} min")
        k[3].metric("Booked", "n/a" if pd.isna(row["booked_minutes"]) else f"{row['booked_minutes']:.0f} min")
        source = row.get("cancel_source", "model")
        k[4].metric("Cancellation risk", "not forecast" if source == "none" else f"{row['cancel_prob']:.0%}",
                    help={"none": "No cancellations in this hospital's history: no cancellation model.",
                          "base_rate": "Too few cancellations for a model: the history's base rate."}.get(source))
        st.markdown("**How the P50 adds up**: from the model's average case, the top three drivers, the other "
                    "factors together and the calibration, in whole minutes that sum to the P50")
        for part in str(row.get("reasons") or "").split("; "):
            if part and part != row.get("fallback_note"):
                st.markdown(f"- {part}")
        if row.get("fallback_note"):
            st.warning(row["fallback_note"])
        st.dataframe(
            charts.display_table(fc[["case_id", "surgery_date", "service_line", "procedure_name", "surgeon_id", "booked_minutes",
                                     "p50", "p80", "p95", "cancel_prob", "novelty", "reasons"]],
                                 {"p50": 0, "p80": 0, "p95": 0, "cancel_prob": 2}),
            hide_index=True, width="stretch",
        )
with addon_tab:
    addons, daily = state.addon_forecast(hid, state.loaded_at(hid))
    if not len(addons):
        st.info("No add-on (urgent or emergent) history to forecast from.")
    else:
        st.markdown("Expected urgent and emergent add-on volume per day and service line, with 80% intervals. "
                    "`reserve_minutes` (the P80 of add-on minutes) is what a plan can hold back for them.")
        st.plotly_chart(charts.addon_bars(addons), width="stretch", key="addon_chart")
        st.dataframe(charts.display_table(daily, 1), hide_index=True, width="stretch")
        st.dataframe(charts.display_table(addons, 1), hide_index=True, width="stretch", key="addon_table")
