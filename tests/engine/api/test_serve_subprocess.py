"""`python -m engine serve` as a real process on a free loopback port (bounded waits, always killed): health with a
token, then the issue's journey over real HTTP: plan, approve, publish, post a cancellation, see the day re-planned,
publish the re-plan, read it back as a FHIR Bundle (validated by fhir.resources) and as an iCal feed."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.conftest import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"Bearer {token}",
                                                                         "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _journey(base: str) -> None:
    from fhir.resources.R4B.bundle import Bundle
    from icalendar import Calendar

    day = "2027-01-04"
    code, raw = _call("POST", f"{base}/api/v1/plan", "tok-c", {"date": day, "solver": "rules"})
    assert code == 202, raw
    job = json.loads(raw)["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        j = json.loads(_call("GET", f"{base}/api/v1/jobs/{job}", "tok-c")[1])
        if j["status"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert j["status"] == "done", j
    vid = j["result"]["version_id"]
    assert _call("POST", f"{base}/api/v1/versions/{vid}/approve", "tok-l", {})[0] == 200
    assert _call("POST", f"{base}/api/v1/versions/{vid}/publish", "tok-c")[0] == 200
    rows = json.loads(_call("GET", f"{base}/api/v1/schedule?date={day}", "tok-sub")[1])["schedule"]
    row = sorted((r for r in rows if r["status"] == "scheduled"), key=lambda r: r["start"])[-1]
    code, raw = _call("POST", f"{base}/api/v1/events", "tok-c", {"type": "case_cancelled", "case_id": row["case_id"],
                                                                 "at": f"{day}T07:00", "idempotency_key": "sub-1"})
    assert code == 200, raw
    ans = json.loads(raw)
    assert any(c["case_id"] == row["case_id"] and c["change"] == "removed" for c in ans["changes"])
    new = ans["version_id"]
    assert _call("POST", f"{base}/api/v1/versions/{new}/approve", "tok-l", {})[0] == 200
    assert _call("POST", f"{base}/api/v1/versions/{new}/publish", "tok-c")[0] == 200
    b = Bundle.model_validate(json.loads(_call("GET", f"{base}/fhir/Appointment?date={day}", "tok-sub")[1]))
    status = {e.resource.id: e.resource.status for e in b.entry}
    assert b.total == len(rows) and status[row["case_id"]] == "cancelled"
    cal = Calendar.from_ical(_call("GET", f"{base}/ical/room/{row['room_id']}.ics?date={day}", "tok-sub")[1])
    assert row["case_id"] not in {str(e["uid"]).split("@")[0] for e in cal.walk("VEVENT")}


def test_serve_on_loopback_health_then_a_cancellation_end_to_end(api_hospital, tmp_path) -> None:
    port = _free_port()
    env = {**os.environ, "OR_API_TOKENS": "tok-sub:sam:viewer,tok-c:carol:coordinator,tok-l:lena:leadership", "DATABASE_URL": f"sqlite:///{tmp_path / 's.sqlite'}"}
    env.pop("OR_API_TOKENS_FILE", None)
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--data", str(api_hospital), "--port", str(port),
                             "--models", str(tmp_path / "models"), "--event-solver", "rules"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/v1/health"
    try:
        deadline, body, last = time.monotonic() + 120, None, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                req = urllib.request.Request(url, headers={"Authorization": "Bearer tok-sub"})
                with urllib.request.urlopen(req, timeout=5) as r:
                    body = json.loads(r.read())
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = exc
                time.sleep(0.3)
        assert body is not None, f"no answer from serve: {last}; exit {proc.poll()}"
        assert body["status"] == "ok" and body["user"] == "sam" and body["hospital_id"] == api_hospital.name
        try:
            urllib.request.urlopen(url, timeout=5)
            raise AssertionError("health answered without a token")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        _journey(f"http://127.0.0.1:{port}")
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_serve_refuses_to_start_without_tokens(api_hospital, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OR_API_TOKENS", "OR_API_TOKENS_FILE")}
    r = subprocess.run([sys.executable, "-m", "engine", "serve", "--data", str(api_hospital), "--port", "1"],
                       cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "OR_API_TOKENS" in r.stderr
