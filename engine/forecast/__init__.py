"""Forecasting: as-of features, duration quantiles, cancellation, add-ons, reasons, registry."""
from engine.forecast.addons import AddonParams, addon_forecast_for, forecast_addon_totals, forecast_addons
from engine.forecast.fallback import booked_forecasts
from engine.forecast.drift import DriftParams, drift_report, overall_state, psi
from engine.forecast.evaluate import EvaluationReport, evaluate
from engine.forecast.features import build_features, model_columns
from engine.forecast.forecaster import Forecaster
from engine.forecast.params import ForecastParams
from engine.forecast.registry import ModelVersion, Registry, train_and_register

__all__ = [
    "AddonParams",
    "DriftParams",
    "EvaluationReport",
    "ForecastParams",
    "Forecaster",
    "ModelVersion",
    "Registry",
    "addon_forecast_for",
    "booked_forecasts",
    "build_features",
    "drift_report",
    "evaluate",
    "forecast_addon_totals",
    "forecast_addons",
    "model_columns",
    "overall_state",
    "psi",
    "train_and_register",
]
