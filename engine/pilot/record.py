"""Every recommendation audited (issue 19): one entry per ``plan``, ``replay`` and shadow run.

The entry carries what is needed to reproduce or question the recommendation: the planning inputs'
data hash, the model version, the parameters, the actor and a digest of the schedule. It goes to the
store's keyed audit chain (:mod:`engine.governance.audit`), so a missing audit key stops the command.
"""
from __future__ import annotations

import dataclasses
import getpass
import os
from typing import Any

import pandas as pd

from engine.governance.audit import AuditEntry, append
from engine.governance.canonical import canonical, clean, input_data_hash, schedule_to_records, sha256

UNAUTHENTICATED = "unauthenticated"

# Which data/roles.toml action each pilot step needs (the roles file has no pilot-specific actions yet):
# replays and reports read schedules; shadow runs propose; monitoring and drills run gates; the canary's
# start is a publication and its stop a rollback; incidents are written and exported by the audit readers.
PILOT_ACTIONS = {"replay": "view_schedule", "shadow_run": "propose", "shadow_report": "view_schedule",
                 "monitor": "run_gates", "drill": "run_gates", "incident": "view_audit", "export_incidents": "export_audit",
                 "canary_start": "publish", "canary_stop": "rollback"}


def require_pilot(user: Any, step: str) -> None:
    """PermissionError unless ``user`` (a governance User) may take pilot ``step`` (:data:`PILOT_ACTIONS`)."""
    from engine.governance import User, require

    if not isinstance(user, User):
        raise PermissionError("Sign in first: every pilot step needs a signed-in user.")
    require(user, PILOT_ACTIONS[step])


def cli_actor() -> tuple[str, str]:
    """(name, role) of whoever runs a command: the ``OR_TOKEN`` user when a token is set, else the OS user
    with role ``unauthenticated`` (a batch ``plan`` needs no sign-in, but its entry says who ran it)."""
    if os.environ.get("OR_TOKEN"):
        from engine.governance import user_from_token

        u = user_from_token()
        return u.name, u.role
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        name = f"uid-{os.getuid()}"
    return name, UNAUTHENTICATED


def params_dict(params: Any) -> dict[str, Any]:
    """A parameter object (dataclass or pydantic) as JSON-native fields."""
    if dataclasses.is_dataclass(params):
        return clean(dataclasses.asdict(params))
    dump = getattr(params, "model_dump", None)
    return clean(dump() if dump else dict(params or {}))


def schedule_digest(schedule: pd.DataFrame | None) -> str | None:
    return None if schedule is None else sha256(canonical(schedule_to_records(schedule)))


def payload(*, hospital=None, data_hash: str | None = None, model_version: str | None = None, params: Any = None,
            summary: dict[str, Any] | None = None, schedule: pd.DataFrame | None = None) -> dict[str, Any]:
    """The audit payload of a recommendation-like entry: data hash, model version, parameters, schedule digest, summary."""
    return {
        "input_data_hash": data_hash if data_hash is not None else (input_data_hash(hospital) if hospital is not None else None),
        "model_version": model_version,
        "params": params_dict(params) if params is not None else None,
        "schedule_sha256": schedule_digest(schedule),
        **(summary or {}),
    }


def record(store_or_url: Any, hospital_id: str, kind: str, *, hospital=None, data_hash: str | None = None,
           model_version: str | None = None, params: Any = None, summary: dict[str, Any] | None = None,
           schedule: pd.DataFrame | None = None, actor: tuple[str, str] | None = None) -> AuditEntry:
    """Append one audited recommendation-like entry (``kind`` among the audit kinds)."""
    name, role = actor or cli_actor()
    return append(store_or_url, hospital_id, kind, name, role,
                  payload(hospital=hospital, data_hash=data_hash, model_version=model_version, params=params,
                          summary=summary, schedule=schedule))
