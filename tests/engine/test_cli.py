"""The command line contract (CONTRACTS.md section 3): help, exit codes, --json output."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import engine.hospital
from engine.cli import build_parser, main
from engine.store import Store

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def subcommands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_program_help() -> None:
    res = run_cli("--help")
    assert res.returncode == 0, res.stderr
    assert "usage: python -m engine" in res.stdout
    for name in ("generate", "import", "validate", "ingest"):
        assert name in res.stdout


@pytest.mark.parametrize("command", subcommands())
def test_subcommand_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    # `audit` and `network` group actions (verify, export; train); each action carries --json.
    group_action = {"audit": "verify", "network": "train"}
    argv = [command, group_action[command], "--help"] if command in group_action else [command, "--help"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"python -m engine {command}" in out and "--json" in out


def test_contract_commands_exist() -> None:
    assert {"generate", "import", "validate", "ingest"} <= set(subcommands())


@pytest.mark.parametrize("args", [["frobnicate"], [], ["validate"], ["validate", "--data"]])
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_unknown_command_exits_2_in_a_real_process() -> None:
    res = run_cli("frobnicate")
    assert res.returncode == 2
    assert "invalid choice: 'frobnicate'" in res.stderr


def test_validate_writes_json(mini_hospital: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.json"
    res = run_cli("validate", "--data", str(mini_hospital), "--json", str(out))
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert data["n_quarantined"] == 0
    assert set(data["files"]) == {"cases.csv", "rooms.csv", "surgeons.csv", "blocks.csv", "staffing.csv"}
    assert data["files"]["cases.csv"]["rows"] == 67 and data["files"]["cases.csv"]["rejected"] is False


def test_ingest_into_sqlite(mini_hospital: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'store.sqlite'}"
    out = tmp_path / "ingest.json"
    res = run_cli("ingest", "--data", str(mini_hospital), "--db", url, "--json", str(out))
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text()) == {"hospital": "mini", "n_cases": 67, "n_quarantined": 0}
    assert "stored hospital 'mini'" in res.stdout
    store = Store(url)
    try:
        assert store.has_hospital("mini")
        assert len(store.load_hospital("mini").hospital.cases) == 67
    finally:
        store.close()


def test_bad_input_exits_2_and_writes_no_json(mini_hospital: Path, tmp_path: Path) -> None:
    rooms = mini_hospital / "rooms.csv"
    rooms.write_text(rooms.read_text().replace("OR1,Main,robot;laparoscopy,07:30,17:00", "OR1,Main,robot,09:00,08:00"))
    out = tmp_path / "report.json"
    res = run_cli("validate", "--data", str(mini_hospital), "--json", str(out))
    assert res.returncode == 2
    assert "rooms.csv, row 1 (line 2), column 'close_time': close_time is not after open_time" in res.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".report.json.*"))  # no half-written temp file either

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    res = run_cli("ingest", "--data", str(mini_hospital), "--db", url, "--json", str(out))
    assert res.returncode == 2 and "rooms.csv" in res.stderr
    assert not out.exists()
    store = Store(url)
    try:
        assert not store.has_hospital("mini")  # nothing stored
    finally:
        store.close()


def test_missing_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--data", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_internal_failure_exits_1(mini_hospital: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("something broke")

    monkeypatch.setattr(engine.hospital, "load_hospital", broken)
    out = tmp_path / "r.json"
    assert main(["validate", "--data", str(mini_hospital), "--json", str(out)]) == 1
    assert "internal failure: something broke" in capsys.readouterr().err
    assert not out.exists()
