"""A real Streamlit server and Debian's chromium driven by Playwright (no browser download)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine.forecast import Registry, train_and_register
from engine.generator import GeneratorParams, write_hospital
from engine.hospital import load_hospital
from tests.engine.forecast.conftest import FAST

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


# The environment the session's server runs with (its DATABASE_URL, HOSPITAL_DIR...), for tests that
# read what the app stored.
SERVER: dict[str, str] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("browser")
    folder = tmp / "browserhosp"
    write_hospital(folder, GeneratorParams(seed=11, rooms=5, history_days=300, horizon_days=5))
    train_and_register(load_hospital(folder).hospital, folder.name, FAST, Registry(tmp / "models"), test_days=60)
    port = _free_port()
    env = {**os.environ, "HOSPITAL_DIR": str(folder), "DATABASE_URL": f"sqlite:///{tmp / 'store.sqlite'}",
           "MODELS_DIR": str(tmp / "models"), "IMPORT_DIR": str(tmp / "imports"),
           # CP-SAT runs to its limit on every sequenced day; no browser test judges sequencing quality.
           "OR_PLAN_PARAMS": "sequence_time_limit_s=0.5"}
    SERVER.update(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("streamlit server did not start:\n" + proc.stdout.read().decode(errors="replace"))
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="session")
def browser():
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        "Debian's chromium is required for browser tests (apt-get install chromium; .ci/run does it)"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()
