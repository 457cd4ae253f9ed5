"""Independent feasibility checker for schedule.csv (docs/hard-rules.md, rules H1..H10).

This package deliberately shares no code with the optimizer (nothing from ``engine.plan``, and
``tests/engine/governance/test_feasibility_gate.py`` checks that importing it loads no
``engine.plan`` module): it reads the hospital through :func:`engine.hospital.load_hospital`
only, and re-derives every rule from docs/hard-rules.md and CONTRACTS.md sections 1 and 2. It
checks the *exported* times. The tests use it on every schedule they produce (through the
re-export ``tests/feasibility.py``); governance runs it as the ``hard_rules`` gate on every
version before publication (``engine/governance/gates.py``).

A package along its seams; this module re-exports the public names, so ``from engine.checker
import ...`` is all callers need:

- ``reading``: the schedule columns, ``RULES``, :class:`Violation`, :func:`read_schedule` and its
  cell parsers;
- ``context``: the hospital and the parsed schedule gathered once for the rules (``_Ctx``), the
  time formats of the messages;
- ``rules``: one function per hard rule (H6 and H9 in one pass);
- ``check``: :func:`check_schedule`, :func:`assert_feasible`, :func:`rules_broken`.

Its time helpers are its own too: it does not import ``engine.timeutil`` (``engine.hospital`` does).

API
---
``read_schedule(path_or_df)``
    schedule.csv (a path or a DataFrame) -> DataFrame with the contract columns parsed: text
    columns stripped (empty -> missing), ``date`` as datetime64 at midnight (the project's date
    convention, as in ``Hospital``), ``start, end_p50, end_p80, pacu_in, pacu_out`` as
    datetime64. Values that do not parse become missing and are listed in
    ``df.attrs["schedule_problems"]`` (``(row, column, message)``; rows are 1-based data rows);
    :func:`check_schedule` reports them under H1. Calling it on its own output is a no-op.
``check_schedule(hospital, schedule, horizon_dates=None, locked=None, allow_open_time=True,
tolerance_minutes=0.5, plan_date=None) -> list[Violation]``
    ``hospital`` is a ``Hospital``, a ``LoadedHospital`` or a folder path. An empty list means
    feasible. Violations come sorted by rule (H1..H10), then in a stable order.
``assert_feasible(hospital, schedule, **kw)``
    raises AssertionError listing the first 20 violations.

Readings of docs/hard-rules.md (where it is ambiguous the stricter reading is taken)
--------------------------------------------------------------------------------------
General
  * The tolerance (0.5 minute by default) is applied to every comparison of times, always in
    the schedule's favour (it only absorbs the rounding of exported times), never to dates.
  * A case's surgeon, service line and required equipment are taken from cases.csv, not from
    the schedule's copy: a schedule cannot pass a rule by misreporting them. A ``surgeon_id``
    or ``service_line`` cell that differs from cases.csv is itself an H1 violation ("as in
    cases.csv"). Rows whose case_id is unknown to the hospital use the schedule's values.
  * Only rows with ``status == "scheduled"`` (exactly, case-sensitive) occupy rooms, surgeons
    and beds. When a case_id appears more than once, H1 reports it and only its first row is
    used by H2..H10 (so a duplicate does not also flood H4/H8).
  * A rule that needs a value a row lacks (H1 reports the missing value) skips that row.
  * A ``room_id`` that is not in rooms.csv is reported under H1 and the room-based rules
    (H2, H3, H6, H9) skip the row; it still counts for H4, H5, H7 and H8.

H1  The expected set is the booked cases (status ``booked`` in cases.csv) whose
    ``surgery_date`` is one of the horizon dates; the schedule's case_ids must equal it, each
    exactly once (missing, duplicated, unknown, not-booked and out-of-horizon ids are each
    reported). ``status`` must be exactly ``scheduled`` or ``deferred``. A scheduled row needs
    date, room_id, start, end_p50, end_p80, pacu_in, pacu_out; a deferred row needs an empty
    room_id; every row needs a non-empty reason. Values that do not parse (a datetime with a
    time-zone offset, a date with a time of day, a date-only ``start``, ...) and missing
    contract columns are H1 problems too. The notation's order ``start < end_p50 <= end_p80``
    is checked here as well (a row that breaks it is not a well-formed scheduled case).
    Default horizon (``horizon_dates=None``): the distinct ``surgery_date`` (cases.csv) of the
    booked cases listed in the schedule; when the schedule lists none, its distinct ``date``
    values. This default cannot see a day with no booked case in the schedule; pass the plan's
    real horizon (``--date`` .. ``--date + --days - 1``) whenever you have it.
H2  The room's capabilities must contain every item of the case's required_equipment (both
    are lowercase ``;``-lists after loading).
H3  ``start >= date + open_time - tol`` and ``start < date + close_time`` (no case is planned to
    start at or after the room's close); ``end_p80 <= date + close_time + overtime_cap_minutes
    + tol`` (settings, default 120; the room's close, not the block's end); start, end_p50 and
    end_p80 all lie on ``date`` (``date <= start`` and ``end <= date + 24h + tol``, so a case
    ending exactly at midnight still ends on its date).
H4  Per room and date, sorted by start: each start is at least the *largest* end_p50 of the
    earlier cases plus turnover_minutes (equal to the consecutive rule whenever every case has
    end_p50 > start; the running maximum also catches a case nested inside another).
H5  For one surgeon, intervals ``[start, end_p80)`` in different rooms must be disjoint. All of
    a surgeon's cases are compared, across dates too (the rule says "on one date"; cases on
    different dates can only overlap when H3 is broken, so this is only stricter). Surgeon
    ``unknown`` (allowed in cases.csv) is not one person and is not checked.
H6  Read per room-date ("surgeon days"): the case's room on its date must either hold a block
    the case may use -- a surgeon block with ``blocks.surgeon_id`` equal to the case's surgeon
    (whatever the block's service line; surgeon ``unknown`` owns no block) or a service block
    (empty surgeon_id) of the case's service line -- or hold no block at all (open time), and
    open time only when ``allow_open_time``. Open time is strictly "a room-date with no block
    at all": the unblocked hours of a room-date that has some block are NOT open time. A
    surgeon block never counts for another surgeon, even of the same service line. Whether
    the case's time lies inside such a block is H9's check.
H9  For a case that passes H6 on a blocked room-date: ``[start, end_p50)`` must lie inside ONE
    usable block (contiguous usable blocks are not merged): ``block start - tol <= start < block end`` and
    ``end_p50 <= block end + tol``, or, only when the block runs to the room's close (block end
    >= close_time), ``end_p50 <= close_time + overtime_cap_minutes + tol``. On open time H9
    adds nothing (the room's hours and the cap are H3's). A case that fails H6 is not reported
    again under H9.
H7  Per date, the number of distinct rooms with a scheduled case must be at most
    staffed_rooms and at most anesthesia_teams. This per-day count bounds any count of rooms
    running at the same moment, so it is the stricter reading and no sweep is needed; one violation per date names the limits exceeded. A date
    without a staffing row has capacity 0 (any case on it is a violation); duplicate rows for a
    date use the smallest values.
H8  Sweep-line over ``[pacu_in, pacu_out)`` (ends processed before starts at equal times, ends
    moved ``tol`` earlier): at every moment the number of occupied beds is at most the
    ``pacu_beds`` of that moment's calendar date (a stay crossing midnight counts against the
    next date's beds; a date without a staffing row has 0 beds). One violation per
    over-capacity episode, naming the cases present at its peak. The notation is checked too:
    ``pacu_in == end_p50`` and ``pacu_out == pacu_in + pacu_minutes`` within tol (a shorter
    stay would hide occupancy; a longer one is not the documented notation either).
H10 Every row that has a ``date`` (deferred rows too) must have it in the horizon and not
    before the planning date (``plan_date``, default the first horizon date). "surgery_date is
    not moved before the planning date" is read literally as that: moving a case EARLIER than
    its own surgery_date but inside the horizon is not a violation. With ``locked`` (columns
    case_id, date, room_id, start), each locked case must be in the schedule as
    ``scheduled`` with the same date, room_id and start (within tol); a missing value in a
    lock row leaves that field free; a lock cell that does not parse raises ValueError (the
    caller's input is broken, not the schedule).

Not checked (not in the hard rules): the site of a room vs the case's site, prime time,
P50/P80 values themselves (only their exported order), soft goals.
"""
from engine.checker.check import assert_feasible, check_schedule, rules_broken
from engine.checker.reading import (
    DEFAULT_OVERTIME_CAP_MINUTES,
    RULES,
    SCHEDULE_COLUMNS,
    SCHEDULED_NEEDS,
    STATUSES,
    TEXT_COLUMNS,
    TIME_COLUMNS,
    Violation,
    read_schedule,
)

__all__ = [
    "DEFAULT_OVERTIME_CAP_MINUTES",
    "RULES",
    "SCHEDULE_COLUMNS",
    "SCHEDULED_NEEDS",
    "STATUSES",
    "TEXT_COLUMNS",
    "TIME_COLUMNS",
    "Violation",
    "assert_feasible",
    "check_schedule",
    "read_schedule",
    "rules_broken",
]
