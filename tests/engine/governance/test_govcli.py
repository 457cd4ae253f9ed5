"""`python -m engine gov ...` (issue 14, item 4): the same engine checks from the command line.

Done-when of the issue: through `gov`, a double-booking override and a "25:99" start can never be
published (exit 2 naming the rule or the field), and every published version passes the checker.
"""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from engine.cli import main
from engine.contract import SCHEDULE_COLUMNS
from engine.governance import Governance
from tests.feasibility import check_schedule

REPO = Path(__file__).resolve().parents[3]
TOKENS = "tok-carol:carol:coordinator,tok-lena:lena:leadership,tok-vic:vic:viewer"


@pytest.fixture
def cli(gov_folder, tmp_path, monkeypatch):
    """Run `python -m engine gov ...` in-process as a given token holder; returns (exit code, stderr, json)."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    hid = f"h-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("OR_API_TOKENS", TOKENS)
    monkeypatch.delenv("OR_API_TOKENS_FILE", raising=False)

    def run(token: str | None, *args: str, capsys=None) -> tuple[int, dict | None]:
        if token is None:
            monkeypatch.delenv("OR_TOKEN", raising=False)
        else:
            monkeypatch.setenv("OR_TOKEN", token)
        out = tmp_path / f"{uuid.uuid4().hex[:6]}.json"
        code = main(["gov", *args, "--data", str(gov_folder), "--name", hid, "--db", url, "--json", str(out)])
        return code, (json.loads(out.read_text()) if out.exists() else None)

    run.url, run.hid, run.folder = url, hid, gov_folder
    return run


def _double_booking(schedule: pd.DataFrame) -> tuple[str, str, str]:
    s = schedule[schedule["status"] == "scheduled"].sort_values(["room_id", "start"])
    host = s.iloc[0]
    mover = s[s["room_id"] != host["room_id"]].iloc[0]
    return mover["case_id"], host["room_id"], f"{pd.Timestamp(host['start']):%H:%M}"


def test_gov_refuses_double_booking_and_impossible_time_and_publishes_only_feasible(cli, hospital, day1, capsys, tmp_path) -> None:
    d = f"{day1:%Y-%m-%d}"
    code, out = cli("tok-carol", "propose", "--date", d, "--solver", "rules")
    assert code == 0, capsys.readouterr().err
    vid = out["version_id"]
    assert out["status"] == "proposed" and out["source"] == "rules"
    with Governance(cli.url) as gov:
        sched = gov.version(vid).schedule
    case, room, start = _double_booking(sched)

    # a double booking is refused naming the rule; nothing is saved
    code, out = cli("tok-carol", "override", "--version", str(vid), "--case", case, "--room", room, "--start", start,
                    "--code", "surgeon_request")
    err = capsys.readouterr().err
    assert code == 2 and out is None
    assert "rule H4" in err and "Override refused: it breaks hard rule(s)" in err and case in err
    # "25:99" is refused naming the field
    code, _ = cli("tok-carol", "override", "--version", str(vid), "--case", case, "--start", "25:99", "--code", "surgeon_request")
    err = capsys.readouterr().err
    assert code == 2 and "column 'start'" in err and "'25:99' is not a time of day" in err
    with Governance(cli.url) as gov:
        assert list(gov.history(cli.hid)["version_id"]) == [vid]

    # kept on purpose as an unpublishable version: approval is possible, publication never
    code, out = cli("tok-carol", "override", "--version", str(vid), "--case", case, "--room", room, "--start", start,
                    "--code", "surgeon_request", "--keep-infeasible")
    assert code == 0, capsys.readouterr().err
    bad = out["version_id"]
    assert any(x["rule"] == "H4" for x in out["hard_rule_violations"])
    assert cli("tok-lena", "approve", "--version", str(bad))[0] == 0
    code, out = cli("tok-carol", "gates", "--version", str(bad))
    assert code == 0 and out["decision"] == "withhold" and "hard_rules" in out["failed"]
    assert "H4" in next(g for g in out["gates"] if g["gate"] == "hard_rules")["rules_broken"]
    capsys.readouterr()
    code, out = cli("tok-carol", "publish", "--version", str(bad))
    err = capsys.readouterr().err
    assert code == 2 and "gate hard_rules" in err and "H4" in err
    assert out["withheld"] and out["failed"][0]["gate"] == "hard_rules"

    # the original (feasible) version: four eyes, gates, publish
    code, _ = cli("tok-carol", "approve", "--version", str(vid))
    assert code == 2 and "not allowed" in capsys.readouterr().err
    # it was overridden (kept infeasible) meanwhile: reject that version to free it
    assert cli("tok-lena", "reject", "--version", str(bad), "--note", "double booked")[0] == 0
    assert cli("tok-lena", "approve", "--version", str(vid))[0] == 0
    code, out = cli("tok-lena", "gates", "--version", str(vid))
    assert code == 0 and out["decision"] == "clear", out
    code, out = cli("tok-carol", "publish", "--version", str(vid), "--user", "carol")
    assert code == 0 and out["status"] == "published", capsys.readouterr().err

    # every published version passes the independent checker
    with Governance(cli.url) as gov:
        hist = gov.history(cli.hid)
        published = [gov.version(int(v)) for v in hist.loc[hist["status"] == "published", "version_id"]]
    assert [p.version_id for p in published] == [vid]
    for p in published:
        assert check_schedule(hospital, p.schedule, horizon_dates=p.horizon, locked=p.locks) == []

    # export writes the contract schedule.csv
    target = tmp_path / "schedule.csv"
    code, out = cli("tok-vic", "export", "--version", str(vid), "--out", str(target))
    assert code == 0 and out["n_rows"] == len(sched)
    exported = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert list(exported.columns)[: len(SCHEDULE_COLUMNS)] == list(SCHEDULE_COLUMNS)
    assert check_schedule(hospital, target, horizon_dates=[day1]) == []

    # a rules rollback goes through approval: proposed, the published version stays in force
    code, out = cli("tok-carol", "rollback", "--date", d, "--to", "rules", "--reason", "drill")
    assert code == 0 and out["status"] == "proposed" and out["rollback_of"] == vid
    code, out = cli("tok-vic", "status", "--date", d)
    assert code == 0 and out["in_force"] == {d: vid}
    # an emergency needs a note, and is published at once
    code, _ = cli("tok-carol", "rollback", "--date", d, "--to", "rules", "--emergency")
    assert code == 2 and "--note" in capsys.readouterr().err
    code, out = cli("tok-carol", "rollback", "--date", d, "--to", "rules", "--emergency", "--note", "solver host down")
    assert code == 0 and out["status"] == "published" and out["emergency"] is True


def test_gov_identity_and_roles(cli, day1, capsys) -> None:
    d = f"{day1:%Y-%m-%d}"
    code, _ = cli(None, "propose", "--date", d, "--solver", "rules")
    assert code == 2 and "Set OR_TOKEN" in capsys.readouterr().err
    code, _ = cli("tok-nobody", "propose", "--date", d, "--solver", "rules")
    assert code == 2 and "not a known API token" in capsys.readouterr().err
    code, _ = cli("tok-vic", "propose", "--date", d, "--solver", "rules")
    assert code == 2 and "not allowed: vic (viewer) may not propose" in capsys.readouterr().err
    code, _ = cli("tok-carol", "propose", "--date", d, "--solver", "rules", "--user", "lena")
    assert code == 2 and "--user lena does not match" in capsys.readouterr().err
    code, _ = cli("tok-carol", "approve", "--version", "999")
    assert code == 2 and "no schedule version 999" in capsys.readouterr().err
    code, _ = cli("tok-carol", "propose", "--date", "2027-13-01", "--solver", "rules")
    assert code == 2 and "--date" in capsys.readouterr().err


def test_gov_help_and_exit_code_in_a_real_process() -> None:
    res = subprocess.run([sys.executable, "-m", "engine", "gov", "publish", "--version", "1"], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "OR_API_TOKENS": TOKENS})
    assert res.returncode == 2 and "Set OR_TOKEN" in res.stderr
    res = subprocess.run([sys.executable, "-m", "engine", "gov", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and all(a in res.stdout for a in ("propose", "override", "gates", "rollback", "export"))
