"""generate --sites N: seeded, deterministic, one valid hospital folder per site, shared surgeons."""
from __future__ import annotations

import filecmp
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from engine.cli import main
from engine.generator import write_hospital
from engine.hospital import load_hospital
from engine.network import NETWORK_FILE, NetworkParams, cross_site_surgeons, generate_network, load_network
from tests.engine.network.conftest import TINY


def test_one_site_is_exactly_todays_generate(tmp_path: Path) -> None:
    assert main(["generate", "--out", str(tmp_path / "a"), "--seed", "3", "--rooms", "4", "--history-days", "60"]) == 0
    assert main(["generate", "--out", str(tmp_path / "b"), "--seed", "3", "--rooms", "4", "--history-days", "60",
                 "--sites", "1"]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir()) and NETWORK_FILE not in names
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)
    assert not mismatch and not errors


def test_network_is_deterministic_and_ids_are_unique(tiny_network: Path) -> None:
    params = NetworkParams(sites=3, base=TINY, shared_surgeon_share=0.25)
    again = generate_network(params)
    net = load_network(tiny_network)
    assert [s.name for s in net.sites] == ["Ashford", "Bramley", "Carrow"]
    case_ids = []
    for site, frames in zip(net.sites, again):
        on_disk = pd.read_csv(site.folder / "cases.csv", dtype=str, keep_default_na=False)
        assert list(on_disk["case_id"]) == list(frames["cases.csv"]["case_id"])  # same draw twice
        case_ids += list(on_disk["case_id"])
        rooms = pd.read_csv(site.folder / "rooms.csv", dtype=str)
        assert set(rooms["site"]) <= {site.name, f"{site.name} ASC"}
    assert len(case_ids) == len(set(case_ids))
    other = generate_network(replace(params, base=replace(TINY, seed=6)))
    assert not other[1]["cases.csv"]["surgery_date"].equals(again[1]["cases.csv"]["surgery_date"])


def test_every_site_validates_and_some_surgeons_work_at_two_sites(tiny_network: Path) -> None:
    net = load_network(tiny_network)
    for site in net.sites:
        loaded = load_hospital(site.folder)
        assert loaded.report.n_quarantined == 0 and len(loaded.hospital.cases)
    shared = cross_site_surgeons(net)
    assert shared and all(len(v) == 2 for v in shared.values())
    # a shared surgeon carries cases at both sites, under one id
    sid, sites = next(iter(shared.items()))
    for site in net.sites:
        if site.name in sites:
            cases = pd.read_csv(site.folder / "cases.csv", dtype=str)
            assert (cases["surgeon_id"] == sid).any()


def test_site_zero_draws_the_networks_own_seed(tiny_network: Path, tmp_path: Path) -> None:
    write_hospital(tmp_path / "one", TINY)
    mine = pd.read_csv(load_network(tiny_network).sites[0].folder / "cases.csv", dtype=str)
    plain = pd.read_csv(tmp_path / "one" / "cases.csv", dtype=str)
    assert len(mine) == len(plain)
    assert (mine["case_id"] == "ASH-" + plain["case_id"]).all()
    assert (mine["surgery_date"] == plain["surgery_date"]).all()


@pytest.mark.parametrize("kw", [{"sites": 0}, {"shared_surgeon_share": 0.9}])
def test_bad_network_params_name_the_field(kw: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kw))):
        NetworkParams(**kw)


def test_cli_bad_sites_exits_2(tmp_path: Path) -> None:
    assert main(["generate", "--out", str(tmp_path / "n"), "--sites", "0"]) == 2
    assert not (tmp_path / "n").exists()
