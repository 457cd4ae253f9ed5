"""The independent feasibility checker, re-exported for the tests.

The checker lives in :mod:`engine.checker` (it also gates every schedule version before
publication); it shares no code with ``engine/plan``. See that module for the readings of
docs/hard-rules.md.
"""
from engine.checker import (  # noqa: F401
    DEFAULT_OVERTIME_CAP_MINUTES,
    RULES,
    SCHEDULE_COLUMNS,
    SCHEDULED_NEEDS,
    STATUSES,
    TEXT_COLUMNS,
    TIME_COLUMNS,
    Violation,
    assert_feasible,
    check_schedule,
    read_schedule,
    rules_broken,
)

__all__ = ["DEFAULT_OVERTIME_CAP_MINUTES", "RULES", "SCHEDULE_COLUMNS", "SCHEDULED_NEEDS", "STATUSES", "TEXT_COLUMNS",
           "TIME_COLUMNS", "Violation", "assert_feasible", "check_schedule", "read_schedule", "rules_broken"]
