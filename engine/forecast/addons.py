"""Add-on (urgent/emergent) volume per date x service line, with intervals.

Counts are modelled as negative binomial per weekday x service line: the mean is the recent
rate (last ``window_weeks``) shrunk towards the long-run weekday rate, the dispersion comes
from the observed variance (Poisson when the data show none). Minutes are counts times the
service line's add-on room time, with the interval taken by simulation. The optimizer can hold
``reserve_minutes`` (the P80 of add-on minutes) per date and service line.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from engine.feeds import room_minutes


@dataclass(frozen=True)
class AddonParams:
    window_weeks: int = 26
    shrink_weeks: float = 8.0
    interval: tuple[float, float] = (0.1, 0.9)
    reserve_quantile: float = 0.8
    n_draws: int = 2000
    random_state: int = 0

    def __post_init__(self) -> None:
        if self.window_weeks <= 0:
            raise ValueError(f"window_weeks must be > 0, got {self.window_weeks!r}")
        lo, hi = self.interval
        if not 0 < lo < hi < 1:
            raise ValueError(f"interval must be two levels within 0..1 in order, got {self.interval!r}")
        if not 0 < self.reserve_quantile < 1:
            raise ValueError(f"reserve_quantile must be within 0..1, got {self.reserve_quantile!r}")


def addon_history(cases: pd.DataFrame, timezone: str | None = None) -> pd.DataFrame:
    """Add-on cases that happened: urgent/emergent, completed; ``duration`` is their room time, the
    real elapsed minutes in ``timezone`` (the hospital's ``settings.timezone``; None = wall clock)."""
    m = cases["urgency"].isin(["urgent", "emergent"]) & (cases["status"] == "completed")
    return cases[m].assign(duration=room_minutes(cases[m], timezone))


def _addon_model(cases: pd.DataFrame, as_of: pd.Timestamp, params: AddonParams, timezone: str | None
                 ) -> tuple[list[str], dict]:
    """(service lines, {(weekday, line): (mean count, variance, draws of total minutes)})."""
    hist = addon_history(cases[cases["surgery_date"] < as_of], timezone)
    if len(hist) == 0:
        return [], {}
    lines = sorted(cases["service_line"].dropna().unique())
    first = cases["surgery_date"].min()
    all_days = pd.date_range(first, as_of - pd.Timedelta(days=1), freq="D")
    counts = (
        hist.groupby([hist["surgery_date"], "service_line"]).size().unstack(fill_value=0)
        .reindex(index=all_days, columns=lines, fill_value=0)
    )
    recent_start = as_of - pd.Timedelta(weeks=params.window_weeks)
    dur = hist.groupby("service_line")["duration"]
    rng = np.random.default_rng(params.random_state)
    table = {}
    for wd in range(7):
        day_counts = counts[counts.index.day_of_week == wd]
        recent = day_counts[day_counts.index >= recent_start]
        for sl in lines:
            all_c = day_counts[sl].to_numpy(dtype=float)
            rec_c = recent[sl].to_numpy(dtype=float)
            long_mean = all_c.mean() if len(all_c) else 0.0
            k = params.shrink_weeks
            mean = (rec_c.sum() + k * long_mean) / (len(rec_c) + k) if (len(rec_c) + k) else 0.0
            var = all_c.var(ddof=1) if len(all_c) > 1 else mean
            durs = dur.get_group(sl).to_numpy() if sl in dur.groups else hist["duration"].to_numpy()
            table[(wd, sl)] = (mean, var, _simulate(rng, mean, var, durs, params.n_draws))
    return lines, table


def _dates_and_as_of(dates, as_of) -> tuple[pd.DatetimeIndex, pd.Timestamp]:
    dates = pd.DatetimeIndex(pd.to_datetime(list(dates))).normalize()
    as_of = pd.Timestamp(as_of) if as_of is not None else (dates.min() if len(dates) else pd.Timestamp.now())
    return dates, as_of


def forecast_addons(
    cases: pd.DataFrame, dates: list[pd.Timestamp] | pd.DatetimeIndex, params: AddonParams | None = None,
    as_of: pd.Timestamp | None = None, timezone: str | None = None,
) -> pd.DataFrame:
    """Expected add-on cases and minutes per (date, service line) with intervals.

    Uses only add-ons on dates before ``as_of`` (default: the first forecast date); their room
    minutes are the real elapsed time in ``timezone`` (the hospital's ``settings.timezone``).
    Columns: date, service_line, expected_cases, cases_lo, cases_hi, expected_minutes,
    minutes_lo, minutes_hi, reserve_minutes.
    """
    params = params or AddonParams()
    dates, as_of = _dates_and_as_of(dates, as_of)
    cols = ["date", "service_line", "expected_cases", "cases_lo", "cases_hi", "expected_minutes",
            "minutes_lo", "minutes_hi", "reserve_minutes"]
    lines, table = _addon_model(cases, as_of, params, timezone)
    if not table or len(dates) == 0:
        return pd.DataFrame(columns=cols)
    lo, hi = params.interval
    out = []
    for d in dates:
        for sl in lines:
            mean, var, sims = table[(d.weekday(), sl)]
            dist = _count_dist(mean, var)
            out.append({
                "date": d,
                "service_line": sl,
                "expected_cases": mean,
                "cases_lo": float(dist.ppf(lo)) if mean > 0 else 0.0,
                "cases_hi": float(dist.ppf(hi)) if mean > 0 else 0.0,
                "expected_minutes": float(sims.mean()),
                "minutes_lo": float(np.quantile(sims, lo)),
                "minutes_hi": float(np.quantile(sims, hi)),
                "reserve_minutes": float(np.quantile(sims, params.reserve_quantile)),
            })
    return pd.DataFrame(out, columns=cols)


def forecast_addon_totals(
    cases: pd.DataFrame, dates: list[pd.Timestamp] | pd.DatetimeIndex, params: AddonParams | None = None,
    as_of: pd.Timestamp | None = None, timezone: str | None = None,
) -> pd.DataFrame:
    """Per date, all service lines together: expected cases and minutes, interval, reserve.

    The total's quantiles come from summing the service lines' draws (a sum of per-line
    quantiles would understate the reserve); ``timezone`` as in :func:`forecast_addons`. Columns: date, expected_cases, expected_minutes,
    minutes_lo, minutes_hi, reserve_minutes.
    """
    params = params or AddonParams()
    dates, as_of = _dates_and_as_of(dates, as_of)
    cols = ["date", "expected_cases", "expected_minutes", "minutes_lo", "minutes_hi", "reserve_minutes"]
    lines, table = _addon_model(cases, as_of, params, timezone)
    if not table or len(dates) == 0:
        return pd.DataFrame(columns=cols)
    lo, hi = params.interval
    out = []
    for d in dates:
        total = sum(table[(d.weekday(), sl)][2] for sl in lines)
        out.append({"date": d, "expected_cases": sum(table[(d.weekday(), sl)][0] for sl in lines),
                    "expected_minutes": float(total.mean()), "minutes_lo": float(np.quantile(total, lo)),
                    "minutes_hi": float(np.quantile(total, hi)),
                    "reserve_minutes": float(np.quantile(total, params.reserve_quantile))})
    return pd.DataFrame(out, columns=cols)


def _count_dist(mean: float, var: float):
    """Negative binomial with this mean and variance (Poisson when not over-dispersed)."""
    if mean <= 0:
        return stats.poisson(1e-9)
    if var <= mean * 1.0001:
        return stats.poisson(mean)
    p = mean / var
    n = mean * p / (1 - p)
    return stats.nbinom(n, p)


def _simulate(rng: np.random.Generator, mean: float, var: float, durations: np.ndarray, n: int) -> np.ndarray:
    """Draws of total add-on minutes: count from the count model, durations bootstrapped."""
    if mean <= 0 or len(durations) == 0:
        return np.zeros(n)
    counts = _count_dist(mean, var).rvs(size=n, random_state=rng)
    total = np.zeros(n)
    maxc = int(counts.max())
    if maxc == 0:
        return total
    draws = rng.choice(durations, size=(n, maxc))
    mask = np.arange(maxc)[None, :] < counts[:, None]
    return (draws * mask).sum(axis=1)


def addon_forecast_for(hospital, dates) -> pd.DataFrame:
    """The add-on forecast (:func:`forecast_addons`) of ``dates`` for ``hospital``, as every caller
    makes it once and passes down (plan, simulate, what-if): as of the first date or the
    hospital's clock, whichever is earlier, so no add-on on or after either is seen; room minutes
    in the hospital's time zone."""
    days = sorted({pd.Timestamp(d).normalize() for d in dates})
    as_of = min(days[0], hospital.as_of()) if days else hospital.as_of()
    return forecast_addons(hospital.cases, days, as_of=as_of, timezone=hospital.settings.timezone)
