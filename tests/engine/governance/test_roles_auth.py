"""Roles enforced in the engine, masking of patient data, sign-in with hashed credentials."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

import engine.governance.auth as auth
from engine.errors import InputError
from engine.governance import (
    LocalAuthenticator,
    User,
    authenticate,
    can,
    ensure_dev_users,
    hash_password,
    load_roles,
    mask_for_role,
    require,
    set_authenticator,
    user_from_claims,
    verify_password,
)

MATRIX = {
    # action: roles allowed
    "view_schedule": {"coordinator", "leadership", "governance", "viewer"},
    "view_patient_details": {"coordinator"},
    "propose": {"coordinator"},
    "override": {"coordinator"},
    "approve": {"leadership"},
    "reject": {"leadership"},
    "publish": {"coordinator", "leadership"},
    "rollback": {"coordinator", "leadership"},
    "view_audit": {"leadership", "governance"},
    "export_audit": {"governance"},
    "view_rules": {"coordinator", "leadership", "governance", "viewer"},
}


def test_permission_matrix() -> None:
    roles = load_roles()
    assert set(roles.names()) >= {"coordinator", "leadership", "governance", "viewer"}
    for action, allowed in MATRIX.items():
        for role in ("coordinator", "leadership", "governance", "viewer"):
            assert can(role, action) == (role in allowed), (action, role)
    m = roles.matrix()
    assert m.loc["approve", "leadership"] and not m.loc["approve", "viewer"]


def test_require_gives_plain_messages() -> None:
    require("leadership", "approve")
    require(User("ann", "coordinator"), "override")
    with pytest.raises(PermissionError, match=r"^The viewer role may not approve a proposed schedule: this needs Perioperative leadership\.$"):
        require("viewer", "approve")
    with pytest.raises(PermissionError, match=r"vic \(viewer\) may not export the audit log: this needs Governance board"):
        require(User("vic", "viewer"), "export_audit")
    with pytest.raises(PermissionError, match="Unknown role 'janitor'"):
        require("janitor", "view_schedule")
    with pytest.raises(ValueError, match="unknown action"):
        require("viewer", "fly")


def test_masking_for_non_clinical_roles(hospital) -> None:
    cases = hospital.cases.head(5).assign(patient_id=["P1", "P2", "P3", "P4", "P5"], notes="lives alone")
    for role in ("leadership", "governance", "viewer"):
        out = mask_for_role(cases, role)
        for col in ("patient_age", "patient_sex", "asa_class", "bmi", "patient_id", "procedure_name", "cancellation_reason", "notes"):
            assert (out[col] == "•••").all(), (role, col)
        assert (out["case_id"] == cases["case_id"]).all() and (out["service_line"] == cases["service_line"]).all()
    clinical = mask_for_role(cases, User("carol", "coordinator"))
    pd.testing.assert_frame_equal(clinical, cases)
    assert cases["patient_age"].dtype == "float64"  # the input is not changed
    with pytest.raises(PermissionError):
        mask_for_role(cases, "janitor")


def test_password_hashing() -> None:
    h = hash_password("correct horse battery")
    assert h.startswith("scrypt$16384$8$1$") and "correct horse" not in h
    assert h != hash_password("correct horse battery")  # salted
    assert verify_password("correct horse battery", h) and not verify_password("correct horse batter", h)
    p = hash_password("s3cret!", scheme="pbkdf2_sha256")
    assert p.startswith("pbkdf2_sha256$600000$") and verify_password("s3cret!", p) and not verify_password("S3cret!", p)
    assert not verify_password("x", "plain-text") and not verify_password("x", "scrypt$1$2")
    with pytest.raises(ValueError):
        hash_password("")


@pytest.fixture
def users_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "users.toml"
    path.write_text(
        f'[users.carol]\nrole = "coordinator"\npassword_hash = "{hash_password("carol-pw-1")}"\n\n'
        f'[users.lena]\nrole = "leadership"\npassword_hash = "{hash_password("lena-pw-2", "pbkdf2_sha256")}"\n'
    )
    monkeypatch.delenv("OR_USERS", raising=False)
    monkeypatch.setenv("OR_USERS_FILE", str(path))
    set_authenticator(None)
    yield path
    set_authenticator(None)


def test_authenticate_from_users_file(users_file: Path) -> None:
    assert authenticate("carol", "carol-pw-1") == User("carol", "coordinator", "carol")
    assert authenticate("lena", "lena-pw-2").role == "leadership"
    assert authenticate("carol", "wrong") is None
    assert authenticate("nobody", "carol-pw-1") is None
    assert authenticate("carol", "") is None
    text = users_file.read_text()
    assert "carol-pw-1" not in text and "lena-pw-2" not in text  # no plaintext stored


def test_users_from_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OR_USERS", f'[users.gina]\nrole = "governance"\npassword_hash = "{hash_password("g-pw")}"\n')
    set_authenticator(None)
    try:
        assert authenticate("gina", "g-pw").role == "governance"
    finally:
        set_authenticator(None)


def test_plaintext_or_bad_users_are_refused() -> None:
    with pytest.raises(InputError, match="plaintext passwords are refused"):
        LocalAuthenticator({"bob": {"role": "viewer", "password": "hunter2"}})
    with pytest.raises(InputError, match=r"users.bob.role.*must be one of"):
        LocalAuthenticator({"bob": {"role": "admin", "password_hash": hash_password("x")}})
    with pytest.raises(InputError, match="must be a scrypt"):
        LocalAuthenticator({"bob": {"role": "viewer", "password_hash": "md5$abc"}})


def test_dev_users_are_generated_not_committed(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secrets" / "users.toml"
    made = ensure_dev_users(path)
    assert set(made) == {"coordinator", "leadership", "governance", "viewer"}
    assert ensure_dev_users(path) is None  # generated once
    text = path.read_text()
    assert all(pw not in text for pw in made.values())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    a = LocalAuthenticator.__new__(LocalAuthenticator)
    import tomllib

    a.__init__(tomllib.loads(text)["users"], str(path))
    assert a.authenticate("leadership", made["leadership"]).role == "leadership"
    assert a.authenticate("leadership", made["viewer"]) is None
    # the default location is inside var/, which git ignores; nothing under data/ or the repo root holds users
    assert auth.DEV_USERS_FILE.parts[-3:] == ("var", "secrets", "users.toml")
    gitignore = (Path(auth.REPO) / ".gitignore").read_text().splitlines()
    assert "var/" in gitignore


def test_oidc_can_replace_local_sign_in() -> None:
    class FakeOIDC:
        def authenticate(self, username: str, password: str):
            return user_from_claims({"preferred_username": username, "or_role": "viewer"}) if password == "token-ok" else None

    set_authenticator(FakeOIDC())
    try:
        assert authenticate("zoe", "token-ok") == User("zoe", "viewer", "zoe")
        assert authenticate("zoe", "bad") is None
    finally:
        set_authenticator(None)
    with pytest.raises(PermissionError, match="no known role"):
        user_from_claims({"sub": "x", "or_role": "root"})
