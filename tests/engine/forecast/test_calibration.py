"""Conformal calibration of the duration model: earlier windows for small groups, no look-ahead."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from engine.forecast import ForecastParams, build_features
from engine.forecast.duration import GROUPS, DurationModel
from tests.engine.forecast.conftest import FAST


@pytest.fixture(scope="module")
def training_set(small_hospital):
    """What Forecaster.fit hands the duration model: as-of features of completed cases, minutes
    and the calibration mask (the last ``calibration_days`` before ``train_until``)."""
    _, h = small_hospital
    train_until = h.as_of() - pd.Timedelta(days=FAST.calibration_days)
    hist = h.cases[h.cases["surgery_date"] < train_until]
    done = hist[hist["status"] == "completed"]
    feats = build_features(done, hist, FAST)
    minutes = ((done["wheels_out"] - done["wheels_in"]).dt.total_seconds() / 60).to_numpy()
    calibration = (done["surgery_date"] >= train_until - pd.Timedelta(days=FAST.calibration_days)).to_numpy()
    assert feats.index.is_unique
    return feats, minutes, calibration


def _spy(monkeypatch):
    """Record the rows every booster is trained on and the rows every booster scores."""
    fits, scores = [], []
    fit, raw = DurationModel._fit_booster, DurationModel._raw_log

    def spy_fit(self, X, logy):
        fits.append(X.index)
        return fit(self, X, logy)

    def spy_raw(self, X, booster=None):
        scores.append(X.index)
        return raw(self, X, booster)

    monkeypatch.setattr(DurationModel, "_fit_booster", spy_fit)
    monkeypatch.setattr(DurationModel, "_raw_log", spy_raw)
    return fits, scores


def test_each_calibration_window_is_scored_by_a_model_trained_only_before_it(training_set, monkeypatch):
    feats, minutes, calibration = training_set
    fits, scores = _spy(monkeypatch)
    model = DurationModel(replace(FAST, calibration_windows=3)).fit(feats, minutes, calibration)
    t = feats["decision_time"]
    assert len(fits) == len(scores) == len(model.calibration_windows_) == 3
    # Window 1 is exactly the held-out calibration rows, scored by the deployed model.
    assert set(scores[0]) == set(feats.index[calibration])
    assert set(fits[0]) == set(feats.index[~calibration])
    span = pd.Timedelta(days=FAST.calibration_days)
    start = t[calibration].min()
    for k, (trained, scored) in enumerate(zip(fits, scores), start=1):
        # No model ever learns from an outcome at or after the start of the window it scores.
        assert t[trained].max() < t[scored].min()
        if k > 1:
            lo, hi = start - (k - 1) * span, start - (k - 2) * span
            expected = feats.index[(t >= lo) & (t < hi)]
            assert set(scored) == set(expected)
            assert set(trained) == set(feats.index[t < lo])
            # Earlier windows end where the next (later) one starts: no overlap, no gap.
            assert t[scored].max() < t[scores[k - 2]].min()


def test_small_groups_add_earlier_windows_and_large_groups_keep_the_latest(training_set):
    feats, minutes, calibration = training_set
    # min_group_calibration_cases=10 -> a group needs 10 / (1 - 0.95) = 200 latest-window cases.
    params = replace(FAST, min_group_calibration_cases=10)
    one = DurationModel(replace(params, calibration_windows=1)).fit(feats, minutes, calibration)
    two = DurationModel(replace(params, calibration_windows=2)).fit(feats, minutes, calibration)
    latest = feats["novelty"].to_numpy()[calibration]
    n_known = int((latest == "known").sum())
    assert n_known >= 200 and 0 < (latest == "new_pair").sum() < 200
    # The familiar group is plain split conformal on the latest window, unchanged.
    assert one.calibration_counts_["known"] == two.calibration_counts_["known"] == n_known
    np.testing.assert_array_equal(one.offsets_["known"], two.offsets_["known"])
    np.testing.assert_array_equal(one.global_offsets_, two.global_offsets_)
    # The small group gets the earlier window's residuals on top of its own.
    assert two.calibration_counts_["new_pair"] > one.calibration_counts_["new_pair"]
    assert not np.array_equal(one.offsets_["new_pair"], two.offsets_["new_pair"])
    # The deployed model is the same: only calibration changed.
    np.testing.assert_allclose(one._raw_log(feats[one.feature_names_]), two._raw_log(feats[two.feature_names_]))
    # Unfamiliar groups are still never narrower than the global offsets above the median.
    for g in GROUPS[1:]:
        assert (two.offsets_[g][1:] >= two.global_offsets_[1:]).all()
        assert two.offset_source_[g] in ("own", "pooled", "global")


def test_windows_without_enough_earlier_history_are_skipped(training_set):
    feats, minutes, calibration = training_set
    model = DurationModel(replace(FAST, calibration_windows=20)).fit(feats, minutes, calibration)
    windows = model.calibration_windows_
    # The history is a year: far fewer than 20 windows have min_train_cases cases before them.
    assert 1 < len(windows) < 20
    assert all(w["n_train"] >= FAST.min_train_cases for w in windows)
    starts = [w["start"] for w in windows]
    assert starts == sorted(starts, reverse=True)


def test_calibration_windows_is_validated():
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="calibration_windows"):
            ForecastParams(calibration_windows=bad)
    assert ForecastParams(calibration_windows=1).calibration_windows == 1
