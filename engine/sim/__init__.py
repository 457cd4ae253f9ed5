"""Simulation: a SimPy model of OR days (the reference) and a vectorised engine with the same rules.

Param / Model / Runner: :class:`SimParams` and TOML scenarios (:func:`load_scenario`) are the
parameters; :mod:`engine.sim.model` (SimPy) and :mod:`engine.sim.vector` (numpy, replications as
an array axis) are the model; :func:`simulate`, :func:`compare_policies`, :func:`run_sweep` and
:func:`replay_week` are the runners. Replications use common random numbers keyed by
``SeedSequence(seed).spawn(n)`` and by case id, so schedules are compared on the same days.
"""
from engine.sim.instance import Actuals, SimInstance, build_instance, read_schedule_file, validate_schedule
from engine.sim.metrics import CONTRACT_METRICS, EXTRA_METRICS, describe
from engine.sim.params import ADDON_POLICIES, ENGINES, SimParams
from engine.sim.runner import (
    POLICIES,
    PolicyComparison,
    Replay,
    SimResult,
    SweepResult,
    as_booked_schedule,
    booked_minutes_forecasts,
    compare_policies,
    paired_differences,
    policy_schedules,
    replay_actuals,
    replay_week,
    run_sweep,
    simulate,
)
from engine.sim.scenario import KNOBS, Scenario, available_scenarios, load_scenario
from engine.sim.verdict import DecisionComparison, decision_comparison, verdict_sentence

__all__ = [
    "ADDON_POLICIES", "Actuals", "DecisionComparison", "decision_comparison", "verdict_sentence", "CONTRACT_METRICS", "ENGINES", "EXTRA_METRICS", "KNOBS", "POLICIES", "PolicyComparison",
    "Replay", "Scenario", "SimInstance", "SimParams", "SimResult", "SweepResult", "as_booked_schedule",
    "available_scenarios", "booked_minutes_forecasts", "build_instance", "compare_policies", "describe",
    "load_scenario", "paired_differences", "policy_schedules", "read_schedule_file", "replay_actuals", "replay_week",
    "run_sweep", "simulate", "validate_schedule",
]
