"""The service on the mini hospital: SQLite store in a tmp path, an empty model registry (booked-minute
forecasts), the rules solver, tokens for every role; FastAPI's TestClient in-process (no network)."""
from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from engine.api import Service, ServiceParams, create_app

TOKENS = {"coordinator": "tok-carol", "coordinator2": "tok-dave", "leadership": "tok-lena",
          "governance": "tok-gina", "viewer": "tok-vic"}
TOKEN_ENV = "tok-carol:carol:coordinator,tok-dave:dave:coordinator,tok-lena:lena:leadership,tok-gina:gina:governance,tok-vic:vic:viewer"
DAY = "2027-01-04"


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


@pytest.fixture
def tokens(monkeypatch):
    monkeypatch.delenv("OR_API_TOKENS_FILE", raising=False)
    monkeypatch.setenv("OR_API_TOKENS", TOKEN_ENV)


@pytest.fixture
def api_hospital(mini_hospital):
    """The mini hospital with freshness thresholds its own small feeds meet (history ends 2026-12-20,
    blocks two days ahead), so the feeds gate lets a publication through."""
    with open(mini_hospital / "settings.toml", "a") as fh:
        fh.write("\n[freshness]\ncases_max_age_days = 30\nblocks_min_days_ahead = 1\nstaffing_min_days_ahead = 1\n")
    return mini_hospital


@pytest.fixture
def service(api_hospital, tmp_path, tokens):
    svc = Service(ServiceParams(data_dir=api_hospital, db_url=f"sqlite:///{tmp_path / 'store.sqlite'}",
                                models_dir=tmp_path / "models", event_solver="rules"))
    yield svc
    svc.close()


@pytest.fixture
def client(service):
    with TestClient(create_app(service=service)) as c:
        yield c


def wait_job(client: TestClient, job_id: str, who: str = "coordinator", timeout_s: float = 120.0) -> dict:
    """Poll a job until it is done or failed (bounded)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        j = client.get(f"/api/v1/jobs/{job_id}", headers=auth(who)).json()
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished after {timeout_s} s: {j}")


def plan_and_publish(client: TestClient, day: str = DAY) -> int:
    """Plan (rules) -> approve (leadership) -> publish (coordinator); the published version id."""
    r = client.post("/api/v1/plan", json={"date": day, "days": 1, "solver": "rules"}, headers=auth("coordinator"))
    assert r.status_code == 202, r.text
    j = wait_job(client, r.json()["id"])
    assert j["status"] == "done", j
    vid = j["result"]["version_id"]
    r = client.post(f"/api/v1/versions/{vid}/approve", json={"note": "ok"}, headers=auth("leadership"))
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/versions/{vid}/publish", headers=auth("coordinator"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "published"
    return vid
