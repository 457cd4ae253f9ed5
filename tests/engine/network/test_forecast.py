"""Network forecasting: pooled vs per-site chosen by validation, the choice recorded and used."""
from __future__ import annotations

import json
from pathlib import Path

from engine.forecast import Registry
from engine.network import load_network, model_ids, read_choice
from engine.network.forecast import choice_path


def test_the_better_candidate_is_trained_and_recorded(trained_network: tuple[Path, Path]) -> None:
    root, models = trained_network
    net = load_network(root)
    choice = read_choice(net, models)
    assert choice is not None and choice_path(net, models).is_file()
    scores = choice["scores"]
    assert choice["choice"] == ("pooled" if scores["pooled"] < scores["per_site"] else "per_site")
    assert [r["site"] for r in choice["by_site"]] == [s.name for s in net.sites]
    assert all(r["n_test"] > 0 for r in choice["by_site"])
    ids = model_ids(net, models)
    assert (len(set(ids.values())) == 1) == (choice["choice"] == "pooled")
    for site in net.sites:
        mv = Registry(models).load(ids[site.name])
        assert mv is not None and mv.version == choice["models"][site.name]["version"]
    json.dumps(choice)  # the record is plain JSON


def test_without_a_record_each_site_uses_its_own_model(tiny_network: Path, tmp_path: Path) -> None:
    net = load_network(tiny_network)
    assert model_ids(net, tmp_path) == {s.name: s.folder.name for s in net.sites}
