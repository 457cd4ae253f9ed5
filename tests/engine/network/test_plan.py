"""plan --all-sites: every site an independent Dask task, each schedule checked, failures isolated."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from engine.cli import main
from engine.forecast import Registry, train_and_register
from engine.governance import read_log, verify_chain
from engine.governance.canonical import input_data_hash
from engine.hospital import load_hospital
from engine.network import INPROCESS, load_network, owners, plan_network, released
from engine.pilot.record import cli_actor
from engine.plan import PlanParams
from tests.engine.network.conftest import QUICK_FORECAST, START
from tests.feasibility import check_schedule, read_schedule

QUICK_PLAN = PlanParams(days=5, time_limit_s=5.0, sequence_time_limit_s=1.0)
DATES = [pd.Timestamp(START) + pd.Timedelta(days=i) for i in range(5)]


def test_owner_of_a_cross_site_surgeon_day_has_the_most_block_minutes(tiny_network: Path) -> None:
    net = load_network(tiny_network)
    owned = owners(net, DATES)
    assert len(owned), "the tiny network should have surgeons with work at two sites on one day"
    for r in owned.itertuples():
        minutes = {}
        for site in net.sites:
            b = pd.read_csv(site.folder / "blocks.csv", dtype=str)
            b = b[(b["surgeon_id"] == r.surgeon_id) & (pd.to_datetime(b["date"]) == r.date)]
            to_min = lambda s: s.str.slice(0, 2).astype(int) * 60 + s.str.slice(3, 5).astype(int)  # noqa: E731
            minutes[site.name] = float((to_min(b["end_time"]) - to_min(b["start_time"])).sum()) if len(b) else 0.0
        assert minutes[r.owner] == max(minutes[s] for s in r.sites.split(";"))
        for s in r.sites.split(";"):
            gives = released(owned, s)
            hit = (gives["surgeon_id"] == r.surgeon_id) & (gives["date"] == r.date)
            assert hit.any() == (s != r.owner)


def test_three_sites_on_a_two_worker_local_cluster_are_each_feasible(trained_network: tuple[Path, Path]) -> None:
    root, models = trained_network
    net = load_network(root)
    seen: list[tuple[int, str]] = []
    result = plan_network(net, START, QUICK_PLAN, n_workers=2, models=models,
                          progress=lambda done, total, site, state: seen.append((done, state)))
    assert result.cluster == "LocalCluster(2 workers)"
    assert result.failed == [] and [s.site for s in result.sites] == [s.name for s in net.sites]
    assert seen[-1][0] == 3 and {st for _, st in seen} >= {"submitted", "ok"}
    for site, out in zip(net.sites, result.sites):
        assert out.plan["status"] and "mip_gap" in out.plan and "fallback_used" in out.plan
        violations = check_schedule(site.folder, out.schedule, horizon_dates=DATES)
        assert violations == [], violations[:5]
    # across sites: no surgeon is in two rooms at once, and each cross-site surgeon-day is worked at its owner only
    assert result.union_violations == []
    every = result.schedule()
    done = every[every["status"] == "scheduled"]
    for r in result.owned.itertuples():
        where = set(done.loc[(done["surgeon_id"] == r.surgeon_id) & (pd.to_datetime(done["date"]) == r.date), "site"])
        assert where <= {r.owner}
    left = every[every["reason"].fillna("").str.startswith("cross-site surgeon")]
    assert len(left) == sum(s.summary()["n_released"] for s in result.sites)
    assert (left["status"] == "deferred").all()


def test_a_failing_site_does_not_fail_the_others(trained_network: tuple[Path, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from dashboard.network_state import network_runs

    monkeypatch.setenv("NETWORK_PROGRESS_DIR", str(tmp_path / "progress"))
    root, models = trained_network
    broken = tmp_path / "tri"
    shutil.copytree(root, broken)
    net = load_network(broken)
    rooms = net.sites[1].folder / "rooms.csv"
    rooms.write_text(rooms.read_text().replace("07:30", "7h30", 1))
    out = tmp_path / "out"
    db = f"sqlite:///{tmp_path / 'store.sqlite'}"
    code = main(["plan", "--data", str(broken), "--all-sites", "--date", START, "--days", "2", "--time-limit", "3",
                 "--scheduler", INPROCESS, "--models", str(models), "--out", str(out), "--json", str(tmp_path / "r.json"),
                 "--db", db])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["failed"] == [net.sites[1].name]
    bad = report["sites"][1]
    assert not bad["ok"] and "rooms.csv" in bad["error"]
    for i in (0, 2):
        assert report["sites"][i]["ok"] and report["sites"][i]["n_violations"] == 0
        assert (out / net.sites[i].folder.name / "schedule.csv").exists()
    assert not (out / net.sites[1].folder.name).exists()
    # audited like `plan`: one recommendation per planned site, under its folder's name; none for the failed site
    log = read_log(db)
    assert sorted(log["hospital_id"]) == sorted(net.sites[i].folder.name for i in (0, 2))
    for i in (0, 2):
        entry = log[log["hospital_id"] == net.sites[i].folder.name].iloc[0]
        p = entry["payload"]
        assert entry["kind"] == "recommendation" and entry["actor"] == cli_actor()[0]
        assert p["input_data_hash"] == input_data_hash(load_hospital(net.sites[i].folder).hospital)
        assert p["model_version"] and p["model_version"] in report["sites"][i]["model"]
        assert p["params"]["days"] == 2 and p["params"]["allow_date_change"] is False
        assert p["site"] == net.sites[i].name and p["n_scheduled"] == report["sites"][i]["n_scheduled"]
        assert report["sites"][i]["audit_seq"] == entry["seq"] == 1
        assert verify_chain(db, net.sites[i].folder.name).ok
    # progress: on the command line, and in the file the Schedule page reads
    err = capsys.readouterr().err
    assert f"[3/3]" in err and f"{net.sites[1].name}: failed" in err
    (run,) = network_runs()
    assert run.fraction == 1.0 and "failed: " + net.sites[1].name in run.caption
    assert list(run.table["State"]) == ["ok", "failed", "ok"]


def test_a_plain_one_site_folder_plans(tiny_network: Path, tmp_path: Path) -> None:
    """A hospital folder without network.toml is a one-site network: no cross-site surgeon-days (an empty
    owners frame, whose untyped date column once failed the merge in every one-site plan)."""
    solo = tmp_path / "solo"
    shutil.copytree(load_network(tiny_network).sites[0].folder, solo)
    net = load_network(solo)
    assert net.is_single and len(owners(net, DATES)) == 0
    models = tmp_path / "models"
    train_and_register(load_hospital(solo).hospital, "solo", QUICK_FORECAST, Registry(models), test_days=28)
    db = f"sqlite:///{tmp_path / 'store.sqlite'}"
    code = main(["plan", "--data", str(solo), "--all-sites", "--date", START, "--days", "5", "--solver", "rules",
                 "--scheduler", INPROCESS, "--models", str(models), "--out", str(tmp_path / "out"),
                 "--json", str(tmp_path / "r.json"), "--db", db])
    assert code == 0
    (site,) = json.loads((tmp_path / "r.json").read_text())["sites"]
    assert site["ok"] and site["error"] is None and site["n_released"] == 0
    written = tmp_path / "out" / "solo" / "schedule.csv"
    assert (read_schedule(written)["status"] == "scheduled").sum() == site["n_scheduled"] > 0
    assert check_schedule(solo, written, horizon_dates=DATES) == []
    assert list(read_log(db)["hospital_id"]) == ["solo"]


def test_unreachable_scheduler_exits_2(tiny_network: Path, tmp_path: Path) -> None:
    code = main(["plan", "--data", str(tiny_network), "--all-sites", "--date", START, "--scheduler", "tcp://127.0.0.1:9",
                 "--connect-timeout", "2", "--out", str(tmp_path / "o")])
    assert code == 2


def test_a_connect_timeout_that_is_not_positive_exits_2(tiny_network: Path, tmp_path: Path, capsys) -> None:
    code = main(["plan", "--data", str(tiny_network), "--all-sites", "--date", START, "--scheduler", "tcp://127.0.0.1:9",
                 "--connect-timeout", "0", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "--connect-timeout" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_local_workers_never_run_the_parent_main_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under Streamlit ``__main__`` is dashboard/app.py; multiprocessing's spawn would run it again in
    every worker (it failed the workers' start when an AppTest had run in the same process)."""
    import sys
    import types

    from engine.network.plan import dask_client

    marker = tmp_path / "ran"
    script = tmp_path / "app.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('x')\nraise SystemExit(1)\n", encoding="utf-8")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    with dask_client(None, n_workers=1) as (client, label):
        assert label == "LocalCluster(1 workers)"
        assert client.submit(sum, [1, 2], pure=False).result(timeout=120) == 3
    assert not marker.exists()
    assert sys.modules["__main__"] is fake
