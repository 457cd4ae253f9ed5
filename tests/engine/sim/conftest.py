"""A small generated hospital with the generator's truth as forecasts, shared by the sim tests.

The truth (true median and log-sd per case, true cancellation probability) makes forecasts that
do not depend on training, so the backtest's expected figures depend only on the generator and
the simulation. The CLI tests register a quickly fitted model instead.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.forecast import forecast_addons
from engine.generator import GeneratorParams, write_hospital
from engine.hospital import load_hospital
from engine.sim import as_booked_schedule

Z80, Z95 = 0.8416212335729143, 1.6448536269514722


def truth_forecasts(folder, cases: pd.DataFrame) -> pd.DataFrame:
    t = pd.read_csv(folder / "truth.csv").set_index("case_id").loc[cases["case_id"]]
    m, s = t["true_median_minutes"].to_numpy(), t["true_sigma"].to_numpy()
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(), "p50": m, "p80": m * np.exp(Z80 * s),
                         "p95": m * np.exp(Z95 * s), "cancel_prob": t["true_cancel_prob"].to_numpy()})


@pytest.fixture(scope="session")
def sim_hospital(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim") / "small"
    write_hospital(folder, GeneratorParams(seed=3, rooms=6, history_days=360, horizon_days=7))
    return folder, load_hospital(folder).hospital


@pytest.fixture(scope="session")
def forecasts(sim_hospital):
    folder, h = sim_hospital
    return truth_forecasts(folder, h.cases[h.cases["status"] == "booked"])


@pytest.fixture(scope="session")
def day1(sim_hospital):
    return sim_hospital[1].as_of()


@pytest.fixture(scope="session")
def addon_fc(sim_hospital, day1):
    h = sim_hospital[1]
    return forecast_addons(h.cases, [day1 + pd.Timedelta(days=i) for i in range(5)], as_of=day1)


@pytest.fixture(scope="session")
def booked_day(sim_hospital, forecasts, day1):
    return as_booked_schedule(sim_hospital[1], forecasts, day1, 1)


@pytest.fixture(scope="session")
def booked_two_days(sim_hospital, forecasts, day1):
    return as_booked_schedule(sim_hospital[1], forecasts, day1, 2)


@pytest.fixture(scope="session")
def rules_day(sim_hospital, forecasts, day1):
    from engine.plan import PlanParams, plan

    return plan(sim_hospital[1], forecasts, day1, PlanParams(days=1, solver="rules")).schedule
