"""From pilot to production (issue 19): retrospective replay, shadow mode, planned-vs-actual monitoring,
drills and incidents, canary rollout; every recommendation audited (:mod:`engine.pilot.record`).

The command line is :mod:`engine.pilotcli`; the dashboard page is ``pages/rollout.py``.
"""
from engine.pilot.record import cli_actor, record

__all__ = ["cli_actor", "record"]
