"""The checker's entry points: :func:`check_schedule`, :func:`assert_feasible`, :func:`rules_broken`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from engine.checker.context import _as_hospital, _context
from engine.checker.reading import Violation, read_schedule
from engine.checker.rules import _h1, _h2, _h3, _h4, _h5, _h6_h9, _h7, _h8, _h10


def check_schedule(
    hospital: Any,
    schedule: pd.DataFrame | str | Path,
    horizon_dates: list | None = None,
    locked: pd.DataFrame | None = None,
    allow_open_time: bool = True,
    tolerance_minutes: float = 0.5,
    plan_date: Any = None,
) -> list[Violation]:
    """Every violation of the hard rules H1..H10 (docs/hard-rules.md); [] when feasible."""
    h = _as_hospital(hospital)
    s = read_schedule(schedule)
    c = _context(h, s, horizon_dates, plan_date, allow_open_time, tolerance_minutes)
    c.s.attrs["schedule_problems"] = s.attrs.get("schedule_problems", [])
    h6, h9 = _h6_h9(c)
    out = [*_h1(c), *_h2(c), *_h3(c), *_h4(c), *_h5(c), *h6, *_h7(c), *_h8(c), *h9, *_h10(c, locked)]
    return sorted(out, key=lambda v: int(v.rule[1:]))


def assert_feasible(hospital: Any, schedule: pd.DataFrame | str | Path, **kw: Any) -> None:
    """Raise AssertionError listing the first 20 violations when the schedule is not feasible."""
    violations = check_schedule(hospital, schedule, **kw)
    if violations:
        shown = "\n".join(f"  {v}" for v in violations[:20])
        more = f"\n  ... and {len(violations) - 20} more" if len(violations) > 20 else ""
        raise AssertionError(f"schedule breaks {len(violations)} hard rule(s):\n{shown}{more}")


def rules_broken(violations: Iterable[Violation]) -> set[str]:
    """The set of rule ids in ``violations`` (handy in tests)."""
    return {v.rule for v in violations}
