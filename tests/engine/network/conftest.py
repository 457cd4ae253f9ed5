"""A tiny generated network shared by the network tests (a few rooms per site, short history)."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.generator import GeneratorParams
from engine.network import NetworkParams, choose_and_train, load_network, write_network
from engine.forecast import ForecastParams

TINY = GeneratorParams(seed=5, rooms=4, history_days=200, horizon_days=7, n_surgeons=16, n_procedures=30,
                       n_service_lines=4)
QUICK_FORECAST = ForecastParams(iterations=25, cancel_iterations=25, tune=False)
START = "2027-01-04"


@pytest.fixture(scope="session")
def tiny_network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("net") / "tri"
    write_network(root, NetworkParams(sites=3, base=TINY, shared_surgeon_share=0.25))
    return root


@pytest.fixture(scope="session")
def trained_network(tiny_network: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny network with its models chosen and registered (in-process, few iterations)."""
    models = tmp_path_factory.mktemp("models")
    choose_and_train(load_network(tiny_network), models, QUICK_FORECAST, test_days=28)
    return tiny_network, models
