"""Issue 16 (2): the hospital's service levels ([service_levels] in settings.toml) drive the
allocator's room-day risk term; bad values are refused with exit 2 naming the key."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.cli import main
from engine.hospital import load_hospital
from engine.plan import PlanParams, build_instance, build_model
from engine.plan.terms import service_level_weight
from tests.minihospital import SETTINGS, write_mini_hospital

DAY = pd.Timestamp("2027-01-04")


@pytest.mark.parametrize("line, key", [("finish_probability = 1.5", "service_levels.finish_probability"),
                                       ("finish_by_close_plus_minutes = -10", "service_levels.finish_by_close_plus_minutes"),
                                       ("pacu_hold_budget_minutes = \"lots\"", "service_levels.pacu_hold_budget_minutes")])
def test_bad_service_levels_exit_2_naming_the_key(tmp_path, capsys, line, key) -> None:
    folder = write_mini_hospital(tmp_path / "mini", settings_toml=SETTINGS + f"\n[service_levels]\n{line}\n")
    code = main(["plan", "--data", str(folder), "--date", "2027-01-04", "--out", str(tmp_path / "s.csv")])
    assert code == 2
    assert key in capsys.readouterr().err


def _fc(h) -> pd.DataFrame:
    b = h.cases[h.cases["status"] == "booked"]
    return pd.DataFrame({"case_id": b["case_id"].to_numpy(), "p50": 200.0, "p80": 260.0, "p95": 320.0, "cancel_prob": 0.0})


def test_a_stricter_service_level_weighs_on_full_rooms(tmp_path) -> None:
    """The settings reach the model: a higher finish probability or a tighter margin raises the
    risk a full room carries; the weight follows from the deferral cost (documented rule)."""
    loose = write_mini_hospital(tmp_path / "loose", settings_toml=SETTINGS + "\n[service_levels]\nfinish_by_close_plus_minutes = 60\nfinish_probability = 0.6\n")
    strict = write_mini_hospital(tmp_path / "strict", settings_toml=SETTINGS + "\n[service_levels]\nfinish_by_close_plus_minutes = 0\nfinish_probability = 0.95\n")
    risks = []
    for folder in (loose, strict):
        h = load_hospital(folder).hospital
        inst = build_instance(h, _fc(h), DAY, PlanParams(hold_addon_rooms=False))
        assert inst.finish_probability == h.settings.service_levels.finish_probability
        m = build_model(inst, PlanParams())
        # Put every case of OR2's block there (two 200-minute cases) and read the risk it carries.
        from engine.plan.extract import set_start
        a = inst.eligible.drop_duplicates("case_id")[["case_id", "slot_id"]]
        set_start(m, a)
        risks.append(sum(m.risk[s].value for s in m.SL))
        p = h.settings.service_levels.finish_probability
        assert service_level_weight(inst, PlanParams()) == pytest.approx(1000.0 / 200.0 / (1 - p))
    assert risks[1] > risks[0]
