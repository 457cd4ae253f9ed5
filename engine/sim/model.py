"""The reference discrete-event model of an OR day in SimPy (the *Model* of Param / Model / Runner).

One :class:`DayModel` is one replication of one day. Rooms, the add-on stream, PACU beds (a
first-come first-served ``simpy.Resource``; a patient who finds it full waits in the OR and the
room is blocked) and surgeons (each case waits for the surgeon's previous case in planned
order) are processes and resources; the rules are stated in :mod:`engine.sim.vector`, which
implements the same day with replications as an array axis. ``run_day`` (the *Runner*) plays
every replication of a :class:`~engine.sim.draws.Draws` block and returns the same
:class:`~engine.sim.outcome.Outcome` the vectorised engine returns, so the two can be compared
value for value (``tests/engine/sim/test_engines_agree.py``).
"""
from __future__ import annotations

import simpy

from engine.sim.draws import Draws
from engine.sim.instance import SimDay
from engine.sim.outcome import A_NONE, A_RUN, A_SPILL, BEDS, BUMPED, OVERRUN, PATIENT, PENDING, RUN, SPILL, Outcome
from engine.sim.vector import active_lists, effective_predecessors


class DayModel:
    """One replication ``i`` of ``day`` with the draws ``d``; results go into ``out`` row ``i``."""

    def __init__(self, day: SimDay, d: Draws, i: int, out: Outcome, bump: bool, early_start_minutes: float,
                 act, n_alive, pred) -> None:
        self.day, self.d, self.i, self.out = day, d, i, out
        self.bump, self.early = bump, early_start_minutes
        self.env = simpy.Environment()
        self.pacu = simpy.Resource(self.env, capacity=max(1, min(day.pacu_beds, day.n_cases + d.n_addon_slots)))
        self.lists = [[int(k) for k in act[i, r, : n_alive[i, r]]] for r in range(day.n_rooms)]
        self.pred = pred[i]
        self.state = out.e_state[i]
        self.resolved = [self.env.event() for _ in range(day.n_cases)]
        self.surg_free: dict[int, float] = {}
        self.idle: list[simpy.Event | None] = [None] * day.n_rooms
        self.queue: list[int] = []
        self.hold_cum = [0.0] * day.n_rooms

    # -- helpers
    def shift(self, s: float, r: int) -> float:
        d0, d1 = self.d.down0[self.i, r], self.d.down1[self.i, r]
        return d1 if d0 <= s < d1 else s

    def allowed(self, a: int, r: int) -> bool:
        return bool(self.day.addon_allowed[self.d.acls[self.i, a], r])

    def resolve(self, k: int) -> None:
        if not self.resolved[k].triggered:
            self.resolved[k].succeed()

    # -- processes
    def operate(self, r: int, kind: str, idx: int, s: float):
        """Run a case from its start ``s``: surgery, PACU (holding the room while full), turnover."""
        i, d, out = self.i, self.d, self.out
        dur = d.dur[i, idx] if kind == "e" else d.adur[i, idx]
        end = s + dur
        yield self.env.timeout(end - self.env.now)
        req = self.pacu.request()
        yield req
        ps = max(end, self.env.now)
        hold = ps - end
        stay = d.stay[i, idx] if kind == "e" else d.astay[i, idx]
        self.env.process(self.recover(req, ps + stay))
        if kind == "e":
            out.e_release[i, idx], out.e_hold[i, idx] = ps, hold
        else:
            out.a_release[i, idx], out.a_hold[i, idx] = ps, hold
        self.hold_cum[r] += hold
        out.last_release[i, r] = ps
        turn = d.turn[i, idx] if kind == "e" else d.aturn[i, idx]
        yield self.env.timeout(ps + turn - self.env.now)

    def recover(self, req, until: float):
        yield self.env.timeout(until - self.env.now)
        self.pacu.release(req)

    def start_addon(self, r: int, a: int, s: float) -> None:
        i, out = self.i, self.out
        out.a_state[i, a] = A_RUN
        out.a_start[i, a] = s
        out.a_end[i, a] = s + self.d.adur[i, a]
        out.a_room[i, a] = r

    def room(self, r: int):
        env, day, d, i, out = self.env, self.day, self.d, self.i, self.out
        close, limit = day.close_min[r], day.limit_min[r]
        todo = self.lists[r]
        ptr, end = 0, len(todo)
        started = False
        yield env.timeout(day.open_min[r])
        while True:
            t = env.now
            has_el = ptr < end
            if (has_el or t < close) and self.queue:
                s_a = self.shift(t, r)
                a = next((a for a in self.queue if self.allowed(a, r)), None) if s_a < limit else None
                if a is not None:
                    self.queue.remove(a)
                    self.start_addon(r, a, s_a)
                    started = True
                    if self.bump and has_el:
                        end -= 1
                        self.state[todo[end]] = BUMPED
                        self.resolve(todo[end])
                    yield from self.operate(r, "a", a, s_a)
                    continue
            if not has_el:
                if t >= close:
                    return
                wake = env.event()
                self.idle[r] = wake
                got = yield wake | env.timeout(close - t)
                if wake not in got:
                    self.idle[r] = None
                    return
                a, s = wake.value
                started = True
                yield from self.operate(r, "a", a, s)
                continue
            k = todo[ptr]
            p = self.pred[k]
            if p >= 0 and self.state[p] == PENDING:
                yield self.resolved[p]
            t = env.now
            ps = day.planned_start[k]
            ready = ps + d.late[i, r] if not started else ps - self.early * d.early[i, k]
            s = max(t, ready, self.surg_free.get(int(day.surg_idx[k]), float("-inf")))
            s = self.shift(s, r)
            ptr += 1
            if s >= limit or s + day.p50[k] > limit:
                hc = self.hold_cum[r]
                if s >= limit:
                    self.state[k] = SPILL
                else:
                    self.state[k] = BEDS if hc > 0 and s - hc + day.p50[k] <= limit else OVERRUN
                self.resolve(k)
                continue
            self.state[k] = RUN
            out.e_start[i, k] = s
            out.e_end[i, k] = s + d.dur[i, k]
            started = True
            self.surg_free[int(day.surg_idx[k])] = s + d.dur[i, k]
            self.resolve(k)
            yield from self.operate(r, "e", k, s)

    def arrivals(self):
        env, d, i, day = self.env, self.d, self.i, self.day
        for a in range(d.n_addon_slots):
            at = d.arr[i, a]
            if not at < float("inf"):
                break  # slots are sorted by arrival; the rest are empty
            yield env.timeout(at - env.now)
            for r in range(day.n_rooms):
                if self.idle[r] is not None and self.allowed(a, r):
                    s = self.shift(at, r)
                    if s < day.limit_min[r]:
                        wake, self.idle[r] = self.idle[r], None
                        self.start_addon(r, a, s)
                        wake.succeed((a, s))
                        break
            else:
                self.queue.append(a)

    def run(self) -> None:
        for r in range(self.day.n_rooms):
            self.env.process(self.room(r))
        self.env.process(self.arrivals())
        self.env.run()
        if (self.state == PENDING).any():
            raise RuntimeError("simulation ended with undecided cases (a surgeon chain could not be resolved)")


def run_day(day: SimDay, d: Draws, bump: bool, early_start_minutes: float) -> Outcome:
    """Every replication of the block, one SimPy environment each (the Runner)."""
    import numpy as np

    n, E, A, R = d.n, day.n_cases, d.n_addon_slots, day.n_rooms
    out = Outcome.empty(n, E, A, R)
    out.e_state[:] = np.where(d.cancel, PATIENT, PENDING) if E else out.e_state
    out.a_state[:] = np.where(np.isfinite(d.arr), A_SPILL, A_NONE) if A else out.a_state
    if R == 0:
        out.e_state[:] = np.where(d.cancel, PATIENT, SPILL) if E else out.e_state
        return out
    act, n_alive = active_lists(day, d.cancel) if E else (np.zeros((n, R, 1), int), np.zeros((n, R), int))
    pred = effective_predecessors(day, d.cancel) if E else np.zeros((n, 0), int)
    for i in range(n):
        DayModel(day, d, i, out, bump, early_start_minutes, act, n_alive, pred).run()
    return out
