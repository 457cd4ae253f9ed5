"""Planning a network: one independent Dask task per site (its week), then the union checked.

``plan_network(network, start, params)`` resolves who owns each cross-site surgeon-day
(:func:`engine.network.sites.owners`) *before* any task starts, then submits one task per site to a
``LocalCluster`` (default), a real cluster (``scheduler_address``), or runs them one after another
in this process (``scheduler_address="inprocess"``, for measurements). A task reads and validates its
own site folder, forecasts the site's booked cases with the registered model (pooled or the
site's own, :mod:`engine.network.forecast`), plans with :func:`engine.plan.plan` (cases stay on
their booked dates: ``allow_date_change=False``), adds the surgeon-days it left to their owner as
deferred rows, and checks its schedule with the independent checker against its own folder. A
task never raises: a failing site comes back with ``ok=False`` and its error, and the others are
unaffected. The union of the site schedules is then checked again for what only the union can
break (a cross-site surgeon in two rooms at once, a case planned twice).
"""
from __future__ import annotations

import logging
import sys
import time
import traceback
import types
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from engine.contract import SCHEDULE_COLUMNS
from engine.errors import InputError
from engine.network.sites import Network, Site, owners, released
from engine.plan import PlanParams

log = logging.getLogger(__name__)

INPROCESS = "inprocess"
# The union check re-runs only the rules a site's own check cannot see.
UNION_RULES = ("H1", "H5")
Progress = Callable[[int, int, str, str], None]  # done, total, site, state


@dataclass
class SiteOutcome:
    """One site's plan: ``ok`` False with ``error`` when the task failed."""

    site: str
    ok: bool
    seconds: float
    error: str | None = None
    plan: dict[str, Any] = field(default_factory=dict)
    schedule: pd.DataFrame | None = None
    released: pd.DataFrame | None = None  # case_id, surgeon_id, date, owner
    violations: list[str] = field(default_factory=list)
    model: str | None = None  # "<registry id> <version>"
    model_version: str | None = None
    data_hash: str | None = None  # engine.governance.canonical.input_data_hash of the site's inputs (the audit entry)
    union_parts: dict[str, pd.DataFrame] | None = None  # the horizon's slice of the site (for the union check)
    settings: Any = None  # the site's HospitalSettings (for the union check)

    def summary(self) -> dict[str, Any]:
        p = self.plan
        return {
            "site": self.site, "ok": self.ok, "error": self.error, "seconds": round(self.seconds, 2),
            "status": p.get("status") if self.ok else "failed", "mip_gap": p.get("mip_gap"),
            "gap_proven": p.get("gap_proven"), "fallback_used": p.get("fallback_used"),
            "fallback_reason": p.get("fallback_reason"), "n_scheduled": p.get("n_scheduled"),
            "n_deferred": p.get("n_deferred"), "utilization": p.get("utilization"),
            "n_released": 0 if self.released is None else len(self.released),
            "n_violations": len(self.violations), "violations": self.violations[:20], "model": self.model,
            "audit_seq": p.get("audit_seq"),
        }


@dataclass
class NetworkPlanResult:
    network: str
    dates: list[pd.Timestamp]
    sites: list[SiteOutcome]
    owned: pd.DataFrame  # the cross-site surgeon-days and their owners
    union_violations: list[str]
    seconds: float
    cluster: str
    params: PlanParams | None = None  # as planned (allow_date_change=False), for the audit

    @property
    def failed(self) -> list[str]:
        return [s.site for s in self.sites if not s.ok]

    def schedule(self) -> pd.DataFrame:
        """Every site's schedule, with a ``site`` column first."""
        parts = [s.schedule.assign(site=s.site) for s in self.sites if s.ok and s.schedule is not None]
        if not parts:
            return pd.DataFrame(columns=["site", *SCHEDULE_COLUMNS])
        df = pd.concat(parts, ignore_index=True)
        return df[["site", *SCHEDULE_COLUMNS]]

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network, "dates": [str(d.date()) for d in self.dates], "cluster": self.cluster,
            "seconds": round(self.seconds, 2), "sites": [s.summary() for s in self.sites], "failed": self.failed,
            "cross_site_surgeon_days": int(len(self.owned)), "union_violations": self.union_violations[:50],
            "n_union_violations": len(self.union_violations),
            "n_scheduled": int(sum(s.plan.get("n_scheduled", 0) for s in self.sites if s.ok)),
            "n_deferred": int(sum(s.plan.get("n_deferred", 0) for s in self.sites if s.ok)),
        }


def _deferred_rows(cases: pd.DataFrame, rel: pd.DataFrame) -> pd.DataFrame:
    """Schedule rows for the cases a site leaves to the surgeon's owning site that day."""
    owner = rel.set_index(["surgeon_id", "date"])["owner"]
    keys = list(zip(cases["surgeon_id"], cases["surgery_date"]))
    rows = pd.DataFrame({c: pd.Series([None] * len(cases), dtype=object) for c in SCHEDULE_COLUMNS})
    rows["case_id"] = cases["case_id"].to_numpy()
    rows["surgeon_id"] = cases["surgeon_id"].to_numpy()
    rows["service_line"] = cases["service_line"].to_numpy()
    rows["date"] = cases["surgery_date"].to_numpy()
    rows["status"] = "deferred"
    rows["reason"] = [f"cross-site surgeon {s} works at {owner.loc[(s, d)]} that day" for s, d in keys]
    return rows


def plan_site(site: Site, start: pd.Timestamp, params: PlanParams, rel: pd.DataFrame, models: str | None,
              model_id: str | None) -> SiteOutcome:
    """Plan one site (a Dask task; never raises). ``rel``: the surgeon-days this site leaves to
    their owner; ``model_id``: the registry id of the model to use (None: the site folder's name)."""
    from engine.checker import check_schedule
    from engine.forecast import Registry, train_and_register
    from engine.governance.canonical import input_data_hash
    from engine.hospital import load_hospital
    from engine.plan import plan

    t0 = time.perf_counter()
    try:
        h = load_hospital(site.folder).hospital
        dates = [start + pd.Timedelta(days=i) for i in range(params.days)]
        hid = model_id or site.hospital_id
        reg = Registry(models)
        mv = reg.load(hid) or train_and_register(h, hid, registry=reg)
        booked = h.cases[(h.cases["status"] == "booked") & h.cases["surgery_date"].isin(dates)]
        key = pd.MultiIndex.from_arrays([booked["surgeon_id"], booked["surgery_date"]])
        gone_keys = pd.MultiIndex.from_arrays([rel["surgeon_id"], pd.to_datetime(rel["date"])]) if len(rel) else None
        gone = key.isin(gone_keys) if gone_keys is not None else pd.Series(False, index=booked.index).to_numpy()
        kept, left = booked[~gone], booked[gone]
        forecasts = mv.forecaster.predict(kept, h.cases, as_of=min(h.as_of(), start))
        result = plan(h, forecasts, start, params, cases=kept)
        schedule = result.schedule
        if len(left):
            schedule = pd.concat([schedule, _deferred_rows(left, rel)], ignore_index=True)
        violations = [str(v) for v in check_schedule(h, schedule, horizon_dates=dates)]
        out = result.to_json()
        out["n_deferred"] = int(out["n_deferred"]) + len(left)
        rel_cases = left[["case_id", "surgeon_id", "surgery_date"]].rename(columns={"surgery_date": "date"})
        parts = {"cases": booked, "rooms": h.rooms, "surgeons": h.surgeons,
                 "blocks": h.blocks[h.blocks["date"].isin(dates)], "staffing": h.staffing[h.staffing["date"].isin(dates)]}
        return SiteOutcome(site.name, True, time.perf_counter() - t0, plan=out, schedule=schedule,
                           released=rel_cases.merge(rel, on=["surgeon_id", "date"], how="left"),
                           violations=violations, model=f"{hid} {mv.version}", model_version=mv.version,
                           data_hash=input_data_hash(h), union_parts=parts,
                           settings=h.settings)
    except Exception as exc:  # noqa: BLE001 - one site's failure is reported, never raised
        if isinstance(exc, InputError):
            msg = f"bad input: {exc.describe()}"
        else:
            msg = f"{type(exc).__name__}: {exc}"
            log.debug("site %s failed:\n%s", site.name, traceback.format_exc())
        return SiteOutcome(site.name, False, time.perf_counter() - t0, error=msg)


def check_network(outcomes: list[SiteOutcome], dates: list[pd.Timestamp]) -> list[str]:
    """The independent checker on the union of the site schedules (rules ``UNION_RULES``; every
    rule was checked per site against the site's own folder)."""
    from engine.checker import check_schedule
    from engine.hospital import Hospital

    ok = [o for o in outcomes if o.ok and o.union_parts is not None]
    if len(ok) < 2:
        return []
    cat = lambda key: pd.concat([o.union_parts[key] for o in ok], ignore_index=True)  # noqa: E731
    staffing = cat("staffing").groupby("date", as_index=False)[["staffed_rooms", "anesthesia_teams", "pacu_beds"]].sum()
    # The first site's settings: only H1 and H5 are kept, which read no setting.
    union = Hospital(name="network", cases=cat("cases"), rooms=cat("rooms"),
                     surgeons=cat("surgeons").drop_duplicates("surgeon_id"), blocks=cat("blocks"),
                     staffing=staffing, settings=ok[0].settings)
    sched = pd.concat([o.schedule for o in ok], ignore_index=True)
    return [str(v) for v in check_schedule(union, sched, horizon_dates=dates) if v.rule in UNION_RULES]


@contextmanager
def dask_client(scheduler_address: str | None, n_workers: int = 2, timeout_s: float = 30.0) -> Iterator[tuple[Any, str]]:
    """(client, label): a client of the scheduler at ``scheduler_address``, else of a new
    ``LocalCluster`` of ``n_workers`` single-threaded worker processes (closed on exit)."""
    from distributed import Client, LocalCluster

    if scheduler_address:
        try:
            client = Client(scheduler_address, timeout=timeout_s)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler_address!r}: {exc}", file="--scheduler") from exc
        with client:
            yield client, scheduler_address
        return
    with _main_not_rerun():
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, Client(cluster) as client:
        yield client, f"LocalCluster({n_workers} workers)"


@contextmanager
def _main_not_rerun() -> Iterator[None]:
    """While worker processes start, ``__main__`` is an empty module: multiprocessing's spawn runs
    the parent's main file again in every new process, and under Streamlit (the dashboard's
    network page, or an AppTest) that file is ``dashboard/app.py``, which must never run in a
    worker (it opened the store there and failed the worker's start)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _gather(client: Any, args: list[tuple], outcomes: dict[str, SiteOutcome], step: Progress, t0: float) -> None:
    """Submit one task per site and collect them as they finish."""
    from distributed import as_completed

    total = len(args)
    futures = {client.submit(plan_site, *a, pure=False, key=f"plan-site-{a[0].name}-{time.time_ns()}"): a[0].name
               for a in args}
    step(0, total, "", "submitted")
    for fut in as_completed(futures):
        name = futures[fut]
        try:
            o = fut.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker fails its site only
            o = SiteOutcome(name, False, time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}")
        outcomes[name] = o
        step(len(outcomes), total, name, "ok" if o.ok else "failed")


def plan_network(
    network: Network,
    start: pd.Timestamp | str,
    params: PlanParams | None = None,
    scheduler_address: str | None = None,
    n_workers: int = 2,
    models: str | Path | None = None,
    progress: Progress | None = None,
    client: Any = None,
    timeout_s: float = 30.0,
) -> NetworkPlanResult:
    """Plan every site of ``network`` from ``start`` as independent tasks (see the module docstring).

    ``client``: an existing ``distributed.Client`` to use (it is not closed).
    """
    from engine.network.forecast import model_ids

    t0 = time.perf_counter()
    params = (params or PlanParams()).with_(allow_date_change=False)
    start = pd.Timestamp(start).normalize()
    dates = [start + pd.Timedelta(days=i) for i in range(params.days)]
    owned = owners(network, dates)
    ids = model_ids(network, models)
    step = progress or (lambda done, total, site, state: None)
    total = len(network.sites)
    args = [(s, start, params, released(owned, s.name), str(models) if models else None, ids.get(s.name))
            for s in network.sites]
    outcomes: dict[str, SiteOutcome] = {}
    if scheduler_address == INPROCESS:
        label = "in-process"
        for a in args:
            step(len(outcomes), total, a[0].name, "running")
            outcomes[a[0].name] = o = plan_site(*a)
            step(len(outcomes), total, a[0].name, "ok" if o.ok else "failed")
    else:
        with ExitStack() as stack:
            if client is None:
                client, label = stack.enter_context(dask_client(scheduler_address, n_workers, timeout_s))
            else:
                label = "the given Dask client"
            _gather(client, args, outcomes, step, t0)
    ordered = [outcomes[s.name] for s in network.sites]
    union = check_network(ordered, dates)
    for o in ordered:
        o.union_parts = o.settings = None
    return NetworkPlanResult(network.name, dates, ordered, owned, union, time.perf_counter() - t0, label, params)
