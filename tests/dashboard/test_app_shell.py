"""The app shell (dashboard/app.py): demo sign-in stated plainly and switchable off (issue 14, defects 3)."""
from __future__ import annotations

from tests.dashboard.conftest import app


def test_demo_sign_in_says_separation_of_duties_is_void(mini_env, monkeypatch):
    monkeypatch.delenv("OR_DEMO_SIGNIN", raising=False)
    at = app()
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="demo_role").value == "coordinator"
    warned = [w.value for w in at.sidebar.warning]
    assert any("anyone may sign in as any role: separation of duties is void" in w for w in warned)


def test_demo_sign_in_off_with_OR_DEMO_SIGNIN_0(mini_env, monkeypatch):
    monkeypatch.setenv("OR_DEMO_SIGNIN", "0")
    at = app()
    at.run()
    assert not at.exception, at.exception
    assert not [s for s in at.selectbox if s.key == "demo_role"]
    assert any("demo sign-in is off" in e.value for e in at.sidebar.error)
