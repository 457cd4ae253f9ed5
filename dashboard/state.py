"""Session state and caching for the pages. All caching lives here, not in pages.

The dashboard reads hospitals from the store. On start, the hospital folder named by
``HOSPITAL_DIR`` (the demo hospital under ``make run``) is validated and ingested when the
store lacks it or the folder changed since it was stored.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from engine.errors import InputError
from engine.hospital import LoadedHospital
from engine.ingest import folder_mtime, ingest_folder
from engine.store import Store, default_url

REPO = Path(__file__).resolve().parent.parent
MAPPINGS_DIR = REPO / "data" / "mappings"
from dashboard import keys
from dashboard.keys import HOSPITAL_KEY  # noqa: F401  (re-exported: pages use state.HOSPITAL_KEY)


@st.cache_resource(show_spinner=False)
def get_store(url: str) -> Store:
    return Store(url)


def store() -> Store:
    return get_store(default_url())


@dataclass(frozen=True)
class StartupResult:
    hospital_id: str | None
    error: str | None = None


@st.cache_resource(show_spinner="Validating and loading the hospital folder...")
def _ingest_default(url: str, folder: str, mtime: float) -> StartupResult:
    """Ingest HOSPITAL_DIR once per folder version (mtime is part of the cache key)."""
    s = get_store(url)
    hid = Path(folder).resolve().name
    listed = s.list_hospitals()
    row = listed[listed["hospital_id"] == hid]
    if len(row) and pd.Timestamp(row["loaded_at"].iloc[0]).timestamp() >= mtime:
        return StartupResult(hid)
    try:
        hid, _ = ingest_folder(folder, s, name=hid)
    except InputError as exc:
        return StartupResult(None, f"The hospital folder {folder} was rejected:\n\n{exc.describe()}")
    return StartupResult(hid)


def startup() -> StartupResult:
    """Make sure the default hospital (``HOSPITAL_DIR``) is in the store."""
    folder = os.environ.get("HOSPITAL_DIR")
    if not folder:
        return StartupResult(None)
    if not Path(folder).is_dir():
        return StartupResult(None, f"HOSPITAL_DIR={folder} is not a folder. Run `make run` to generate the demo hospital.")
    return _ingest_default(default_url(), str(Path(folder).resolve()), folder_mtime(folder))


def hospitals() -> pd.DataFrame:
    return store().list_hospitals()


@st.cache_resource(max_entries=4, show_spinner="Loading hospital from the store...")
def _load(url: str, hospital_id: str, loaded_at: str) -> LoadedHospital:
    return get_store(url).load_hospital(hospital_id)


def current_hospital() -> tuple[str, LoadedHospital] | None:
    """The hospital chosen in the sidebar, loaded from the store (cached per stored version)."""
    hid = st.session_state.get(HOSPITAL_KEY)
    listed = hospitals()
    if hid is None or hid not in set(listed["hospital_id"]):
        return None
    loaded_at = str(listed.loc[listed["hospital_id"] == hid, "loaded_at"].iloc[0])
    return hid, _load(default_url(), hid, loaded_at)


@dataclass(frozen=True)
class Inputs:
    """What an engine result on a hospital depends on besides its own settings: the store, the model
    registry, the stored hospital version and the model version. Cached engine calls take it whole,
    so their cache key names every input and none reads the session state."""

    url: str
    models_root: str
    hospital_id: str
    version: str | None
    loaded_at: str


def inputs(hospital_id: str, version: str | None, loaded_at_: str) -> Inputs:
    return Inputs(default_url(), str(registry().root), hospital_id, version, loaded_at_)


def _hospital(inp: Inputs):
    return _load(inp.url, inp.hospital_id, inp.loaded_at).hospital


def shipped_mappings() -> dict[str, Path]:
    return {p.stem: p for p in sorted(MAPPINGS_DIR.glob("*.yaml"))}


def hospital_id_for(hospital_name: str) -> str:
    """The store id an import under ``hospital_name`` gets (letters, digits, - and _)."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in hospital_name.strip()) or "imported"


def import_upload(
    source_name: str, source_bytes: bytes, mapping_name: str, mapping_bytes: bytes, hospital_name: str,
    replace: bool = False,
) -> tuple[str, object]:
    """Import an uploaded export with its mapping, validate, and store it, as the active user
    (engine.ingest.import_and_store: role ``import_data``; replacing needs ``replace``; the replaced
    version is kept).

    Raises PermissionError / ReplaceNotConfirmed before any work, InputError (nothing stored,
    nothing left behind; problems name the uploaded files, not temporary paths) when rejected.
    """
    from engine.ingest import import_and_store, relabel_problems

    name = hospital_id_for(hospital_name)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / Path(source_name).name
        src.write_bytes(source_bytes)
        mp = Path(tmp) / Path(mapping_name).name
        mp.write_bytes(mapping_bytes)
        out = Path(os.environ.get("IMPORT_DIR") or REPO / "var" / "hospitals") / name
        try:
            done = import_and_store(src, mp, out, store(), name, active_user(), replace=replace,
                                    source_label=Path(source_name).name)
        except InputError as exc:
            raise relabel_problems(exc, {str(Path(tmp).resolve()) + os.sep: "", tmp + os.sep: "",
                                         str(out.resolve()) + os.sep: f"{name}/"}) from exc
    return done.hospital_id, done.result


@st.cache_data(max_entries=8, show_spinner="Reading the export and suggesting a mapping...")
def suggested_mapping(source_name: str, source_bytes: bytes) -> str:
    """The commented mapping engine.onboard suggests for an uploaded export (InputError if unreadable)."""
    from engine.ingest import relabel_problems
    from engine.onboard import suggest_mapping

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / Path(source_name).name
        src.write_bytes(source_bytes)
        try:
            return suggest_mapping(src).text
        except InputError as exc:
            raise relabel_problems(exc, {str(Path(tmp).resolve()) + os.sep: "", tmp + os.sep: ""}) from exc


def hospital_versions(hospital_id: str) -> pd.DataFrame:
    """The stored versions of a hospital, newest first (engine.store.Store.list_versions)."""
    return store().list_versions(hospital_id)


def restore_hospital_version(hospital_id: str, version: int) -> int:
    """Restore an earlier version as the active user (role ``import_data``; audited)."""
    from engine.ingest import restore_version

    return restore_version(store(), hospital_id, version, active_user())


# --------------------------------------------------------------------------- forecasting


def registry():
    from engine.forecast import Registry

    return Registry(os.environ.get("MODELS_DIR") or None)


@st.cache_resource(max_entries=4, show_spinner="Loading the forecasting model...")
def _load_model(root: str, hospital_id: str, version: str):
    from engine.forecast import Registry

    return Registry(root).load(hospital_id, version)


def current_model(hospital_id: str):
    """The registered current model version (never trains), or None."""
    reg = registry()
    version = reg.current_version(hospital_id)
    if version is None:
        return None
    return _load_model(str(reg.root), hospital_id, version)


def train_model(hospital_id: str, loaded: LoadedHospital, progress) -> object:
    """Retrain on demand (the Forecasts page's button), then drop cached forecasts.

    Through engine.governance.retrain: PermissionError unless the signed-in role may ``retrain``;
    the new version is audited."""
    from engine.governance import retrain

    mv = retrain(active_user(), loaded.hospital, hospital_id, registry=registry(), progress=progress, ledger=store())
    _forecasts_of.clear()
    _masked_forecasts.clear()
    return mv


def upcoming_forecasts(hospital_id: str, version: str, loaded_at: str) -> pd.DataFrame:
    """P50/P80/P95, cancellation probability and reasons for every booked case (unmasked: for engine calls)."""
    return _forecasts_of(inputs(hospital_id, version, loaded_at))


@st.cache_data(max_entries=8, show_spinner="Forecasting booked cases...")
def _forecasts_of(inp: Inputs) -> pd.DataFrame:
    mv = _load_model(inp.models_root, inp.hospital_id, inp.version)
    h = _hospital(inp)
    booked = h.cases[h.cases["status"] == "booked"]
    pred = mv.forecaster.predict(booked, h.cases, as_of=h.as_of(), reasons=True)
    cols = ["surgery_date", "service_line", "procedure_code", "procedure_name", "surgeon_id", "booked_minutes"]
    return booked.reindex(columns=cols).join(pred).reset_index(drop=True)  # a real export may lack some


def forecasts(hospital_id: str, version: str, loaded_at_: str) -> pd.DataFrame:
    """The booked cases' forecasts as the signed-in role may see them: what every page shows.

    Pages read this, never ``upcoming_forecasts`` (the unmasked frame the engine calls use)."""
    return _masked_forecasts(hospital_id, version, loaded_at_, _role_key())


@st.cache_data(max_entries=16, show_spinner=False)
def _masked_forecasts(hospital_id: str, version: str, loaded_at_: str, role: str) -> pd.DataFrame:
    return mask_frame(upcoming_forecasts(hospital_id, version, loaded_at_), role)


def case_names(hospital_id: str, loaded_at_: str) -> pd.DataFrame:
    """``case_id, procedure_code, procedure_name`` of every case, masked for the signed-in role:
    the lookup day lists and their downloads take procedure names from."""
    return _case_names(inputs(hospital_id, None, loaded_at_), _role_key())


@st.cache_data(max_entries=16, show_spinner=False)
def _case_names(inp: Inputs, role: str) -> pd.DataFrame:
    cases = _hospital(inp).cases
    cols = [c for c in ("case_id", "procedure_code", "procedure_name") if c in cases.columns]
    return mask_frame(cases[cols], role)


def loaded_at(hospital_id: str) -> str:
    listed = hospitals()
    return str(listed.loc[listed["hospital_id"] == hospital_id, "loaded_at"].iloc[0])


# --------------------------------------------------------------------------- planning


def cached_plan(hospital_id: str, version: str, loaded_at_: str, start: str, params):
    """A PlanResult for these inputs (PlanParams is frozen, so hashable)."""
    return _plan(inputs(hospital_id, version, loaded_at_), start, params)


@st.cache_resource(max_entries=16, show_spinner="Planning...")
def _plan(inp: Inputs, start: str, params):
    from engine.plan import plan

    return plan(_hospital(inp), _forecasts_of(inp), start, params)


def cached_alternatives(hospital_id: str, version: str, loaded_at_: str, start: str, params) -> dict:
    """The ranked alternatives, each a cached plan: the one with the page's own weights (balanced)
    is the plan already on the page, so it is not solved twice."""
    from engine.plan.planner import alternative_params

    return {name: cached_plan(hospital_id, version, loaded_at_, start, p)
            for name, p in alternative_params(params).items()}


def replan(hospital_id: str, version: str, loaded_at_: str, schedule: pd.DataFrame, event, now, params):
    """Re-plan the rest of the day after ``event`` on the unmasked forecasts, through
    engine.governance.replan_day: PermissionError unless the signed-in role may ``replan``; audited."""
    from engine.governance import replan_day

    inp = inputs(hospital_id, version, loaded_at_)
    return replan_day(active_user(), _hospital(inp), _forecasts_of(inp), schedule, event, now, params,
                      hospital_id=hospital_id, ledger=store())


def add_on_event(hospital_id: str, loaded_at_: str, case_id: str, service_line: str, p50: float):
    """An emergency add-on's re-plan event, its P80 and P95 from this hospital's history (the spread
    of actual over booked minutes, engine.forecast.fallback.booked_forecasts), not a factor in the page."""
    from engine.forecast.fallback import booked_forecasts
    from engine.plan.replan import Event

    one = pd.DataFrame({"case_id": [case_id], "booked_minutes": [float(p50)]})
    f = booked_forecasts(one, _hospital(inputs(hospital_id, None, loaded_at_)).cases).iloc[0]
    return Event("add_on", add_on={"case_id": case_id, "service_line": service_line, "p50": float(f["p50"]),
                                   "p80": float(f["p80"]), "p95": float(f["p95"])})


def addon_forecast(hospital_id: str, loaded_at_: str, days: int = 14) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per date x service line, per date in total) add-on forecasts for the next ``days``."""
    return _addon_forecast(inputs(hospital_id, None, loaded_at_), int(days))


@st.cache_data(max_entries=8, show_spinner="Forecasting add-ons...")
def _addon_forecast(inp: Inputs, days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from engine.forecast import forecast_addon_totals, forecast_addons

    h = _hospital(inp)
    dates = pd.date_range(h.as_of().normalize(), periods=days)
    tz = h.settings.timezone  # room minutes in the hospital's zone, as the plans' add-on forecast (addon_forecast_for)
    return (forecast_addons(h.cases, dates, as_of=h.as_of(), timezone=tz),
            forecast_addon_totals(h.cases, dates, as_of=h.as_of(), timezone=tz))


def fairness_trends(hospital_id: str, loaded_at_: str, by: str, weeks: int) -> pd.DataFrame:
    """Fairness metrics over the history in ``weeks``-week periods (engine.fairness.trends)."""
    return _fairness_trends(inputs(hospital_id, None, loaded_at_), by, int(weeks))


@st.cache_data(max_entries=8, show_spinner="Computing fairness trends over history...")
def _fairness_trends(inp: Inputs, by: str, weeks: int) -> pd.DataFrame:
    from engine.fairness import trends

    return trends(_hospital(inp), weeks=weeks, by=by)


# --------------------------------------------------------------------------- simulation


# Session keys of the decision pages (Schedule, Simulation).
from dashboard.keys import ALTERNATIVES_SHOWN_KEY, FRONTIER_SHOWN_KEY, REPLAN_RESULT_KEY  # noqa: E402,F401


def _rules_of(params):
    return params.with_(solver="rules")


def _optimizer_params(params):
    """``params`` with an optimizing solver: the default one when ``params`` plans by the rules."""
    from engine.plan import PlanParams

    return params if params.solver != "rules" else params.with_(solver=PlanParams().solver)


def _policy_plans(inp: Inputs, start: str, days: int, policies: tuple[str, ...]) -> tuple[dict, dict]:
    """(schedules, plan JSON) per policy: the planned ones (engine.policies.PLANNED) are the pages'
    cached plans (the Schedule page's defaults for ``days``), so every page compares the very same
    schedules; ``as_booked`` is the coordinators' own booking (engine.policies.as_booked_schedule)."""
    from engine.plan import PlanParams
    from engine.policies import PLANNED, POLICIES, as_booked_schedule

    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        raise ValueError(f"policies must be among {', '.join(POLICIES)}, got {', '.join(unknown)}")
    schedules, meta = {}, {}
    for name in policies:
        if name in PLANNED:
            res = _plan(inp, start, PlanParams(days=days, solver=PLANNED[name]))
            schedules[name], meta[name] = res.schedule, res.to_json()
        else:
            schedules[name] = as_booked_schedule(_hospital(inp), _forecasts_of(inp), start, days)
    return schedules, meta


@dataclass
class PolicyRun:
    """The Simulation page's run: every policy on the same random days, the plans' JSON (fallbacks)
    and, when both are among the policies, the optimized schedule against the rules (the verdict)."""

    comparison: object  # engine.sim.PolicyComparison
    plans: dict
    decision: object | None  # engine.sim.DecisionComparison


def policy_run(hospital_id: str, version: str, loaded_at_: str, start: str, days: int, policies: tuple[str, ...],
               scenario, reps: int, seed: int, sim_params) -> PolicyRun:
    """Simulate the policies' schedules on common random numbers (engine.sim.compare_policies), cached
    by every input: the scenario with its knobs, replications, seed and simulation settings."""
    return _policy_run(inputs(hospital_id, version, loaded_at_), start, int(days), tuple(policies), scenario, int(reps),
                       int(seed), sim_params)


@st.cache_resource(max_entries=8, show_spinner="Simulating the policies on the same random days...")
def _policy_run(inp: Inputs, start: str, days: int, policies: tuple[str, ...], scenario, reps: int, seed: int,
                sim_params) -> PolicyRun:
    from engine.sim import compare_policies
    from engine.sim.verdict import OPTIMIZED, RULES, decision_from

    schedules, plans = _policy_plans(inp, start, days, policies)
    cmp = compare_policies(_hospital(inp), schedules, _forecasts_of(inp), scenario, reps, seed, params=sim_params)
    both = OPTIMIZED in schedules and RULES in schedules
    dec = decision_from(cmp, schedules[OPTIMIZED], schedules[RULES], scenario.name, reps, seed) if both else None
    return PolicyRun(cmp, plans, dec)


def decision(hospital_id: str, version: str, loaded_at_: str, start: str, params, scenario: str = "normal",
             reps: int | None = None, seed: int | None = None):
    """The plan with ``params`` against the rules plan of the same horizon on the same random days
    (engine.sim.decision_comparison: paired 95% intervals, the verdict), both the cached plans the
    Schedule page shows. With ``params.solver == "rules"`` the optimizer's default plan is compared."""
    from engine.sim.verdict import DEFAULT_REPS, DEFAULT_SEED

    return _decision(inputs(hospital_id, version, loaded_at_), start, _optimizer_params(params), scenario,
                     DEFAULT_REPS if reps is None else int(reps), DEFAULT_SEED if seed is None else int(seed))


@st.cache_resource(max_entries=16, show_spinner="Simulating the plan against your block rules on the same random days...")
def _decision(inp: Inputs, start: str, params, scenario: str, reps: int, seed: int):
    from engine.sim import decision_comparison

    opt, rules = _plan(inp, start, params), _plan(inp, start, _rules_of(params))
    return decision_comparison(_hospital(inp), opt.schedule, rules.schedule, _forecasts_of(inp), scenario, reps, seed)


# --------------------------------------------------------------------------- users and governance

from dashboard.keys import ACTIVE_USER_KEY, DEMO_ROLE_KEY, USER_KEY  # noqa: E402,F401
# Without a signed-in user, pages show what the least privileged role may see.
NOBODY_ROLE = "viewer"


def _mask_token() -> str:
    from engine.governance import load_roles

    return load_roles().mask


MASK = _mask_token()  # what a masked cell reads (data/roles.toml [masking] mask)


def active_user():
    """The User the pages act for (set by dashboard/app.py's sidebar), or None."""
    return st.session_state.get(ACTIVE_USER_KEY)


def _role_key() -> str:
    user = active_user()
    return user.role if user is not None else NOBODY_ROLE


def allowed(action: str) -> bool:
    """May the active user do ``action`` (data/roles.toml)? An action the roles file does not know,
    or no user, is not allowed."""
    return why_not(action) is None


def why_not(action: str) -> str | None:
    """None when the active user may do ``action``, else the reason in plain words (the engine's)."""
    from engine.governance import load_roles, require

    user = active_user()
    roles = load_roles()
    if user is None:
        return "Sign in (sidebar) first."
    if action not in roles.actions:
        return f"The roles file ({roles.source}) does not grant '{action}' to any role yet."
    try:
        require(user, action, roles)
    except PermissionError as exc:
        return str(exc)
    return None


def mask_frame(df: pd.DataFrame, role: str) -> pd.DataFrame:
    """The frame as ``role`` may see it: patient columns and free text masked (engine.governance
    masking), and for non-clinical roles each case's procedure name removed from its reasons too
    (they say "procedure <code>" instead). The one place the dashboard masks data."""
    from engine.governance import is_clinical, mask_reasons_for_role

    if is_clinical(role):
        return df.copy()
    out = df.copy()
    if "procedure_name" in out.columns:
        reason_cols = [c for c in out.columns if str(c).startswith("reason") and not pd.api.types.is_numeric_dtype(out[c])]
        names = out["procedure_name"]
        codes = out["procedure_code"] if "procedure_code" in out.columns else pd.Series("", index=out.index)
        for col in reason_cols:
            out[col] = [_strip_name(t, n, c) for t, n, c in zip(out[col], names, codes)]
    return mask_reasons_for_role(out, role)


def _strip_name(text, name, code):
    if not isinstance(text, str) or not isinstance(name, str) or not name:
        return text
    return text.replace(name, f"procedure {code}" if isinstance(code, str) and code else "this procedure")


def demo_sign_in() -> bool:
    """True when the demo sign-in (pick a role, no password) is offered: no users are configured
    (OR_USERS / OR_USERS_FILE / secrets) and ``OR_DEMO_SIGNIN`` is not 0."""
    from engine.governance.auth import demo_signin_active

    return demo_signin_active()


def users_configured() -> bool:
    from engine.governance.auth import users_source

    return users_source() is not None


DEMO_SIGNIN_WARNING = ("**Demo sign-in is on**: no users are configured, so anyone may sign in as any role: "
                       "separation of duties is void. Configure hashed users (OR_USERS_FILE) and set "
                       "OR_DEMO_SIGNIN=0 for real use (engine/governance/GOVERNANCE.md).")


def current_user():
    """The signed-in User, or None."""
    return st.session_state.get(USER_KEY)


@st.cache_resource(show_spinner=False)
def _governance(url: str):
    from engine.governance import Governance

    return Governance(get_store(url))


def governance():
    return _governance(default_url())


# --------------------------------------------------------------------------- what-if


# --------------------------------------------------------------------------- data page

from engine.ingest import IMPORT_ACTION, ReplaceNotConfirmed  # noqa: E402,F401  (re-exported for pages/data.py)


def problems_frame(problems) -> pd.DataFrame:
    from engine.ingest import problems_frame as _frame

    return _frame(problems)


def feed_freshness(h) -> pd.DataFrame:
    """Each feed's age against its threshold, measured at the hospital's clock (engine.feeds.feed_freshness)."""
    from engine.feeds import feed_freshness as _freshness

    return _freshness(h)


def weekly_case_counts(cases: pd.DataFrame) -> pd.DataFrame:
    """Cases per service line, week and status (engine.feeds.weekly_case_counts)."""
    from engine.feeds import weekly_case_counts as _counts

    return _counts(cases)


def duration_by_service_line(cases: pd.DataFrame, timezone: str | None) -> pd.DataFrame:
    """Room minutes of the completed cases per service line, elapsed in the hospital's ``timezone``
    (engine.feeds.duration_by_service_line)."""
    from engine.feeds import duration_by_service_line as _durations

    return _durations(cases, timezone)


# --------------------------------------------------------------------------- forecasts page


def drift_params():
    """The drift thresholds the training run used (engine.forecast.drift.DriftParams' defaults)."""
    from engine.forecast.drift import DriftParams

    return DriftParams()


def calibration_points(scored: pd.DataFrame, by: str) -> pd.DataFrame:
    from engine.forecast.evaluate import calibration_points as _points

    return _points(scored, by=by)


# --------------------------------------------------------------------------- what-if page helpers


WHATIF_TIME_LIMIT_S = 5.0  # a what-if re-plans within this (the Schedule page uses PlanParams' default)


def whatif_solvers() -> tuple[str, ...]:
    """The solvers the What-if page offers: the engine's, without GLPK (too slow for a slider)."""
    from engine.plan.params import SOLVERS

    return tuple(s for s in SOLVERS if s != "glpk")


def whatif_params(solver: str | None = None):
    """The PlanParams of a what-if re-plan with this solver (default: PlanParams' own)."""
    from engine.plan import PlanParams

    return PlanParams(solver=solver or PlanParams().solver, time_limit_s=WHATIF_TIME_LIMIT_S)


def default_plan_params(**changes):
    """PlanParams' defaults (the Schedule page's, so pages share its cached plans), with ``changes``."""
    from engine.plan import PlanParams

    return PlanParams(**changes)


def default_plan_time_limit_s() -> float:
    return default_plan_params().time_limit_s


def whatif_baseline():
    """The WhatIf that changes nothing (its fields are the sliders' defaults)."""
    from engine.whatif import WhatIf

    return WhatIf()


def whatif_setting(rooms, per_day: tuple, teams, beds, addons, inflation, cancel):
    """The WhatIf for the What-if page's sliders."""
    from engine.whatif import WhatIf

    return WhatIf("current", rooms, per_day, teams, beds, addons, inflation, cancel)


def moved_cases(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    from engine.whatif import moved_cases as _moved

    return _moved(before, after)


def compare_whatif_runs(runs: dict, baseline_name: str) -> pd.DataFrame:
    from engine.whatif import compare_runs

    return compare_runs(runs, baseline_name)


def cached_whatif(hospital_id: str, version: str, loaded_at_: str, start: str, whatif, params, reps: int, seed: int):
    """A WhatIfRun for these inputs, cached by all of them (the stored hospital version, the model
    version, the store and registry: ``Inputs``; WhatIf and PlanParams are frozen, hence hashable)."""
    return _whatif(inputs(hospital_id, version, loaded_at_), start, whatif, params, int(reps), int(seed))


@st.cache_resource(max_entries=64, show_spinner="Planning and simulating the day as it stands (the baseline)...")
def _whatif(inp: Inputs, start: str, whatif, params, reps: int, seed: int):
    from engine.whatif import run_whatif

    return run_whatif(_hospital(inp), _forecasts_of(inp), start, whatif, params, reps=reps, seed=seed)


def whatif_session(hospital_id: str, version: str, loaded_at_: str, start: str, baseline, reps: int, seed: int):
    """This user's WhatIfSession for one day (kept in the session state, one day at a time), seeded
    with the baseline's schedule as the optimizer's first warm start and as the answer to the
    what-if that changes nothing."""
    from engine.whatif import WhatIfSession

    key = (inputs(hospital_id, version, loaded_at_), start, baseline.plan.params, reps, seed)
    held = st.session_state.get(keys.WHATIF_SESSION_KEY)
    if held is None or held[0] != key:
        held = (key, WhatIfSession.after(baseline, reps, seed))
        st.session_state[keys.WHATIF_SESSION_KEY] = held
    return held[1]


def whatif_answers(hospital_id: str, version: str, loaded_at_: str, start: str, whatif, params, reps: int, seed: int, session):
    """First and refined WhatIfRuns for a slider setting (engine.whatif.whatif_answers) on the hospital
    and model these arguments name (never the one the session state happens to hold)."""
    from engine.whatif import whatif_answers as _answers

    inp = inputs(hospital_id, version, loaded_at_)
    return _answers(_hospital(inp), _forecasts_of(inp), start, whatif, params, session, reps=reps, seed=seed)


def history_kpis(hospital_id: str, loaded_at_: str, by: str | None = None) -> pd.DataFrame:
    return _history_kpis(inputs(hospital_id, None, loaded_at_), by)


@st.cache_data(max_entries=8, show_spinner="Computing KPIs from history...")
def _history_kpis(inp: Inputs, by: str | None) -> pd.DataFrame:
    from engine.overview import history_kpis as _kpis

    return _kpis(_hospital(inp), by=by)


def frontier(hospital_id: str, version: str, loaded_at_: str, start: str, params=None, reps: int | None = None,
             seed: int | None = None) -> pd.DataFrame:
    """Cases scheduled against P95 overtime (engine.overview.frontier): the plan with ``params``
    (default: the Schedule page's defaults) and the rules plan are the pages' cached plans, so the
    frontier holds the very schedules the verdict compares; computed once per input."""
    from engine.plan import PlanParams
    from engine.sim.verdict import DEFAULT_REPS, DEFAULT_SEED

    return _frontier(inputs(hospital_id, version, loaded_at_), start, _optimizer_params(params or PlanParams()),
                     DEFAULT_REPS if reps is None else int(reps), DEFAULT_SEED if seed is None else int(seed))


@st.cache_resource(max_entries=4, show_spinner="Planning at other trade-offs and simulating them on the same random days...")
def _frontier(inp: Inputs, start: str, params, reps: int, seed: int) -> pd.DataFrame:
    from engine.overview import CURRENT, RULES, frontier as _frontier_of

    plans = {CURRENT: _plan(inp, start, params), RULES: _plan(inp, start, _rules_of(params))}
    return _frontier_of(_hospital(inp), _forecasts_of(inp), start, params, reps=reps, seed=seed, plans=plans)


def week_risks(hospital_id: str, version: str, loaded_at_: str, start: str, days: int = 5) -> list:
    """The coming days' risks, read from the same cached plans the Schedule page shows for each day
    (its default settings), so both pages give one number for deferrals and P80 finishes."""
    return _week_risks(inputs(hospital_id, version, loaded_at_), start, days)


@st.cache_resource(max_entries=4, show_spinner="Looking for the coming week's risks...")
def _week_risks(inp: Inputs, start: str, days: int) -> list:
    from engine.overview import week_risks as _risks
    from engine.plan import PlanParams

    first = pd.Timestamp(start).normalize()
    plans = {d: _plan(inp, str(d.date()), PlanParams()) for d in pd.date_range(first, periods=days) if d.weekday() < 5}
    return _risks(_hospital(inp), _forecasts_of(inp), start, days=days, plans=plans)


def fairness_cost(hospital_id: str, version: str, loaded_at_: str, start: str, days: int, gap: float) -> pd.DataFrame:
    """Each day planned without and with a ``gap``-point fairness policy (engine.fairness.fairness_term_cost)."""
    return _fairness_cost(inputs(hospital_id, version, loaded_at_), start, int(days), float(gap))


@st.cache_resource(max_entries=4, show_spinner="Planning with and without the fairness term...")
def _fairness_cost(inp: Inputs, start: str, days: int, gap: float) -> pd.DataFrame:
    from engine.fairness import fairness_term_cost

    return fairness_term_cost(_hospital(inp), _forecasts_of(inp), start, days, gap)


def set_fairness_policy(hospital_id: str, h, policy: dict, note: str = "") -> None:
    """The governance action (role-checked and audited in the engine) on the hospital's folder; the
    folder's new mtime makes the next run re-ingest it, so every cached plan follows."""
    from engine.governance.actions import set_fairness_policy as change

    folder = Path(h.source)
    if not (folder / "settings.toml").is_file():
        raise ValueError(f"This hospital's settings are not in a folder this dashboard can change ({h.source or 'no folder'}).")
    change(active_user(), folder, hospital_id, policy, note=note, ledger=store())


# --------------------------------------------------------------------------- page preambles


def require_hospital() -> tuple[str, LoadedHospital]:
    """The chosen hospital, or a note and a stop when none is loaded."""
    cur = current_hospital()
    if cur is None:
        st.info("No hospital loaded: choose or import one on the Data page.")
        st.stop()
    return cur


def require_model(hospital_id: str, why: str):
    """The registered model, or a warning saying why the page needs one and a stop."""
    mv = current_model(hospital_id)
    if mv is None:
        st.warning(f"{why} Train one on the Forecasts page first.")
        st.stop()
    return mv


def has_booked_cases(h) -> bool:
    return bool((h.cases["status"] == "booked").any())


def require_booked_cases(h, what: str) -> None:
    """A sentence and a stop when the hospital has no booked (future) cases: ``what`` needs them."""
    if not has_booked_cases(h):
        st.info(f"This hospital has no booked cases, so there is nothing {what}. Import or ingest the coming "
                "days' bookings (Data page).")
        st.stop()


def first_booked_day(h) -> pd.Timestamp:
    """The first day to plan: the hospital's clock, or its first booked date if later."""
    booked = h.cases[h.cases["status"] == "booked"]
    today = h.as_of().normalize()
    return max(today, booked["surgery_date"].min()) if len(booked) else today
