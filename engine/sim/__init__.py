"""Simulation: a SimPy model of OR days (the reference) and a vectorised engine with the same rules.

Param / Model / Runner: :class:`SimParams` and TOML scenarios (:func:`load_scenario`) are the
parameters; :mod:`engine.sim.model` (SimPy) and :mod:`engine.sim.vector` (numpy, replications as
an array axis) are the model; :func:`simulate`, :func:`compare_policies`, :func:`run_sweep` and
:func:`replay_actuals` are the runners (the policies' schedules and the replay of a past week are
orchestration, in :mod:`engine.policies`). Replications use common random numbers keyed by
``SeedSequence(seed).spawn(n)`` and by case id, so schedules are compared on the same days.
"""
from engine.sim.instance import Actuals, SimInstance, build_instance, read_schedule_file, validate_schedule
from engine.sim.metrics import CONTRACT_METRICS, EXTRA_METRICS, describe
from engine.sim.params import ADDON_POLICIES, ENGINES, SimParams
from engine.sim.runner import (
    PolicyComparison,
    SimResult,
    SweepResult,
    compare_policies,
    paired_differences,
    replay_actuals,
    run_sweep,
    schedule_dates,
    simulate,
)
from engine.sim.scenario import KNOBS, Scenario, available_scenarios, load_scenario
from engine.sim.verdict import DecisionComparison, decision_comparison, verdict_sentence

__all__ = [
    "ADDON_POLICIES", "Actuals", "DecisionComparison", "decision_comparison", "verdict_sentence", "CONTRACT_METRICS", "ENGINES", "EXTRA_METRICS", "KNOBS", "POLICIES", "PolicyComparison",
    "Replay", "Scenario", "SimInstance", "SimParams", "SimResult", "SweepResult", "as_booked_schedule",
    "available_scenarios", "booked_minutes_forecasts", "build_instance", "compare_policies", "describe",
    "load_scenario", "paired_differences", "policy_schedules", "read_schedule_file", "replay_actuals", "replay_week",
    "run_sweep", "schedule_dates", "simulate", "validate_schedule",
]

# Names that moved out of the simulation (engine.policies calls engine.sim, not the other way round),
# still importable from here for existing callers; new code imports them from their homes.
_MOVED = {"POLICIES": "engine.policies", "Replay": "engine.policies", "as_booked_schedule": "engine.policies",
          "policy_schedules": "engine.policies", "replay_week": "engine.policies"}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    if name == "booked_minutes_forecasts":
        from engine.forecast.fallback import booked_forecasts

        return booked_forecasts
    raise AttributeError(f"module 'engine.sim' has no attribute {name!r}")
