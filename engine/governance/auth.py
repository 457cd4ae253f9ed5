"""Simple sign-in with hashed credentials (standard library scrypt / PBKDF2), replaceable by OIDC.

Where users come from, first found wins (no secrets in the repository):

1. ``OR_USERS``: the users TOML as text (for a container's secret store);
2. ``OR_USERS_FILE``: a path to the users TOML;
3. ``.streamlit/secrets.toml`` beside the project, section ``[auth.users.<name>]`` (keep that file out of git);
4. the development default ``var/secrets/users.toml`` (``var/`` is git-ignored), generated on demand
   by :func:`ensure_dev_users` with random passwords that are shown once and never stored.

Users TOML::

    [users.alice]
    role = "coordinator"
    password_hash = "scrypt$16384$8$1$<salt base64>$<hash base64>"   # python -m engine.governance.auth hash

A plaintext ``password`` key is refused. The sign-in interface is :class:`Authenticator`
(``authenticate(username, password) -> User | None``); an OIDC provider replaces
:class:`LocalAuthenticator` through :func:`set_authenticator` and maps its claims with
:func:`user_from_claims`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import sys
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Protocol

from engine.errors import InputError, Problem
from engine.governance.roles import User, load_roles

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DEV_USERS_FILE = REPO / "var" / "secrets" / "users.toml"
STREAMLIT_SECRETS = REPO / ".streamlit" / "secrets.toml"

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
PBKDF2_ITERATIONS = 600_000


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def hash_password(password: str, scheme: str = "scrypt") -> str:
    """A salted hash string: ``scrypt$N$r$p$salt$hash`` or ``pbkdf2_sha256$iterations$salt$hash``."""
    if not isinstance(password, str) or not password:
        raise ValueError("password must be a non-empty text")
    salt = secrets.token_bytes(16)
    if scheme == "scrypt":
        dk = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
        return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(dk)}"
    if scheme == "pbkdf2_sha256":
        dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)
        return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${_b64(salt)}${_b64(dk)}"
    raise ValueError(f"scheme must be scrypt or pbkdf2_sha256, got {scheme!r}")


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison); False on any malformed hash."""
    try:
        parts = stored.split("$")
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt, want = base64.b64decode(parts[4]), base64.b64decode(parts[5])
            got = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(want), maxmem=2 ** 27)
        elif parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            got = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(parts[1]), dklen=len(want))
        else:
            return False
    except (ValueError, TypeError, AttributeError):
        return False
    return hmac.compare_digest(got, want)


class Authenticator(Protocol):
    """Anything that signs people in: the local users file today, an OIDC provider later."""

    def authenticate(self, username: str, password: str) -> User | None: ...


@dataclass(frozen=True)
class _Account:
    name: str
    role: str
    password_hash: str
    display_name: str


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A real hash of a random password: unknown users cost as much time as known ones."""
    return hash_password(secrets.token_urlsafe(16))


class LocalAuthenticator:
    """Users and password hashes from a TOML mapping (see the module docstring)."""

    def __init__(self, users: Mapping[str, Mapping[str, Any]], source: str = "users") -> None:
        roles = load_roles()
        problems = []
        self.accounts: dict[str, _Account] = {}
        self.source = source
        for name, u in users.items():
            if not isinstance(u, Mapping):
                problems.append(Problem(source, None, f"users.{name}", "must be a table with role and password_hash"))
                continue
            if "password" in u:
                problems.append(Problem(source, None, f"users.{name}.password",
                                        "plaintext passwords are refused: store password_hash "
                                        "(python -m engine.governance.auth hash)"))
            ph = u.get("password_hash")
            if not isinstance(ph, str) or not ph.startswith(("scrypt$", "pbkdf2_sha256$")):
                problems.append(Problem(source, None, f"users.{name}.password_hash", "must be a scrypt$... or pbkdf2_sha256$... hash"))
            role = u.get("role")
            if role not in roles.roles:
                problems.append(Problem(source, None, f"users.{name}.role", f"{role!r} must be one of {', '.join(roles.names())}"))
            if not any(p.column and p.column.startswith(f"users.{name}.") for p in problems):
                self.accounts[name] = _Account(name, str(role), str(ph), str(u.get("display_name", name)))
        if problems:
            raise InputError(problems)

    def authenticate(self, username: str, password: str) -> User | None:
        acct = self.accounts.get(username or "")
        ok = verify_password(password or "", acct.password_hash if acct else _dummy_hash())
        if acct is None or not ok:
            log.info("sign-in refused for %r", username)
            return None
        return User(acct.name, acct.role, acct.display_name)


def _read_users_toml(text: str, source: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"cannot read the users: {exc}", file=source) from exc
    return data.get("users") or {}


def users_source() -> tuple[str, dict[str, Any]] | None:
    """(where from, {user: {role, password_hash, ...}}) of the configured users, or None."""
    if os.environ.get("OR_USERS"):
        return "environment variable OR_USERS", _read_users_toml(os.environ["OR_USERS"], "OR_USERS")
    if os.environ.get("OR_USERS_FILE"):
        p = Path(os.environ["OR_USERS_FILE"])
        if not p.exists():
            raise InputError(f"OR_USERS_FILE points to {p}, which does not exist", file=str(p))
        return str(p), _read_users_toml(p.read_text(encoding="utf-8"), str(p))
    if STREAMLIT_SECRETS.exists():
        try:
            data = tomllib.loads(STREAMLIT_SECRETS.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"cannot read the secrets: {exc}", file=str(STREAMLIT_SECRETS)) from exc
        users = (data.get("auth") or {}).get("users")
        if users:
            return str(STREAMLIT_SECRETS), users
    if DEV_USERS_FILE.exists():
        return str(DEV_USERS_FILE), _read_users_toml(DEV_USERS_FILE.read_text(encoding="utf-8"), str(DEV_USERS_FILE))
    return None


_authenticator: Authenticator | None = None
_loaded_from: tuple[str, str] | None = None  # (source, content) the local users were read from


def set_authenticator(auth: Authenticator | None) -> None:
    """Install another sign-in provider (e.g. OIDC); None returns to the configured users."""
    global _authenticator, _loaded_from
    _authenticator, _loaded_from = auth, None


def get_authenticator() -> Authenticator:
    """The installed provider, else the local users (re-read when their source changes)."""
    global _authenticator, _loaded_from
    if _authenticator is not None and _loaded_from is None:
        return _authenticator
    src = users_source()
    if src is None:
        raise PermissionError("No users are configured: set OR_USERS_FILE (or OR_USERS), or run "
                              "`python -m engine.governance.auth init-dev` for a development default.")
    key = (src[0], repr(sorted((k, sorted(dict(v).items())) for k, v in src[1].items())))
    if _authenticator is None or key != _loaded_from:
        _authenticator, _loaded_from = LocalAuthenticator(src[1], src[0]), key
    return _authenticator


def authenticate(username: str, password: str) -> User | None:
    """The signed-in user, or None when the name or password is wrong."""
    return get_authenticator().authenticate(username, password)


def user_from_claims(claims: Mapping[str, Any], role_claim: str = "or_role", name_claim: str = "preferred_username") -> User:
    """Map an OIDC ID token's claims to a User (the provider has checked the credentials)."""
    roles = load_roles()
    role = claims.get(role_claim)
    if role not in roles.roles:
        raise PermissionError(f"the identity provider gave no known role in claim {role_claim!r} (got {role!r})")
    name = str(claims.get(name_claim) or claims.get("sub") or "")
    if not name:
        raise PermissionError(f"the identity provider gave no user name ({name_claim!r} or 'sub')")
    return User(name, str(role), str(claims.get("name", name)))


# ------------------------------------------------------------------ demo sign-in switch

DEMO_SIGNIN_ENV = "OR_DEMO_SIGNIN"
_OFF = ("0", "false", "no", "off")


def demo_signin_enabled() -> bool:
    """False when ``OR_DEMO_SIGNIN`` is 0/false/no/off: the no-users demo sign-in by role is switched off.

    On by default (the demo). While it is on and no users are configured, anyone may act as any
    role, so separation of duties is void: the dashboard says so in its sidebar.
    """
    return os.environ.get(DEMO_SIGNIN_ENV, "1").strip().lower() not in _OFF


def demo_signin_active() -> bool:
    """True when the dashboard offers the demo sign-in: it is enabled and no users are configured."""
    return demo_signin_enabled() and users_source() is None


# ------------------------------------------------------------------ API / command-line tokens

TOKEN_ENV, TOKENS_ENV, TOKENS_FILE_ENV = "OR_TOKEN", "OR_API_TOKENS", "OR_API_TOKENS_FILE"


def hash_token(token: str) -> str:
    """``sha256$<hex>`` of a token, for ``OR_API_TOKENS_FILE`` (tokens are long random strings, so a plain
    digest is enough; the file never holds a token itself)."""
    if not isinstance(token, str) or not token.strip():
        raise ValueError("token must be a non-empty text")
    return "sha256$" + hashlib.sha256(token.strip().encode()).hexdigest()


def api_tokens() -> tuple[str, list[tuple[str, User]]]:
    """(where from, [(token hash, user)]) from ``OR_API_TOKENS`` ("TOKEN:USER:ROLE[,...]") or
    ``OR_API_TOKENS_FILE`` (one ``sha256$<hex>:USER:ROLE`` per line, ``#`` comments; hashes only)."""
    roles = load_roles()
    problems: list[Problem] = []
    out: list[tuple[str, User]] = []

    def add(source: str, row: int | None, token_or_hash: str, user: str, role: str, hashed: bool) -> None:
        if role not in roles.roles:
            problems.append(Problem(source, row, "role", f"{role!r} must be one of {', '.join(roles.names())}"))
        elif not user:
            problems.append(Problem(source, row, "user", "the user name is empty"))
        else:
            out.append((token_or_hash if hashed else hash_token(token_or_hash), User(user, role)))

    if os.environ.get(TOKENS_ENV):
        source = f"environment variable {TOKENS_ENV}"
        for i, item in enumerate(x for x in os.environ[TOKENS_ENV].split(",") if x.strip()):
            parts = [x.strip() for x in item.split(":")]
            if len(parts) != 3 or not parts[0]:
                problems.append(Problem(TOKENS_ENV, i + 1, None, "each entry must be TOKEN:USER:ROLE"))
                continue
            add(TOKENS_ENV, i + 1, parts[0], parts[1], parts[2], False)
    elif os.environ.get(TOKENS_FILE_ENV):
        path = Path(os.environ[TOKENS_FILE_ENV])
        source = str(path)
        if not path.exists():
            raise InputError(f"{TOKENS_FILE_ENV} points to {path}, which does not exist", file=str(path))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = [x.strip() for x in line.split(":")]
            if len(parts) != 3:
                problems.append(Problem(str(path), i + 1, None, "each line must be sha256$<hex>:USER:ROLE"))
            elif not (parts[0].startswith("sha256$") and len(parts[0]) == 71):
                problems.append(Problem(str(path), i + 1, "token", "must be a token hash (python -m engine.governance.auth "
                                                                  "hash-token); plaintext tokens are refused in this file"))
            else:
                add(str(path), i + 1, parts[0], parts[1], parts[2], True)
    else:
        raise PermissionError(f"No API tokens are configured: set {TOKENS_ENV}=\"TOKEN:USER:ROLE[,...]\" or "
                              f"{TOKENS_FILE_ENV} (a file of token hashes).")
    if problems:
        raise InputError(problems)
    return source, out


def user_from_token(token: str | None = None, user: str | None = None) -> User:
    """The user an API/command-line token belongs to (``token`` defaults to ``OR_TOKEN``).

    ``user`` (e.g. ``--user U``) must name the token's own user: it selects nothing, it is checked.
    PermissionError, in plain words, when the token is missing or unknown, or belongs to someone else.
    """
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    if not token or not token.strip():
        raise PermissionError(f"Set {TOKEN_ENV} to your API token: governance commands take the identity from the "
                              "environment, never a password on the command line.")
    _, entries = api_tokens()
    want = hash_token(token)
    found = None
    for h, u in entries:  # compare against every entry: the time taken does not reveal which one matched
        if hmac.compare_digest(h, want):
            found = u
    if found is None:
        raise PermissionError(f"{TOKEN_ENV} is not a known API token.")
    if user is not None and user != found.name:
        raise PermissionError(f"--user {user} does not match the token in {TOKEN_ENV}, which belongs to {found.name}.")
    return found


DEV_USERS = {"coordinator": "coordinator", "leadership": "leadership", "governance": "governance", "viewer": "viewer"}


def ensure_dev_users(path: str | Path | None = None) -> dict[str, str] | None:
    """Generate the development users file (one user per role, random passwords) if none exists.

    Returns {user: password} once, when the file is created (show it to the developer; it is
    not stored anywhere), else None. The file holds only hashes and is readable by its owner only.
    """
    p = Path(path) if path else DEV_USERS_FILE
    if p.exists():
        return None
    passwords = {user: secrets.token_urlsafe(12) for user in DEV_USERS}
    text = "# Development users, generated; holds hashes only. Delete this file to generate new passwords.\n\n"
    text += "\n".join(f'[users.{u}]\nrole = "{DEV_USERS[u]}"\npassword_hash = "{hash_password(pw)}"\n' for u, pw in passwords.items())
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    log.warning("generated development users in %s", p)
    return passwords


def _main(argv: list[str]) -> int:
    """``python -m engine.governance.auth hash`` (reads a password, prints its hash), ``hash-token`` (the same for an
    API token, for ``OR_API_TOKENS_FILE``) or ``init-dev``."""
    import getpass

    cmd = argv[0] if argv else ""
    if cmd == "hash":
        pw = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        print(hash_password(pw))
        return 0
    if cmd == "init-dev":
        made = ensure_dev_users()
        if made is None:
            print(f"{DEV_USERS_FILE} exists; delete it to generate new development passwords.")
            return 0
        print(f"Development users written to {DEV_USERS_FILE} (hashes only). Passwords, shown once:")
        for u, pw in made.items():
            print(f"  {u:12s} {pw}")
        return 0
    if cmd == "hash-token":
        tok = getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        print(hash_token(tok))
        return 0
    print("usage: python -m engine.governance.auth hash | hash-token | init-dev", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
