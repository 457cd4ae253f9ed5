"""The Governance page's engine calls (pages/governance.py) besides the workflow object itself
(``state.governance()``): running an action with the engine's refusals turned into plain messages kept
across the rerun, overrides, role checks, the rules catalog and the rules schedule for a rollback, so
the page imports no engine module for work. Its rollout section is dashboard/canary_state.py."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import keys, state

FLASH = keys.GOV_FLASH_KEY  # the page's messages, shown once after the rerun


def act(label: str, fn, *args, say_done: bool = True, **kwargs):
    """Run a governance action; engine refusals become plain messages kept across the rerun.
    ``say_done=False`` where the caller shows the outcome itself (one message per action)."""
    from engine.errors import InputError
    from engine.governance import ConflictError, HardRuleViolation, PublicationWithheld, WorkflowError

    msgs = st.session_state.setdefault(FLASH, [])
    try:
        out = fn(*args, **kwargs)
    except PermissionError as exc:
        user = state.active_user()
        msgs.append(("error", f"Not allowed for your role ({user.role if user is not None else 'none'}): {exc}"))
    except PublicationWithheld as exc:
        msgs.append(("error", f"Publication withheld: {exc}"))
        msgs.extend(("warning", f"**{g.gate}**: {g.message} Next: {g.inspect_next}") for g in exc.gates if g.withholds)
    except HardRuleViolation as exc:
        msgs.append(("error", f"{label} refused: it breaks hard rule{'s' if len(exc.rules) > 1 else ''} "
                              f"{', '.join(exc.rules)} (docs/hard-rules.md). {exc}"))
    except ConflictError as exc:
        msgs.append(("error", f"The schedule changed while you were working: {exc}"))
    except (WorkflowError, InputError, ValueError) as exc:
        msgs.append(("error", f"{label} refused: {exc}"))
    else:
        if say_done:
            msgs.append(("success", f"{label}: done."))
        return out
    return None


def override(case_id: str, action: str, code: str, text: str = "", room_id: str | None = None, start: str | None = None):
    """One case override (engine.governance.Override; ValueError or InputError names what is wrong)."""
    from engine.governance import Override

    return Override(case_id, action, code, text=text, room_id=room_id, start=start)


def can(user, action: str) -> bool:
    """May ``user`` do ``action`` (engine.governance.can, data/roles.toml)?"""
    from engine.governance import can as may

    return may(user, action)


def catalog():
    """The rules catalog in force (engine.governance.load_catalog)."""
    from engine.governance import load_catalog

    return load_catalog()


def rules_schedule(h, day, days: int = 1) -> pd.DataFrame:
    """The rules-based block schedule of ``days`` from ``day`` (engine.governance.rules_schedule), for a rollback."""
    from engine.governance import rules_schedule as rules

    return rules(h, pd.Timestamp(day), days)


def audit_export(hospital_id: str, user) -> bytes:
    """The hospital's audit log as JSON lines, exported as ``user`` (role-checked and audited in the engine)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.jsonl"
        state.governance().export_audit(path, user, hospital_id)
        return path.read_bytes()
