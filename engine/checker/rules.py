"""The hard rules H1..H10 (docs/hard-rules.md), one function each on a :class:`_Ctx` (H6 and H9
in one pass); how each rule is read is in the package docstring (:mod:`engine.checker`)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd

from engine.checker.context import _Ctx, _clock, _hm, _minutes, _t, _v
from engine.checker.reading import _DAY, SCHEDULED_NEEDS, STATUSES, Violation, _parse_columns, _text


def _h1(c: _Ctx) -> list[Violation]:
    s, out = c.s, []
    for row, col, msg in s.attrs.get("schedule_problems", []):
        cid = s.at[row - 1, "case_id"] if row is not None and row - 1 in s.index else None
        where = f"row {row}, column {col}" if row is not None else f"column {col}"
        out.append(_v("H1", f"schedule.csv {where}: {msg}", [cid]))

    for r in s[s["case_id"].isna()].itertuples():
        out.append(_v("H1", f"row {r.x_row} has no case_id", [], r.date, r.room_id))
    dup = s[s["case_id"].notna() & s["case_id"].duplicated(keep=False)]
    for cid, g in dup.groupby("case_id", sort=True):
        rows = ", ".join(str(x) for x in g["x_row"])
        out.append(_v("H1", f"case {cid} appears {len(g)} times (rows {rows}); it must appear exactly once", [cid]))

    cases = c.h.cases
    booked = cases[cases["status"] == "booked"]
    expected = booked[booked["surgery_date"].map(lambda d: pd.Timestamp(d).normalize() in c.horizon if pd.notna(d) else False)]
    present = set(s["case_id"].dropna())
    for r in expected[~expected["case_id"].isin(list(present))].sort_values(["surgery_date", "case_id"]).itertuples():
        out.append(
            _v("H1", f"booked case {r.case_id} (surgery_date {r.surgery_date:%Y-%m-%d}) of the horizon is missing from the schedule", [r.case_id], r.surgery_date)
        )
    by_id = cases.drop_duplicates("case_id").set_index("case_id")
    expected_ids = set(expected["case_id"])
    for r in s[s["case_id"].notna() & s["x_first"]].itertuples():
        if r.case_id in expected_ids:
            continue
        if r.case_id not in by_id.index:
            why = "is not a case of cases.csv"
        elif by_id.at[r.case_id, "status"] != "booked":
            why = f"has status {by_id.at[r.case_id, 'status']!r} in cases.csv, not 'booked'"
        else:
            why = f"has surgery_date {by_id.at[r.case_id, 'surgery_date']:%Y-%m-%d}, outside the horizon"
        out.append(_v("H1", f"case {r.case_id} (row {r.x_row}) {why}: only the booked cases of the horizon belong in the schedule", [r.case_id], r.date, r.room_id))

    for r in s.itertuples():
        cid = [r.case_id]
        if r.status not in STATUSES:
            shown = "empty" if r.status is None else repr(r.status)
            out.append(_v("H1", f"row {r.x_row}: status is {shown}; it must be 'scheduled' or 'deferred'", cid, r.date, r.room_id))
        if r.status == "scheduled":
            missing = [col for col in SCHEDULED_NEEDS if pd.isna(getattr(r, col)) or getattr(r, col) is None]
            if missing:
                out.append(_v("H1", f"row {r.x_row}: a scheduled row needs {', '.join(missing)} (empty or invalid here)", cid, r.date, r.room_id))
            if r.room_id is not None and r.room_id not in c.rooms:
                out.append(_v("H1", f"row {r.x_row}: room {r.room_id!r} is not in rooms.csv", cid, r.date, r.room_id))
            if pd.notna(r.start) and pd.notna(r.end_p50) and not r.end_p50 > r.start:
                out.append(_v("H1", f"row {r.x_row}: end_p50 {_t(r.end_p50)} is not after start {_t(r.start)}", cid, r.date, r.room_id))
            if pd.notna(r.end_p50) and pd.notna(r.end_p80) and r.end_p80 < r.end_p50:
                out.append(_v("H1", f"row {r.x_row}: end_p80 {_t(r.end_p80)} is before end_p50 {_t(r.end_p50)}", cid, r.date, r.room_id))
        if r.status == "deferred" and r.room_id is not None:
            out.append(_v("H1", f"row {r.x_row}: a deferred case must have an empty room_id, it has {r.room_id!r}", cid, r.date, r.room_id))
        if r.reason is None:
            out.append(_v("H1", f"row {r.x_row}: reason is empty; every row needs a plain-language reason", cid, r.date, r.room_id))
        if r.x_known:
            for col, truth in (("surgeon_id", by_id.at[r.case_id, "surgeon_id"]), ("service_line", by_id.at[r.case_id, "service_line"])):
                given = getattr(r, col)
                if _text(given) != _text(truth):
                    out.append(_v("H1", f"row {r.x_row}: {col} is {given!r} but cases.csv says {_text(truth)!r}", cid, r.date, r.room_id))
    return out


def _h2(c: _Ctx) -> list[Violation]:
    out = []
    for r in c.use[c.use["room_id"].isin(list(c.rooms))].itertuples():
        lacking = sorted(r.x_equipment - c.rooms[r.room_id]["caps"])
        if lacking:
            caps = ";".join(sorted(c.rooms[r.room_id]["caps"])) or "none"
            out.append(
                _v("H2", f"case {r.case_id} needs {', '.join(lacking)} but room {r.room_id} has capabilities: {caps}", [r.case_id], r.date, r.room_id)
            )
    return out


def _h3(c: _Ctx) -> list[Violation]:
    out = []
    u = c.use[c.use["room_id"].isin(list(c.rooms)) & c.use["date"].notna()]
    for r in u.itertuples():
        room = c.rooms[r.room_id]
        open_at = r.date + pd.Timedelta(minutes=room["open"])
        close_at = r.date + pd.Timedelta(minutes=room["close"])
        cid = [r.case_id]
        if pd.notna(r.start) and r.start < open_at - c.tol:
            out.append(_v("H3", f"case {r.case_id} starts {_t(r.start)}, before room {r.room_id} opens at {_t(open_at)}", cid, r.date, r.room_id))
        if pd.notna(r.start) and r.start >= close_at:
            out.append(_v("H3", f"case {r.case_id} starts {_t(r.start)}, at or after room {r.room_id}'s close at {_t(close_at)}",
                          cid, r.date, r.room_id))
        if pd.notna(r.end_p80) and r.end_p80 > close_at + c.cap + c.tol:
            out.append(
                _v(
                    "H3",
                    f"case {r.case_id} ends at P80 {_t(r.end_p80)}, past room {r.room_id}'s close {_hm(close_at)} plus the "
                    f"{_minutes(c.cap)} overtime cap ({_t(close_at + c.cap)})",
                    cid,
                    r.date,
                    r.room_id,
                )
            )
        off = [
            f"{col} {_t(getattr(r, col))}"
            for col in ("start", "end_p50", "end_p80")
            if pd.notna(getattr(r, col)) and not (r.date <= getattr(r, col) and getattr(r, col) <= r.date + _DAY + c.tol)
        ]
        if off:
            out.append(_v("H3", f"case {r.case_id} must start and end on its date {r.date:%Y-%m-%d}: {', '.join(off)}", cid, r.date, r.room_id))
    return out


def _h4(c: _Ctx) -> list[Violation]:
    out = []
    u = c.use.dropna(subset=["room_id", "date", "start", "end_p50"])
    for (room, date), g in u.groupby(["room_id", "date"], sort=True):
        g = g.sort_values(["start", "end_p50", "x_row"], kind="stable")
        prev_end, prev_id = None, None
        for r in g.itertuples():
            if prev_end is not None and r.start < prev_end + c.turnover - c.tol:
                gap = r.start - prev_end
                out.append(
                    _v(
                        "H4",
                        f"in room {room} case {r.case_id} starts {_hm(r.start)}, {_minutes(gap)} after case {prev_id} ends (P50 "
                        f"{_hm(prev_end)}); the turnover needs {_minutes(c.turnover)}",
                        [prev_id, r.case_id],
                        date,
                        room,
                    )
                )
            if prev_end is None or r.end_p50 > prev_end:
                prev_end, prev_id = r.end_p50, r.case_id
    return out


def _h5(c: _Ctx) -> list[Violation]:
    out = []
    u = c.use.dropna(subset=["room_id", "start", "end_p80", "x_surgeon"])
    u = u[u["x_surgeon"] != "unknown"]
    for surgeon, g in u.groupby("x_surgeon", sort=True):
        rows = list(g.sort_values(["start", "x_row"], kind="stable").itertuples())
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                if b.start >= a.end_p80 - c.tol:
                    break  # sorted by start: b and every later case start after a ends
                if b.room_id != a.room_id and a.start < b.end_p80 - c.tol:
                    out.append(
                        _v(
                            "H5",
                            f"surgeon {surgeon} is in two rooms at once: case {a.case_id} in {a.room_id} "
                            f"{_hm(a.start)}-{_hm(a.end_p80)} (P80) overlaps case {b.case_id} in {b.room_id} {_hm(b.start)}-{_hm(b.end_p80)}",
                            [a.case_id, b.case_id],
                            a.date,
                            None,
                        )
                    )
    return out


def _usable(c: _Ctx, r: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(all blocks of the case's room-date, the ones this case may use)."""
    blocks = c.blocks.get((r.room_id, r.date), [])
    surgeon, service = r.x_surgeon, r.x_service
    usable = [
        b
        for b in blocks
        if (b["surgeon_id"] is not None and surgeon not in (None, "unknown") and b["surgeon_id"] == surgeon)
        or (b["surgeon_id"] is None and service is not None and b["service_line"] == service)
    ]
    return blocks, usable


def _h6_h9(c: _Ctx) -> tuple[list[Violation], list[Violation]]:
    h6, h9 = [], []
    u = c.use[c.use["room_id"].isin(list(c.rooms)) & c.use["date"].notna()]
    for r in u.itertuples():
        blocks, usable = _usable(c, r)
        who = f"surgeon {r.x_surgeon} ({r.x_service})"
        if not blocks:
            if not c.allow_open_time:
                h6.append(
                    _v("H6", f"case {r.case_id} of {who} uses open time (room {r.room_id} has no block on {r.date:%Y-%m-%d}) but open time is not allowed", [r.case_id], r.date, r.room_id)
                )
            continue
        if not usable:
            owners = "; ".join(b["label"] for b in blocks)
            h6.append(
                _v(
                    "H6",
                    f"case {r.case_id} of {who} is in room {r.room_id} on {r.date:%Y-%m-%d}, where neither a block of the surgeon nor a "
                    f"service block of {r.x_service} exists (blocks there: {owners}) and there is no open time",
                    [r.case_id],
                    r.date,
                    r.room_id,
                )
            )
            continue
        if pd.isna(r.start) or pd.isna(r.end_p50):
            continue
        close = c.rooms[r.room_id]["close"]
        ok = False
        for b in usable:
            b_start = r.date + pd.Timedelta(minutes=b["start"])
            b_end = r.date + pd.Timedelta(minutes=b["end"])
            if r.start < b_start - c.tol or r.start >= b_end:
                continue
            if r.end_p50 <= b_end + c.tol:
                ok = True
            elif b["end"] >= close and r.end_p50 <= r.date + pd.Timedelta(minutes=close) + c.cap + c.tol:
                ok = True
            if ok:
                break
        if not ok:
            labels = "; ".join(b["label"] for b in usable)
            h9.append(
                _v(
                    "H9",
                    f"case {r.case_id} of {who} runs {_clock(r.start, r.date)}-{_clock(r.end_p50, r.date)} (P50), not inside one block it may use in room "
                    f"{r.room_id} ({labels}); running past a block's end is allowed only when the block runs to the room's close",
                    [r.case_id],
                    r.date,
                    r.room_id,
                )
            )
    return h6, h9


def _h7(c: _Ctx) -> list[Violation]:
    out = []
    u = c.use.dropna(subset=["date", "room_id"])
    for date, g in u.groupby("date", sort=True):
        rooms = sorted(set(g["room_id"]))
        n = len(rooms)
        st = c.staffing.get(date)
        if st is None:
            out.append(_v("H7", f"{n} room(s) used ({', '.join(rooms)}) on {date:%Y-%m-%d}, a date without a staffing row (no capacity)", g["case_id"], date))
            continue
        short = [f"{st[key]:g} {what}" for key, what in (("staffed_rooms", "staffed rooms"), ("anesthesia_teams", "anesthesia teams")) if n > st[key]]
        if short:
            out.append(_v("H7", f"{n} rooms used ({', '.join(rooms)}) on {date:%Y-%m-%d} but only {' and '.join(short)}", (), date))
    return out


def _h8(c: _Ctx) -> list[Violation]:
    out = []
    u = c.use
    for r in u.itertuples():
        if pd.notna(r.pacu_in) and pd.notna(r.end_p50) and abs(r.pacu_in - r.end_p50) > c.tol:
            out.append(_v("H8", f"case {r.case_id}: pacu_in {_t(r.pacu_in)} must equal end_p50 {_t(r.end_p50)}", [r.case_id], r.date, r.room_id))
        if pd.notna(r.pacu_in) and pd.notna(r.pacu_out) and abs((r.pacu_out - r.pacu_in) - c.pacu) > c.tol:
            out.append(
                _v(
                    "H8",
                    f"case {r.case_id}: PACU stay {_hm(r.pacu_in)}-{_hm(r.pacu_out)} lasts {_minutes(r.pacu_out - r.pacu_in)}, "
                    f"not pacu_minutes = {_minutes(c.pacu)}",
                    [r.case_id],
                    r.date,
                    r.room_id,
                )
            )
    # Split every stay at midnights: a moment counts against the beds of its own calendar date.
    pieces: dict[pd.Timestamp, list[tuple[pd.Timestamp, pd.Timestamp, str]]] = defaultdict(list)
    for r in u.dropna(subset=["pacu_in", "pacu_out"]).itertuples():
        d = r.pacu_in.normalize()
        while d < r.pacu_out:
            a, b = max(r.pacu_in, d), min(r.pacu_out, d + _DAY)
            if b - c.tol > a:
                pieces[d].append((a, b - c.tol, r.case_id))
            d += _DAY
    for date in sorted(pieces):
        beds = c.staffing.get(date, {}).get("pacu_beds", 0.0)
        events = sorted(
            [(a, 1, cid) for a, _b, cid in pieces[date]] + [(b, -1, cid) for _a, b, cid in pieces[date]],
            key=lambda e: (e[0], e[1]),
        )
        active: list[str] = []
        episode: dict[str, Any] | None = None
        i = 0
        while i < len(events):
            t = events[i][0]
            while i < len(events) and events[i][0] == t:
                _, delta, cid = events[i]
                if delta > 0:
                    active.append(cid)
                else:
                    active.remove(cid)
                i += 1
            n = len(active)
            if n > beds:
                if episode is None:
                    episode = {"start": t, "peak": n, "at": t, "cases": list(active)}
                elif n > episode["peak"]:
                    episode.update(peak=n, at=t, cases=list(active))
            elif episode is not None:
                out.append(_pacu_violation(date, beds, episode, t, c))
                episode = None
        if episode is not None:
            out.append(_pacu_violation(date, beds, episode, None, c))
    return out


def _pacu_violation(date: pd.Timestamp, beds: float, ep: dict[str, Any], end: pd.Timestamp | None, c: _Ctx) -> Violation:
    until = f" until {_hm(end + c.tol)}" if end is not None else ""
    no_row = "" if date in c.staffing else " (no staffing row for this date: no beds)"
    return _v(
        "H8",
        f"PACU over capacity from {_hm(ep['start'])}{until}: {ep['peak']} patients at {_hm(ep['at'])} "
        f"({', '.join(ep['cases'])}) for {beds:g} beds{no_row}",
        ep["cases"],
        date,
    )


def _h10(c: _Ctx, locked: pd.DataFrame | None) -> list[Violation]:
    out = []
    horizon = ", ".join(f"{d:%Y-%m-%d}" for d in sorted(c.horizon)) or "none"
    for r in c.s[c.s["date"].notna() & c.s["x_first"]].itertuples():
        if c.plan_date is not None and r.date < c.plan_date:
            out.append(_v("H10", f"case {r.case_id} is planned on {r.date:%Y-%m-%d}, before the planning date {c.plan_date:%Y-%m-%d}", [r.case_id], r.date, r.room_id))
        elif r.date not in c.horizon:
            out.append(_v("H10", f"case {r.case_id} is planned on {r.date:%Y-%m-%d}, outside the planning horizon ({horizon})", [r.case_id], r.date, r.room_id))
    if locked is None:
        return out
    problems: list[tuple[int | None, str, str]] = []
    lk = _parse_columns(locked.reset_index(drop=True), {"case_id": "text", "date": "date", "room_id": "text", "start": "datetime"}, problems)
    if problems:
        raise ValueError("locked cases do not parse: " + "; ".join(f"row {r} {col}: {m}" for r, col, m in problems))
    first = c.s[c.s["x_first"] & c.s["case_id"].notna()].set_index("case_id")
    for lrow in lk.itertuples():
        cid = lrow.case_id
        want = []
        if lrow.date is not None and pd.notna(lrow.date):
            want.append(f"date {lrow.date:%Y-%m-%d}")
        if lrow.room_id is not None:
            want.append(f"room {lrow.room_id}")
        if pd.notna(lrow.start):
            want.append(f"start {_t(lrow.start)}")
        if cid not in first.index:
            out.append(_v("H10", f"locked case {cid} ({', '.join(want)}) is not in the schedule", [cid], lrow.date, lrow.room_id))
            continue
        r = first.loc[cid]
        diffs = []
        if r["status"] != "scheduled":
            diffs.append(f"status is {r['status']!r}, not 'scheduled'")
        if pd.notna(lrow.date) and (pd.isna(r["date"]) or r["date"] != lrow.date):
            diffs.append(f"date {r['date']:%Y-%m-%d}" if pd.notna(r["date"]) else "no date")
        if lrow.room_id is not None and r["room_id"] != lrow.room_id:
            diffs.append(f"room {r['room_id']}" if r["room_id"] is not None else "no room")
        if pd.notna(lrow.start) and (pd.isna(r["start"]) or abs(r["start"] - lrow.start) > c.tol):
            diffs.append(f"start {_t(r['start'])}" if pd.notna(r["start"]) else "no start")
        if diffs:
            out.append(
                _v("H10", f"locked case {cid} must keep {', '.join(want)}; the schedule has {', '.join(diffs)}", [cid], r["date"] if pd.notna(r["date"]) else lrow.date, r["room_id"])
            )
    return out
