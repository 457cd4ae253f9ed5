"""Token file (hashes only) and PHI masking for non-clinical roles over the API; the store on PostgreSQL."""
from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from engine.api import Service, ServiceParams, create_app
from engine.governance import User, hash_token
from tests.conftest import pg_private_schema
from tests.engine.api.conftest import DAY, auth, plan_and_publish, wait_job


def test_token_file_holds_hashes_only(api_hospital, tmp_path, monkeypatch) -> None:
    f = tmp_path / "tokens"
    f.write_text(f"# API tokens\n{hash_token('s3cret-token')}:olga:coordinator\n")
    monkeypatch.delenv("OR_API_TOKENS", raising=False)
    monkeypatch.setenv("OR_API_TOKENS_FILE", str(f))
    svc = Service(ServiceParams(data_dir=api_hospital, db_url=f"sqlite:///{tmp_path / 's.sqlite'}", models_dir=tmp_path / "m"))
    try:
        with TestClient(create_app(service=svc)) as c:
            r = c.get("/api/v1/health", headers={"Authorization": "Bearer s3cret-token"})
            assert r.status_code == 200 and r.json()["user"] == "olga"
            assert c.get("/api/v1/health", headers={"Authorization": f"Bearer {hash_token('s3cret-token')}"}).status_code == 401
            f.write_text("plain-token:olga:coordinator\n")  # a plaintext token in the file: refused for everyone
            r = c.get("/api/v1/health", headers={"Authorization": "Bearer plain-token"})
            assert r.status_code == 503 and "misconfigured" in r.text
    finally:
        svc.close()


def test_patient_details_in_reasons_are_masked_for_non_clinical_roles(client, service) -> None:
    r = client.post("/api/v1/plan", json={"date": DAY, "solver": "rules"}, headers=auth("coordinator"))
    vid = wait_job(client, r.json()["id"])["result"]["version_id"]
    s = service.gov.version(vid).schedule.copy()
    s["reason"] = "longer than usual: patient age 81, ASA 4"
    newer = service.gov.propose(service.hospital_id, s, User("carol", "coordinator"),
                                horizon=(pd.Timestamp(DAY), pd.Timestamp(DAY)))
    got = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer")).json()
    assert got["versions"][0]["version_id"] == newer.version_id  # the newest proposal is read
    seen = {who: client.get("/api/v1/schedule", params={"date": DAY}, headers=auth(who)).json()["schedule"]
            for who in ("coordinator", "viewer", "leadership")}
    assert all("ASA 4" in r["reason"] for r in seen["coordinator"])
    for who in ("viewer", "leadership"):
        assert seen[who] and all("ASA" not in r["reason"] and "age 81" not in r["reason"] for r in seen[who]), who


def test_service_on_postgresql(api_hospital, tmp_path, tokens, pg_url) -> None:
    with pg_private_schema("api_test") as url:
        svc = Service(ServiceParams(data_dir=api_hospital, db_url=url, models_dir=tmp_path / "m", event_solver="rules"))
        try:
            with TestClient(create_app(service=svc)) as c:
                vid = plan_and_publish(c)
                sched = svc.gov.version(vid).schedule
                gone = sched[sched["status"] == "scheduled"].iloc[0]["case_id"]
                body = {"type": "case_cancelled", "case_id": gone, "at": f"{DAY}T07:00", "idempotency_key": "pg-1"}
                a = c.post("/api/v1/events", json=body, headers=auth("coordinator"))
                b = c.post("/api/v1/events", json=body, headers=auth("coordinator"))
                assert a.status_code == b.status_code == 200 and a.json() == b.json()
                assert b.headers["idempotent-replay"] == "true"
        finally:
            svc.close()
