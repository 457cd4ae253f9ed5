"""Session state and the shared caches for the pages. All caching lives in dashboard/, not in pages.

This module holds what several pages share: the store and the hospital picked in the sidebar, the model
and its forecasts, the cached plans and the decisions and simulations built on them, the signed-in user
and masking. A page's own engine calls and caches are in its ``<page>_state.py`` (the What-if page's in
``whatif_state.py``, the Data page's in ``data_state.py``, ...). Every cached function takes the
hospital's ``Inputs`` whole (tests/dashboard/test_honest_caches.py).

The dashboard reads hospitals from the store. On start, the hospital folder named by
``HOSPITAL_DIR`` (the demo hospital under ``make run``) is validated and ingested when the
store lacks it or the folder changed since it was stored.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.keys import HOSPITAL_KEY  # noqa: F401  (re-exported: pages use state.HOSPITAL_KEY)
from engine.errors import InputError
from engine.hospital import LoadedHospital
from engine.ingest import folder_mtime, ingest_folder
from engine.store import Store, default_url


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


def hospital_of(inp: Inputs):
    """The Hospital these inputs name, from the store (cached per stored version)."""
    return _load(inp.url, inp.hospital_id, inp.loaded_at).hospital


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
    forecasts_of.clear()
    _masked_forecasts.clear()
    return mv


def upcoming_forecasts(hospital_id: str, version: str, loaded_at: str) -> pd.DataFrame:
    """P50/P80/P95, cancellation probability and reasons for every booked case (unmasked: for engine calls)."""
    return forecasts_of(inputs(hospital_id, version, loaded_at))


# The forecast "version" of a hospital with no registered model: booked minutes, the one model-free
# forecast (engine.forecast.fallback), as the command line and the service plan such a hospital.
BOOKED_MINUTES = "booked-minutes"


@dataclass(frozen=True)
class ModelFree:
    """What ``require_model`` gives when no model is registered: pages read only ``version``."""

    version: str = BOOKED_MINUTES


@st.cache_data(max_entries=8, show_spinner="Forecasting booked cases...")
def forecasts_of(inp: Inputs) -> pd.DataFrame:
    """The booked cases' forecasts (unmasked) for these inputs: what every cached engine call is given."""
    h = hospital_of(inp)
    booked = h.cases[h.cases["status"] == "booked"]
    cols = ["surgery_date", "service_line", "procedure_code", "procedure_name", "surgeon_id", "booked_minutes"]
    if inp.version == BOOKED_MINUTES:
        from engine.governance.fallback import booked_forecasts

        pred = booked_forecasts(h).set_index("case_id").reindex(booked["case_id"]).reset_index()
        pred.index = booked.index
        pred["cancel_source"] = "base_rate"
    else:
        mv = _load_model(inp.models_root, inp.hospital_id, inp.version)
        pred = mv.forecaster.predict(booked, h.cases, as_of=h.as_of(), reasons=True)
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
    cases = hospital_of(inp).cases
    cols = [c for c in ("case_id", "procedure_code", "procedure_name") if c in cases.columns]
    return mask_frame(cases[cols], role)


def loaded_at(hospital_id: str) -> str:
    listed = hospitals()
    return str(listed.loc[listed["hospital_id"] == hospital_id, "loaded_at"].iloc[0])


# --------------------------------------------------------------------------- planning


PLAN_PARAMS_ENV = "OR_PLAN_PARAMS"  # e.g. "sequence_time_limit_s=1,time_limit_s=20"


def plan_overrides() -> dict:
    """The deployment's changes to PlanParams' defaults for every plan the dashboard makes, read from
    ``OR_PLAN_PARAMS`` (comma-separated ``field=value``; a small server can give the solvers less time).
    ValueError names the variable and the field when a pair is not a PlanParams setting."""
    from dataclasses import fields

    from engine.plan import PlanParams

    text = os.environ.get(PLAN_PARAMS_ENV, "").strip()
    known = {f.name: f for f in fields(PlanParams)}
    out: dict = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = (s.strip() for s in pair.partition("="))
        if not sep or name not in known:
            raise ValueError(f"{PLAN_PARAMS_ENV}: '{pair}' is not field=value with a PlanParams field")
        default = known[name].default
        try:
            if value.lower() == "none" and "None" in str(known[name].type):
                out[name] = None
            elif isinstance(default, bool):
                out[name] = {"true": True, "1": True, "false": False, "0": False}[value.lower()]
            elif isinstance(default, int):
                out[name] = int(value)
            elif isinstance(default, str):
                out[name] = value
            else:
                out[name] = float(value)
        except (KeyError, ValueError):
            raise ValueError(f"{PLAN_PARAMS_ENV}: {name}={value!r} is not a value of that kind") from None
    return out


def default_plan_params(**changes):
    """The dashboard's plan settings: PlanParams' defaults with the deployment's ``OR_PLAN_PARAMS``
    (plan_overrides), then ``changes``. Every page plans from these (the Schedule page's defaults), so
    pages share its cached plans; PlanParams validates the result (ValueError names the field)."""
    from engine.plan import PlanParams

    return PlanParams(**{**plan_overrides(), **changes})


def default_plan_time_limit_s() -> float:
    return default_plan_params().time_limit_s


def cached_plan(hospital_id: str, version: str, loaded_at_: str, start: str, params):
    """A PlanResult for these inputs (PlanParams is frozen, so hashable)."""
    return plan_of(inputs(hospital_id, version, loaded_at_), start, params)


@st.cache_resource(max_entries=16, show_spinner="Planning...")
def plan_of(inp: Inputs, start: str, params):
    """The cached plan every page reads for these inputs, day and settings (engine.plan.plan)."""
    from engine.plan import plan

    return plan(hospital_of(inp), forecasts_of(inp), start, params)


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
    return replan_day(active_user(), hospital_of(inp), forecasts_of(inp), schedule, event, now, params,
                      hospital_id=hospital_id, ledger=store())


def add_on_event(hospital_id: str, loaded_at_: str, case_id: str, service_line: str, p50: float):
    """An emergency add-on's re-plan event, its P80 and P95 from this hospital's history (the spread
    of actual over booked minutes, engine.forecast.fallback.booked_forecasts), not a factor in the page."""
    from engine.forecast.fallback import booked_forecasts
    from engine.plan.replan import Event

    one = pd.DataFrame({"case_id": [case_id], "booked_minutes": [float(p50)]})
    f = booked_forecasts(one, hospital_of(inputs(hospital_id, None, loaded_at_)).cases).iloc[0]
    return Event("add_on", add_on={"case_id": case_id, "service_line": service_line, "p50": float(f["p50"]),
                                   "p80": float(f["p80"]), "p95": float(f["p95"])})


def addon_forecast(hospital_id: str, loaded_at_: str, days: int = 14) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per date x service line, per date in total) add-on forecasts for the next ``days``."""
    return _addon_forecast(inputs(hospital_id, None, loaded_at_), int(days))


@st.cache_data(max_entries=8, show_spinner="Forecasting add-ons...")
def _addon_forecast(inp: Inputs, days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from engine.forecast import forecast_addon_totals, forecast_addons

    h = hospital_of(inp)
    dates = pd.date_range(h.as_of().normalize(), periods=days)
    tz = h.settings.timezone  # room minutes in the hospital's zone, as the plans' add-on forecast (addon_forecast_for)
    return (forecast_addons(h.cases, dates, as_of=h.as_of(), timezone=tz),
            forecast_addon_totals(h.cases, dates, as_of=h.as_of(), timezone=tz))


# --------------------------------------------------------------------------- simulation


# Session keys of the decision pages (Schedule, Simulation).
from dashboard.keys import ALTERNATIVES_SHOWN_KEY, FRONTIER_SHOWN_KEY, REPLAN_RESULT_KEY  # noqa: E402,F401


def _rules_of(params):
    return params.with_(solver="rules")


def _optimizer_params(params):
    """``params`` with an optimizing solver: the default one when ``params`` plans by the rules."""
    return params if params.solver != "rules" else params.with_(solver=default_plan_params().solver)


def _policy_plans(inp: Inputs, start: str, days: int, policies: tuple[str, ...]) -> tuple[dict, dict]:
    """(schedules, plan JSON) per policy: the planned ones (engine.policies.PLANNED) are the pages'
    cached plans (the Schedule page's defaults for ``days``), so every page compares the very same
    schedules; ``as_booked`` is the coordinators' own booking (engine.policies.as_booked_schedule)."""
    from engine.policies import PLANNED, POLICIES, as_booked_schedule

    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        raise ValueError(f"policies must be among {', '.join(POLICIES)}, got {', '.join(unknown)}")
    schedules, meta = {}, {}
    for name in policies:
        if name in PLANNED:
            res = plan_of(inp, start, default_plan_params(days=days, solver=PLANNED[name]))
            schedules[name], meta[name] = res.schedule, res.to_json()
        else:
            schedules[name] = as_booked_schedule(hospital_of(inp), forecasts_of(inp), start, days)
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
    cmp = compare_policies(hospital_of(inp), schedules, forecasts_of(inp), scenario, reps, seed, params=sim_params)
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

    opt, rules = plan_of(inp, start, params), plan_of(inp, start, _rules_of(params))
    return decision_comparison(hospital_of(inp), opt.schedule, rules.schedule, forecasts_of(inp), scenario, reps, seed)


def frontier(hospital_id: str, version: str, loaded_at_: str, start: str, params=None, reps: int | None = None,
             seed: int | None = None) -> pd.DataFrame:
    """Cases scheduled against P95 overtime (engine.overview.frontier): the plan with ``params``
    (default: the Schedule page's defaults) and the rules plan are the pages' cached plans, so the
    frontier holds the very schedules the verdict compares; computed once per input."""
    from engine.sim.verdict import DEFAULT_REPS, DEFAULT_SEED

    return _frontier(inputs(hospital_id, version, loaded_at_), start, _optimizer_params(params or default_plan_params()),
                     DEFAULT_REPS if reps is None else int(reps), DEFAULT_SEED if seed is None else int(seed))


@st.cache_resource(max_entries=4, show_spinner="Planning at other trade-offs and simulating them on the same random days...")
def _frontier(inp: Inputs, start: str, params, reps: int, seed: int) -> pd.DataFrame:
    from engine.overview import CURRENT, RULES, frontier as _frontier_of

    plans = {CURRENT: plan_of(inp, start, params), RULES: plan_of(inp, start, _rules_of(params))}
    return _frontier_of(hospital_of(inp), forecasts_of(inp), start, params, reps=reps, seed=seed, plans=plans)


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


# --------------------------------------------------------------------------- forecasts page


def drift_params():
    """The drift thresholds the training run used (engine.forecast.drift.DriftParams' defaults)."""
    from engine.forecast.drift import DriftParams

    return DriftParams()


def calibration_points(scored: pd.DataFrame, by: str) -> pd.DataFrame:
    from engine.forecast.evaluate import calibration_points as _points

    return _points(scored, by=by)


# --------------------------------------------------------------------------- page preambles


def require_hospital() -> tuple[str, LoadedHospital]:
    """The chosen hospital, or a note and a stop when none is loaded."""
    cur = current_hospital()
    if cur is None:
        st.info("No hospital loaded: choose or import one on the Data page.")
        st.stop()
    return cur


def require_model(hospital_id: str, why: str):
    """The registered model, or, without one, :class:`ModelFree` (booked minutes) and a sentence saying
    so: a hospital too young to train a model still gets its rules and optimizer plans."""
    mv = current_model(hospital_id)
    if mv is None:
        st.info(f"{why} No forecasting model is registered for this hospital, so this page uses booked minutes "
                "(P80 and P95 from your history's spread of actual over booked minutes). Train one on the "
                "Forecasts page for the model's forecasts.")
        return ModelFree()
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
