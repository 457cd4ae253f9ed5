"""Errors of the governance workflow, each with a plain-language message for the user."""
from __future__ import annotations

from typing import Any


class ConflictError(Exception):
    """Someone else changed the schedule version this change was made against (optimistic concurrency).

    Nothing was saved; ``current_version`` is the version to reload (when known).
    """

    def __init__(self, message: str, base_version: int | None = None, current_version: int | None = None) -> None:
        super().__init__(message)
        self.base_version = base_version
        self.current_version = current_version


class WorkflowError(Exception):
    """A step that the version's state does not allow (approve a published version, roll back nothing, ...)."""


class OverrideError(ValueError):
    """An override that is incomplete or does not fit the schedule (unknown case, missing justification text)."""


class HardRuleViolation(OverrideError):
    """An override whose result breaks a hard rule (docs/hard-rules.md); nothing was saved.

    ``violations`` are the checker's findings the override introduced; ``rules`` their ids (H1..H10).
    """

    def __init__(self, message: str, violations: list[Any]) -> None:
        super().__init__(message)
        self.violations = list(violations)
        self.rules = sorted({v.rule for v in self.violations}, key=lambda r: int(r[1:]))


class PublicationWithheld(Exception):
    """Publication refused because at least one blocking safety gate failed; ``gates`` lists the failures."""

    def __init__(self, gates: list[Any]) -> None:
        self.gates = list(gates)
        lines = [f"- {g.gate}: {g.message} Inspect next: {g.inspect_next}" for g in self.gates]
        super().__init__("Publication withheld by the safety gates:\n" + "\n".join(lines))
