from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.forecast import ForecastParams, build_features
from engine.forecast.features import decision_times, model_columns


def test_params_validation_names_the_field():
    for kwargs, field in [({"quantiles": (0.8, 0.5)}, "quantiles"), ({"quantiles": (0.8, 0.95)}, "0.5"),
                          ({"iterations": 0}, "iterations"), ({"planning_lead_days": -1}, "planning_lead_days")]:
        with pytest.raises(ValueError, match=field):
            ForecastParams(**kwargs)


def test_no_leakage_outcomes_after_decision_time_do_not_change_features(small_hospital):
    _, h = small_hospital
    cases = h.cases
    day = h.as_of() - pd.Timedelta(days=90)
    day = cases.loc[cases["surgery_date"] >= day, "surgery_date"].min()
    target = cases[(cases["surgery_date"] == day) & (cases["status"] == "completed")]
    before = build_features(target, cases)
    t = decision_times(target, ForecastParams()).iloc[0]
    assert (before["decision_time"] == t).all()
    # Rewrite every outcome that lies after the decision time: longer cases, flipped statuses.
    changed = cases.copy()
    after_t = changed["wheels_out"] >= t
    changed.loc[after_t, "wheels_out"] = changed.loc[after_t, "wheels_out"] + pd.Timedelta(minutes=300)
    flip = (changed["surgery_date"] >= t) & (changed["status"] == "completed")
    changed.loc[flip, "status"] = "cancelled"
    after = build_features(target, changed)
    pd.testing.assert_frame_equal(before, after)
    # Sanity: the change is big enough to move features of cases decided later.
    late = cases[(cases["status"] == "completed") & (cases["surgery_date"] >= day + pd.Timedelta(days=30))]
    assert not np.allclose(build_features(late, cases)["sp_median"], build_features(late, changed)["sp_median"])


def test_history_counts_only_cases_finished_before_decision_time(small_hospital):
    _, h = small_hospital
    cases = h.cases
    one = cases[cases["status"] == "completed"].iloc[[-1]]
    f = build_features(one, cases).iloc[0]
    t = f["decision_time"]
    done = cases[(cases["status"] == "completed") & (cases["wheels_out"] < t)]
    same = done[(done["surgeon_id"] == one["surgeon_id"].iloc[0]) & (done["procedure_code"] == one["procedure_code"].iloc[0])]
    assert f["sp_count"] == len(same)
    assert f["proc_count"] == (done["procedure_code"] == one["procedure_code"].iloc[0]).sum()


def test_unknown_procedure_and_surgeon_fall_back(small_hospital):
    _, h = small_hospital
    booked = h.cases[h.cases["status"] == "booked"].head(2).copy()
    booked.iloc[0, booked.columns.get_loc("procedure_code")] = "99999"
    booked.iloc[1, booked.columns.get_loc("surgeon_id")] = "unknown"
    f = build_features(booked, h.cases, as_of=h.as_of())
    assert f["novelty"].tolist() == ["new_procedure", "new_surgeon"]
    # A new procedure falls back on its service line's median.
    assert f["sp_median"].iloc[0] == pytest.approx(f["sl_median"].iloc[0])


def test_shrinkage_pulls_small_pairs_towards_procedure(small_hospital):
    _, h = small_hospital
    done = h.cases[h.cases["status"] == "completed"]
    f = build_features(done, h.cases)
    few = f[(f["sp_count"] > 0) & (f["sp_count"] < 3) & (f["proc_count"] > 20)]
    assert len(few) > 0
    # The shrunk median lies between the pair's history and the procedure median: it is
    # closer to the procedure median than a raw 1-2 case median typically is.
    raw_gap = np.abs(np.log(few["baseline_history"]) - np.log(few["proc_median"]))
    shrunk_gap = np.abs(np.log(few["sp_median"]) - np.log(few["proc_median"]))
    assert (shrunk_gap <= raw_gap + 1e-9).all()


def test_guardrail_forbidden_features_never_used(small_hospital):
    _, h = small_hospital
    params = ForecastParams(forbidden_features=("patient_sex", "asa_class"))
    cols = model_columns(params)
    assert "asa_class" not in cols and "patient_sex" not in cols
    assert "patient_sex" not in model_columns()
    # The builder itself drops forbidden attributes, even when the case table carries them.
    f = build_features(h.cases.tail(30), h.cases, params)
    assert "asa_class" not in f.columns and "patient_sex" not in f.columns
    assert "patient_sex" in h.cases.columns


def test_missing_optional_columns_do_not_crash(small_hospital):
    _, h = small_hospital
    slim = h.cases.drop(columns=["booked_minutes", "bmi", "anesthesia_type", "scheduled_start", "booked_at"])
    f = build_features(slim.tail(50), slim)
    assert f["booked_minutes"].isna().all() and f["lead_days"].isna().all()
    assert (f["anesthesia_type"] == "__missing__").all()


def test_guardrail_policy_file_is_enforced_by_the_feature_builder(small_hospital, tmp_path, monkeypatch):
    _, h = small_hospital
    policy = tmp_path / "guardrails.toml"
    policy.write_text('forbidden_attributes = ["patient_sex", "bmi", "site"]\nuses = "x"\nrefuses = "y"\n')
    monkeypatch.setenv("GUARDRAILS_FILE", str(policy))
    f = build_features(h.cases.tail(30), h.cases)
    assert "bmi" not in f.columns and "site" not in f.columns
    assert "bmi" not in model_columns() and "site" not in model_columns()
    # A model trained under this policy never sees the forbidden columns.
    from engine.forecast import Forecaster
    from tests.engine.forecast.conftest import FAST

    fc = Forecaster(FAST).fit(h.cases, train_until=h.as_of() - pd.Timedelta(days=60))
    assert not {"bmi", "site", "patient_sex"} & set(fc.duration_.feature_names_)
    assert not {"bmi", "site", "patient_sex"} & set(fc.cancellation_.feature_names_)


def test_shipped_policy_forbids_protected_attributes():
    from engine.fairness.guardrails import load_guardrails

    g = load_guardrails()
    assert {"patient_sex", "ethnicity", "insurance", "postcode"} <= g.forbidden
    assert g.uses and g.refuses
