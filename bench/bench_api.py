"""Load and fault benchmark of the service (issue 20): ``python -m engine serve`` on loopback, PostgreSQL behind a
small TCP proxy, N concurrent clients for D seconds mixing schedule reads (schedule, FHIR Appointment, room
iCal, health) and events (``case_running_long`` as jobs, ``wait=false``; some sent twice with the same key).

Every request is bounded in time (``--timeout``) and every client in count (``--max-events`` events; reads
until the end). ``--outage-at T --outage-s S``: the proxy refuses and cuts every connection for S seconds
from T on (the shared PostgreSQL itself is never touched); the service must answer 503 meanwhile, write
nothing half, and recover by itself. At the end every accepted job is waited for (bounded) and the store is
counted directly (not through the service): stored answers, ``replan`` audit entries and proposed versions
of the run's events against the accepted distinct keys.

Run (a fresh hospital is generated; a private schema in the ``test`` database, dropped after):
    nice -n 10 .venv/bin/python bench/bench_api.py --seconds 60 --clients 20
    nice -n 10 .venv/bin/python bench/bench_api.py --seconds 60 --clients 20 --outage-at 25 --outage-s 10
Prints one JSON document (P50/P95 per kind, error counts, the outage's answers, the counts).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
TOKENS = "bench-c:carol:coordinator,bench-l:lena:leadership,bench-v:vic:viewer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """A TCP proxy 127.0.0.1:port -> target; ``cut()`` closes the listener and every connection (the
    database "goes away": connections refused), ``restore()`` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def cut(self) -> None:
        ls, self._listener = self._listener, None
        if ls is not None:
            ls.close()
        with self._lock:
            socks, self._socks = self._socks, set()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._socks.discard(src)
                self._socks.discard(dst)


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))], 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--event-every", type=int, default=12, help="a client's every k-th request is an event")
    ap.add_argument("--max-events", type=int, default=3, help="events per client at most")
    ap.add_argument("--timeout", type=float, default=10.0, help="every request's time limit (s)")
    ap.add_argument("--outage-at", type=float, default=None, metavar="T", help="cut the database at T s")
    ap.add_argument("--outage-s", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--rooms", type=int, default=6)
    ap.add_argument("--solver", default="rules", choices=["rules", "highs", "glpk"], help="the re-plan of an event")
    args = ap.parse_args()

    import httpx
    import sqlalchemy as sa

    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    data = tmp / "hospital"
    subprocess.run([sys.executable, "-m", "engine", "generate", "--out", str(data), "--seed", str(args.seed),
                    "--rooms", str(args.rooms), "--history-days", "120", "--horizon-days", "10"], cwd=ROOT, check=True,
                   capture_output=True)
    schema = f"bench_api_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(PG_ADMIN)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    db = f"postgresql+psycopg2://{url.username}@127.0.0.1:{proxy.port}/{url.database}?options=-csearch_path%3D{schema}"
    port = free_port()
    env = {**os.environ, "OR_API_TOKENS": TOKENS, "OR_AUDIT_CHECKPOINT_DIR": str(tmp / "checkpoints"),
           "OR_AUDIT_KEY": os.environ.get("OR_AUDIT_KEY", "bench-audit-key-not-a-secret-0123456789"),
           "DATABASE_POOL_SIZE": "10", "DATABASE_MAX_OVERFLOW": "20"}
    env.pop("OR_API_TOKENS_FILE", None)
    env.pop("OR_AMQP_URL", None)
    log = open(tmp / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--data", str(data), "--port", str(port), "--db", db,
                             "--models", str(tmp / "models"), "--event-solver", args.solver], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    H = {k: {"Authorization": f"Bearer bench-{k}"} for k in "clv"}
    out: dict = {"clients": args.clients, "seconds": args.seconds, "seed": args.seed, "rooms": args.rooms,
                 "solver": args.solver, "store": "PostgreSQL through a TCP proxy", "load_before": os.getloadavg()}
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    if c.get("/api/v1/health", headers=H["v"]).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    raise SystemExit(f"serve exited {proc.returncode}: {(tmp / 'serve.log').read_text()[-2000:]}")
                time.sleep(0.5)
            day = "2027-01-04"
            job = c.post("/api/v1/plan", json={"date": day, "days": 1, "solver": "rules"}, headers=H["c"]).json()["id"]
            while (j := c.get(f"/api/v1/jobs/{job}", headers=H["c"]).json())["status"] not in ("done", "failed"):
                time.sleep(0.3)
            assert j["status"] == "done", j
            vid = j["result"]["version_id"]
            assert c.post(f"/api/v1/versions/{vid}/approve", json={"note": "bench"}, headers=H["l"]).status_code == 200
            r = c.post(f"/api/v1/versions/{vid}/publish", headers=H["c"])
            assert r.status_code == 200, r.text
            rows = c.get("/api/v1/schedule", params={"date": day}, headers=H["v"]).json()["schedule"]
        cases = [r["case_id"] for r in rows if r["status"] == "scheduled"]
        rooms = sorted({r["room_id"] for r in rows if r["room_id"]})
        out["cases_in_day"] = len(cases)

        lat: dict[str, list[float]] = {}
        results: list[tuple[float, str, int | str]] = []  # (t since start, kind, status or error name)
        accepted: dict[str, str] = {}  # idempotency key -> job id
        lock = threading.Lock()
        t_start = time.monotonic()
        stop_at = t_start + args.seconds

        def client(i: int) -> None:
            rng = random.Random(args.seed * 1000 + i)
            n, events, last_key = 0, 0, None
            with httpx.Client(base_url=base, timeout=args.timeout) as hc:
                while time.monotonic() < stop_at:
                    n += 1
                    if n % args.event_every == 0 and events < args.max_events:
                        if last_key is not None and rng.random() < 0.3:
                            key = last_key  # the same event again: applied once
                        else:
                            key = f"bench-{i}-{events}"
                            events += 1
                        kind, req = "event", ("POST", "/api/v1/events", {"params": {"wait": "false"}, "json": {
                            "type": "case_running_long", "case_id": cases[int(key.split("-")[1]) % len(cases)],
                            "extra_minutes": 5 + int(key.split("-")[2]) * 5, "at": f"{day}T07:00", "idempotency_key": key},
                            "headers": H["c"]})
                        last_key = key
                    else:
                        kind = rng.choice(["schedule", "schedule", "fhir", "ical", "health"])
                        path = {"schedule": "/api/v1/schedule", "fhir": "/fhir/Appointment", "health": "/api/v1/health",
                                "ical": f"/ical/room/{rng.choice(rooms)}.ics"}[kind]
                        req = ("GET", path, {"params": {"date": day} if kind != "health" else {}, "headers": H["v"]})
                    t0 = time.monotonic()
                    try:
                        r = hc.request(req[0], req[1], **req[2])
                        status: int | str = r.status_code
                        if kind == "event" and r.status_code == 202:
                            with lock:
                                accepted[req[2]["json"]["idempotency_key"]] = r.json()["id"]
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    ms = (time.monotonic() - t0) * 1000
                    with lock:
                        results.append((t0 - t_start, kind, status))
                        if status in (200, 202):
                            lat.setdefault(kind, []).append(ms)

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
        for t in threads:
            t.start()
        outage = None
        if args.outage_at is not None:
            time.sleep(max(0.0, t_start + args.outage_at - time.monotonic()))
            t_cut = time.monotonic() - t_start
            proxy.cut()
            time.sleep(args.outage_s)
            proxy.restore()
            outage = (t_cut, time.monotonic() - t_start)
        for t in threads:
            t.join(args.seconds + args.timeout + 30)
        out["load_during"] = os.getloadavg()
        out["requests"] = len(results)
        out["latency_ms"] = {k: {"n": len(v), "p50": pct(v, 0.5), "p95": pct(v, 0.95), "max": pct(v, 1.0)}
                             for k, v in sorted(lat.items())}
        reads = [x for k, v in lat.items() if k != "event" for x in v]
        out["latency_ms"]["all reads"] = {"n": len(reads), "p50": pct(reads, 0.5), "p95": pct(reads, 0.95)}

        def in_outage(t: float) -> bool:  # the cut, plus the time a request already running then may still take
            return outage is not None and outage[0] - args.timeout <= t <= outage[1] + 2

        errors = [(t, k, s) for t, k, s in results if s not in (200, 202) and not in_outage(t)]
        out["errors_outside_outage"] = len(errors)
        out["error_rate_outside_outage"] = round(len(errors) / max(1, len(results)), 4)
        out["error_examples"] = errors[:10]
        if outage is not None:
            during = [(t, k, s) for t, k, s in results if in_outage(t)]
            by: dict[str, int] = {}
            for _, _, s in during:
                by[str(s)] = by.get(str(s), 0) + 1
            ok_after = [t for t, k, s in results if t > outage[1] and s in (200, 202)]
            out["outage"] = {"from_s": round(outage[0], 1), "to_s": round(outage[1], 1), "answers_in_window": by,
                             "first_success_after_restore_s": round(min(ok_after) - outage[1], 2) if ok_after else None,
                             "non_503_failures_in_window": sum(1 for _, _, s in during if s not in (200, 202, 503))}

        # every accepted job to its end (bounded), then count the store directly
        done = failed = 0
        failures = []
        with httpx.Client(base_url=base, timeout=30) as c:
            deadline = time.monotonic() + 600
            pending = dict(accepted)
            while pending and time.monotonic() < deadline:
                for key, jid in list(pending.items()):
                    j = c.get(f"/api/v1/jobs/{jid}", headers=H["c"]).json()
                    if j.get("status") in ("done", "failed"):
                        pending.pop(key)
                        if j["status"] == "done":
                            done += 1
                        else:
                            failed += 1
                            failures.append({"key": key, "error": j.get("error")})
                time.sleep(0.5)
        keys = set(accepted)
        direct = sa.create_engine(f"{PG_ADMIN}?options=-csearch_path%3D{schema}")
        with direct.connect() as conn:
            stored = conn.execute(sa.text("SELECT idempotency_key, response_json FROM api_events")).all()
            replans = conn.execute(sa.text("SELECT payload_json FROM gov_audit_log WHERE kind = 'replan'")).all()
            props = conn.execute(sa.text("SELECT count(*) FROM gov_audit_log WHERE kind = 'recommendation'")).scalar_one()
        direct.dispose()
        answered = {k for k, r in stored if r}
        out["events"] = {"accepted_distinct_keys": len(keys), "jobs_done": done, "jobs_failed": failed,
                         "jobs_unfinished": len(pending), "stored_answers": len(answered),
                         "stored_without_answer": sum(1 for _, r in stored if not r),
                         "replan_audit_entries": len(replans), "recommendation_audit_entries_minus_plan": props - 1,
                         "lost": len(keys - answered), "unexpected": len(answered - keys),
                         "failures": failures[:5]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        proxy.cut()
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        out["serve_log_tail"] = (tmp / "serve.log").read_text()[-1500:].splitlines()[-8:]
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
