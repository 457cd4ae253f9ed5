"""The Simulation page's engine vocabulary (pages/simulation.py): scenarios, knobs, policies and the
simulation settings, so the page imports no engine module. The cached runs are in dashboard/state.py
(``policy_run``, ``frontier``)."""
from __future__ import annotations

import pandas as pd

from engine.policies import POLICIES  # noqa: F401  (re-exported: the policies the page offers)
from engine.sim import ADDON_POLICIES, CONTRACT_METRICS, KNOBS  # noqa: F401  (re-exported for the page)
from engine.sim.verdict import DEFAULT_REPS, DEFAULT_SEED  # noqa: F401  (the verdict's replications and seed)


def scenarios() -> list[str]:
    """The scenario names shipped in data/scenarios/ (engine.sim.available_scenarios)."""
    from engine.sim import available_scenarios

    return available_scenarios()


def scenario(name: str):
    """The named scenario, read from its TOML file (engine.sim.load_scenario)."""
    from engine.sim import load_scenario

    return load_scenario(name)


def default_addon_policy() -> str:
    """Where add-ons go unless the page says otherwise (SimParams' default)."""
    from engine.sim import SimParams

    return SimParams().addon_policy


def sim_params(addon_policy: str):
    """The SimParams of a run with this add-on placement (frozen, hence part of the run's cache key)."""
    from engine.sim import SimParams

    return SimParams(addon_policy=addon_policy)


def paired_table(paired: pd.DataFrame) -> pd.DataFrame:
    """The policies' paired differences on the contract metrics, each in its own unit (engine.sim.verdict.paired_units)."""
    from engine.sim.verdict import paired_units

    return paired_units(paired, CONTRACT_METRICS)
