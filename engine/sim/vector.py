"""The vectorised engine: the SimPy model's day with replications as an array axis.

All replications step together. At each step every replication handles *its own* next event
(the earliest of: a room's decision, a room's end of surgery, an idle room's close, the next
add-on arrival), so the loop runs about ``2 x (cases + add-ons) + rooms`` times whatever the
number of replications, and each step is a handful of numpy operations over the replications
that have that kind of event. Events are handled in time order per replication, which is what
makes the PACU a first-come first-served queue exactly as in the SimPy model.

The rules of the day (shared with :mod:`engine.sim.model`, which is the readable reference):

- A room *decides* when it opens and after every case's wheels-out + turnover. If an add-on is
  waiting that the policy lets this room take, it takes the earliest arrived (``bump``: and
  cancels its own last remaining elective). Otherwise it commits to its next elective and waits,
  if needed, for the surgeon's previous case (in planned order) to be decided. The case starts
  at ``max(now, patient ready, surgeon free)``, moved to the end of a room downtime if it falls
  in one. Patient ready = planned start (+ the late-start delay for the room's first case, or
  minus ``early_start_minutes`` when the patient is ready early).
- A case that cannot start before close + overtime cap *spills over*; one that would start but
  whose forecast P50 would run past close + cap is *cancelled* (``beds`` when the room's PACU
  holds made the difference, else ``overrun``). The room moves on at once.
- At end of surgery the patient needs a PACU bed; if none is free the patient waits in the OR
  (PACU hold) and the room is blocked until a bed frees (first come, first served).
- A room with no electives left stays open for add-ons until its close time, then closes.
  An add-on that arrives while such an allowed room is idle starts there at once; else it waits.
  Add-ons still waiting at the end of the day spill over.
"""
from __future__ import annotations

import numpy as np

from engine.sim.draws import Draws
from engine.sim.instance import SimDay
from engine.sim.outcome import A_NONE, A_RUN, A_SPILL, A_WAIT, BEDS, BUMPED, OVERRUN, PENDING, RUN, SPILL, PATIENT, Outcome

INF = np.inf
# Room phases.
DECIDE, SURGERY, DONE, IDLE, BLOCKED, COMMITTED = 0, 1, 2, 3, 4, 5
_LIVE = np.array([True, True, False, True, False, True])


def _shift(s: np.ndarray, d0: np.ndarray, d1: np.ndarray) -> np.ndarray:
    """A start inside a downtime waits for its end."""
    return np.where((s >= d0) & (s < d1), d1, s)


def effective_predecessors(day: SimDay, cancel: np.ndarray) -> np.ndarray:
    """(n, E): each case's surgeon predecessor skipping the patient-cancelled ones (-1: none)."""
    n, E = cancel.shape
    pred = np.full((n, E), -1, dtype=int)
    for c in day.order:
        p = day.surg_prev[c]
        if p >= 0:
            pred[:, c] = np.where(cancel[:, p], pred[:, p], p)
    return pred


def active_lists(day: SimDay, cancel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, rooms, K) each room's electives that are not patient-cancelled, in order; and their count."""
    n = cancel.shape[0]
    rl = day.room_lists
    valid = rl >= 0
    alive = valid[None] & ~cancel[:, np.where(valid, rl, 0)]
    order = np.argsort(~alive, axis=2, kind="stable")
    act = np.take_along_axis(np.broadcast_to(rl, (n,) + rl.shape), order, axis=2)
    return act, alive.sum(axis=2)


def run_day(day: SimDay, d: Draws, bump: bool, early_start_minutes: float) -> Outcome:
    n, R, E, A = d.n, day.n_rooms, day.n_cases, d.n_addon_slots
    out = Outcome.empty(n, E, A, R)
    if R == 0:
        out.a_state[:] = np.where(np.isfinite(d.arr), A_SPILL, A_NONE)
        out.e_state[:] = np.where(d.cancel, PATIENT, SPILL) if E else out.e_state
        return out
    ar = np.arange(n)
    act, n_alive = active_lists(day, d.cancel) if E else (np.zeros((n, R, 1), int), np.zeros((n, R), int))
    pred = effective_predecessors(day, d.cancel) if E else np.zeros((n, 0), int)
    ptr = np.zeros((n, R), dtype=int)
    endp = n_alive.copy()
    phase = np.zeros((n, R), dtype=np.int8)
    tev = np.broadcast_to(day.open_min, (n, R)).copy()
    started = np.zeros((n, R), dtype=bool)
    hold_cum = np.zeros((n, R))
    cur_kind = np.zeros((n, R), dtype=np.int8)
    cur_idx = np.zeros((n, R), dtype=int)
    wait_case = np.full((n, R), -1, dtype=int)
    beds = max(1, min(day.pacu_beds, E + A))
    pacu = np.zeros((n, beds))
    n_surg = int(day.surg_idx.max()) + 1 if E else 0
    surg_free = np.full((n, n_surg), -INF)
    out.e_state[:] = np.where(d.cancel, PATIENT, PENDING)
    a_exists = np.isfinite(d.arr)
    out.a_state[:] = np.where(a_exists, A_WAIT, A_NONE)
    a_next = np.zeros(n, dtype=int)
    a_queued = np.zeros((n, A), dtype=bool)
    allowed = day.addon_allowed
    limit, close = day.limit_min, day.close_min
    e = out

    def resolve(nn: np.ndarray, k: np.ndarray, t: np.ndarray) -> None:
        """Case k was decided (started, spilled, cancelled, bumped): wake a room waiting on it."""
        w = wait_case[nn]
        hit = (phase[nn] == BLOCKED) & (pred[nn[:, None], np.maximum(w, 0)] == k[:, None]) & (w >= 0)
        rows, cols = np.nonzero(hit)
        if len(rows):
            phase[nn[rows], cols] = COMMITTED
            tev[nn[rows], cols] = t[rows]

    def start_addon(nn, rr, a, s) -> None:
        a_queued[nn, a] = False
        e.a_state[nn, a] = A_RUN
        e.a_start[nn, a] = s
        end = s + d.adur[nn, a]
        e.a_end[nn, a] = end
        e.a_room[nn, a] = rr
        cur_kind[nn, rr] = 1
        cur_idx[nn, rr] = a
        phase[nn, rr] = SURGERY
        tev[nn, rr] = end
        started[nn, rr] = True

    def decide(nn, rr, t, allow_addon: bool) -> None:
        has_el = ptr[nn, rr] < endp[nn, rr]
        took = np.zeros(len(nn), dtype=bool)
        if A and allow_addon:
            m = has_el | (t < close[rr])
            sub = np.flatnonzero(m)
            if len(sub):
                n2, r2, t2 = nn[sub], rr[sub], t[sub]
                s_a = _shift(t2, d.down0[n2, r2], d.down1[n2, r2])
                cand = a_queued[n2] & allowed[d.acls[n2], r2[:, None]] & (s_a < limit[r2])[:, None]
                has = cand.any(axis=1)
                if has.any():
                    h = np.flatnonzero(has)
                    a = cand[h].argmax(axis=1)
                    start_addon(n2[h], r2[h], a, s_a[h])
                    took[sub[h]] = True
                    if bump:
                        b = h[ptr[n2[h], r2[h]] < endp[n2[h], r2[h]]]
                        if len(b):
                            nb, rb = n2[b], r2[b]
                            endp[nb, rb] -= 1
                            kb = act[nb, rb, endp[nb, rb]]
                            e.e_state[nb, kb] = BUMPED
                            resolve(nb, kb, t2[b])
        rest = ~took
        none = rest & ~has_el
        if none.any():
            i = np.flatnonzero(none)
            idle = t[i] < close[rr[i]]
            phase[nn[i], rr[i]] = np.where(idle, IDLE, DONE)
            tev[nn[i], rr[i]] = np.where(idle, close[rr[i]], INF)
        go = np.flatnonzero(rest & has_el)
        if not len(go):
            return
        nn, rr, t = nn[go], rr[go], t[go]
        k = act[nn, rr, ptr[nn, rr]]
        p = pred[nn, k]
        blocked = (p >= 0) & (e.e_state[nn, np.maximum(p, 0)] == PENDING)
        if blocked.any():
            b = np.flatnonzero(blocked)
            phase[nn[b], rr[b]] = BLOCKED
            tev[nn[b], rr[b]] = INF
            wait_case[nn[b], rr[b]] = k[b]
            keep = ~blocked
            nn, rr, t, k = nn[keep], rr[keep], t[keep], k[keep]
            if not len(nn):
                return
        first = ~started[nn, rr]
        ps = day.planned_start[k]
        ready = np.where(first, ps + d.late[nn, rr], ps - early_start_minutes * d.early[nn, k])
        s = np.maximum(np.maximum(t, ready), surg_free[nn, day.surg_idx[k]])
        s = _shift(s, d.down0[nn, rr], d.down1[nn, rr])
        lim = limit[rr]
        p50 = day.p50[k]
        spill = s >= lim
        over = ~spill & (s + p50 > lim)
        ptr[nn, rr] += 1
        resolve(nn, k, t)
        no = spill | over
        if no.any():
            i = np.flatnonzero(no)
            hc = hold_cum[nn[i], rr[i]]
            beds_cause = (hc > 0) & (s[i] - hc + p50[i] <= lim[i])
            e.e_state[nn[i], k[i]] = np.where(spill[i], SPILL, np.where(beds_cause, BEDS, OVERRUN))
            phase[nn[i], rr[i]] = DECIDE
            tev[nn[i], rr[i]] = t[i]
        i = np.flatnonzero(~no)
        if len(i):
            n3, r3, k3, s3 = nn[i], rr[i], k[i], s[i]
            end = s3 + d.dur[n3, k3]
            e.e_state[n3, k3] = RUN
            e.e_start[n3, k3] = s3
            e.e_end[n3, k3] = end
            started[n3, r3] = True
            surg_free[n3, day.surg_idx[k3]] = end
            cur_kind[n3, r3] = 0
            cur_idx[n3, r3] = k3
            phase[n3, r3] = SURGERY
            tev[n3, r3] = end

    def end_surgery(nn, rr, t) -> None:
        kind = cur_kind[nn, rr]
        idx = cur_idx[nn, rr]
        el = kind == 0
        stay = np.zeros(len(nn))
        turn = np.zeros(len(nn))
        if E and el.any():
            stay[el] = d.stay[nn[el], idx[el]]
            turn[el] = d.turn[nn[el], idx[el]]
        if A and (~el).any():
            stay[~el] = d.astay[nn[~el], idx[~el]]
            turn[~el] = d.aturn[nn[~el], idx[~el]]
        j = pacu[nn].argmin(axis=1)
        ps = np.maximum(t, pacu[nn, j])
        hold = ps - t
        pacu[nn, j] = ps + stay
        if el.any():
            w = np.flatnonzero(el)
            e.e_release[nn[w], idx[w]] = ps[w]
            e.e_hold[nn[w], idx[w]] = hold[w]
        if (~el).any():
            w = np.flatnonzero(~el)
            e.a_release[nn[w], idx[w]] = ps[w]
            e.a_hold[nn[w], idx[w]] = hold[w]
        hold_cum[nn, rr] += hold
        e.last_release[nn, rr] = ps
        phase[nn, rr] = DECIDE
        tev[nn, rr] = ps + turn

    def arrival(nn, t) -> None:
        a = a_next[nn]
        a_next[nn] += 1
        s = _shift(t[:, None], d.down0[nn], d.down1[nn])
        idle = (phase[nn] == IDLE) & allowed[d.acls[nn, a]] & (s < limit[None, :])
        has = idle.any(axis=1)
        if has.any():
            h = np.flatnonzero(has)
            r = idle[h].argmax(axis=1)
            start_addon(nn[h], r, a[h], s[h, r])
        q = np.flatnonzero(~has)
        a_queued[nn[q], a[q]] = True

    while True:
        room_t = np.where(_LIVE[phase], tev, INF)
        r = room_t.argmin(axis=1)
        rt = room_t[ar, r]
        if A:
            at = np.where(a_next < A, d.arr[ar, np.minimum(a_next, A - 1)], INF)
        else:
            at = np.full(n, INF)
        t = np.minimum(rt, at)
        live = t < INF
        if not live.any():
            break
        is_arr = live & (at < rt)
        is_room = live & ~is_arr
        ph = phase[ar, r]
        for want, fn in ((SURGERY, None), (DECIDE, True), (COMMITTED, False), (IDLE, None)):
            sel = np.flatnonzero(is_room & (ph == want))
            if not len(sel):
                continue
            if want == SURGERY:
                end_surgery(sel, r[sel], t[sel])
            elif want == IDLE:
                phase[sel, r[sel]] = DONE
                tev[sel, r[sel]] = INF
            else:
                decide(sel, r[sel], t[sel], allow_addon=fn)
        sel = np.flatnonzero(is_arr)
        if len(sel):
            arrival(sel, t[sel])
    if E and (e.e_state == PENDING).any():
        raise RuntimeError("simulation ended with undecided cases (a surgeon chain could not be resolved)")
    e.a_state[:] = np.where(e.a_state == A_WAIT, A_SPILL, e.a_state)
    return out
