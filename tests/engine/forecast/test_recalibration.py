"""As-of recalibration of the conformal offsets on cases completed after training."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.forecast.duration import RecentResiduals, _conformal_offsets
from tests.engine.forecast.conftest import FAST


def _completed_after_training(h, fc, days_in: int):
    """Completed cases on the first surgery day at least ``days_in`` days after train_until."""
    c = h.cases
    day = c.loc[c["surgery_date"] >= fc.train_until_ + pd.Timedelta(days=days_in), "surgery_date"].min()
    return c[(c["surgery_date"] == day) & (c["status"] == "completed")]


def _shifted(dm, delta: float, known_after: pd.Timedelta = pd.Timedelta(hours=12)) -> RecentResiduals:
    """The calibration window again, one window (and a day) later, its residuals moved by delta."""
    span = np.timedelta64(FAST.calibration_days + 1, "D")
    t = dm.calibration_times_ + span
    return RecentResiduals(dm.calibration_residuals_ + delta, dm.calibration_groups_.copy(), t,
                           t + known_after.to_timedelta64())


def test_no_leakage_outcomes_after_decision_time_do_not_change_quantiles(fitted):
    h, fc = fitted
    target = _completed_after_training(h, fc, 15)
    f = fc.features(target, h.cases)
    t = f["decision_time"].iloc[0]
    assert (f["decision_time"] == t).all()
    before = fc.predict(target, h.cases)
    # Offsets do move with the newer cases known before t (else this test would prove nothing).
    fixed = fc.duration_.predict(f)
    assert not np.allclose(before[["p50", "p80", "p95"]].to_numpy(), fixed.to_numpy())
    # Rewrite every outcome at or after the decision time: longer cases, flipped statuses.
    changed = h.cases.copy()
    after_t = changed["wheels_out"] >= t
    changed.loc[after_t, "wheels_out"] = changed.loc[after_t, "wheels_out"] + pd.Timedelta(minutes=300)
    flip = (changed["surgery_date"] >= t) & (changed["status"] == "completed")
    changed.loc[flip, "status"] = "cancelled"
    after = fc.predict(target, changed)
    pd.testing.assert_frame_equal(before, after)
    # Sanity: the change is big enough to move the offsets of cases decided a month later.
    late = _completed_after_training(h, fc, 45)
    a, b = fc.predict(late, h.cases), fc.predict(late, changed)
    assert not np.allclose(a["p80"].to_numpy(), b["p80"].to_numpy())


def test_outcome_known_exactly_at_the_decision_time_is_not_used(fitted):
    h, fc = fitted
    dm = fc.duration_
    t0 = dm.calibration_times_.max() + np.timedelta64(FAST.calibration_days + 2, "D")
    groups = np.array(["known"])
    # All shifted cases known strictly before t0: offsets move.
    early = _shifted(dm, 0.5, known_after=pd.Timedelta(hours=-1))
    moved = dm.offsets_as_of(np.array([t0]), groups, early)
    assert (moved[0] > dm.offsets_["known"]).all()
    # The same cases known exactly at t0: nothing is known yet, the fixed offsets stand.
    at_t = RecentResiduals(early.residuals, early.groups, early.decision_time, np.full(len(early.groups), t0))
    np.testing.assert_array_equal(dm.offsets_as_of(np.array([t0]), groups, at_t)[0], dm.offsets_["known"])


def test_without_newer_completed_cases_the_offsets_are_fit_s(fitted):
    h, fc = fitted
    target = _completed_after_training(h, fc, 15)
    old = h.cases[h.cases["surgery_date"] < fc.train_until_]
    assert fc.recent_residuals(old) is None
    f = fc.features(target, h.cases)
    got = fc.predict(target, old, features=f)
    want = fc.duration_.predict(f)
    np.testing.assert_array_equal(got[["p50", "p80", "p95"]].to_numpy(), want.to_numpy())
    # Newer cases all known at or after the decision times: the same fixed offsets.
    dm = fc.duration_
    later = _shifted(dm, 0.5)
    t = f["decision_time"].to_numpy(dtype="datetime64[ns]")
    later.known_time[:] = t.max()
    off = dm.offsets_as_of(t, f["novelty"].to_numpy(), later)
    want_off = np.vstack([dm.offsets_.get(g, dm.offsets_["new_procedure"]) for g in f["novelty"]])
    np.testing.assert_array_equal(off, want_off)
    # With the real newer cases known before t they differ.
    assert not np.array_equal(dm.offsets_as_of(t, f["novelty"].to_numpy(), fc.recent_residuals(h.cases)), want_off)


@pytest.mark.parametrize("delta", [0.3, -0.3])
def test_a_shift_in_recent_residuals_moves_the_offsets_the_same_way(fitted, delta):
    _, fc = fitted
    dm = fc.duration_
    recent = _shifted(dm, delta)
    known = dm.calibration_groups_ == "known"
    t_before = np.array([recent.known_time.min()])  # nothing known yet
    t_after = np.array([recent.known_time.max() + np.timedelta64(1, "D")])
    groups = np.array(["known"])
    np.testing.assert_array_equal(dm.offsets_as_of(t_before, groups, recent)[0], dm.offsets_["known"])
    moved = dm.offsets_as_of(t_after, groups, recent)[0]
    assert (np.sign(moved - dm.offsets_["known"]) == np.sign(delta)).all()
    if known.sum() >= dm._enough():
        # The window slid a whole window on: exactly the shifted residuals' offsets.
        np.testing.assert_allclose(moved, _conformal_offsets(dm.calibration_residuals_[known] + delta, FAST.quantiles))


def test_recalibrated_quantiles_never_cross(fitted):
    h, fc = fitted
    dm = fc.duration_
    # Recent residuals that pull P50 up and P95 down: the raw offsets would cross.
    recent = _shifted(dm, 0.0)
    recent.residuals[:, 0] += 1.0
    recent.residuals[:, -1] -= 1.0
    target = _completed_after_training(h, fc, 15)
    f = fc.features(target, h.cases)
    f["decision_time"] = pd.Timestamp(recent.known_time.max()) + pd.Timedelta(days=1)
    off = dm.offsets_as_of(f["decision_time"].to_numpy(dtype="datetime64[ns]"), f["novelty"].to_numpy(), recent)
    assert (np.diff(off, axis=1) < 0).any()  # would cross without the running maximum
    q = dm.predict(f, recent)
    assert (q["p50"] > 0).all()
    assert (q["p50"] <= q["p80"]).all() and (q["p80"] <= q["p95"]).all()


def test_recent_residuals_are_cached_per_history(fitted, monkeypatch):
    h, fc = fitted
    a = fc.recent_residuals(h.cases)
    calls = []
    build = type(fc).features
    monkeypatch.setattr(type(fc), "features", lambda self, *a, **k: calls.append(1) or build(self, *a, **k))
    assert fc.recent_residuals(h.cases) is a and not calls
    changed = h.cases.copy()
    changed.loc[changed.index[-1], "booked_minutes"] = 999
    assert fc.recent_residuals(changed) is not a and calls


def test_calibration_cases_that_slide_out_still_calibrate_small_groups(fitted):
    _, fc = fitted
    dm = fc.duration_
    assert dm.offset_source_["new_pair"] == "own" and dm.calibration_counts_["new_pair"] < dm._enough()
    # A whole new window of familiar cases only: the latest window holds no new pair any more, so
    # the new pairs are calibrated on the slid-out calibration cases plus the earlier windows,
    # exactly the residuals fit() gave them (the P50 offset is not clamped to the global one).
    recent = _shifted(dm, 0.3)
    recent.groups[:] = "known"
    t_after = np.array([recent.known_time.max() + np.timedelta64(1, "D")])
    moved = dm.offsets_as_of(t_after, np.array(["new_pair"]), recent)[0]
    assert moved[0] == dm.offsets_["new_pair"][0]
    assert (moved[1:] >= dm.offsets_["new_pair"][1:]).all()  # the global offsets moved up by 0.3
