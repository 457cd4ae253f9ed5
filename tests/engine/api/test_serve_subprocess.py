"""`python -m engine serve` as a real process on a free loopback port: health with a token (bounded, always killed)."""
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


def test_serve_answers_health_on_loopback_with_a_token(api_hospital, tmp_path) -> None:
    port = _free_port()
    env = {**os.environ, "OR_API_TOKENS": "tok-sub:sam:viewer", "DATABASE_URL": f"sqlite:///{tmp_path / 's.sqlite'}"}
    env.pop("OR_API_TOKENS_FILE", None)
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--data", str(api_hospital), "--port", str(port),
                             "--models", str(tmp_path / "models")], cwd=REPO_ROOT, env=env,
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
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_serve_refuses_to_start_without_tokens(api_hospital, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OR_API_TOKENS", "OR_API_TOKENS_FILE")}
    r = subprocess.run([sys.executable, "-m", "engine", "serve", "--data", str(api_hospital), "--port", "1"],
                       cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "OR_API_TOKENS" in r.stderr
