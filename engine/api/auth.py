"""Bearer-token identity for the service: ``engine.governance.user_from_token`` (``OR_API_TOKENS`` or
``OR_API_TOKENS_FILE``), roles enforced by ``engine.governance.require``."""
from __future__ import annotations

from typing import Callable

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.errors import InputError
from engine.governance import User, require, user_from_token

bearer = HTTPBearer(auto_error=False, description="An API token from OR_API_TOKENS / OR_API_TOKENS_FILE")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"})


def current_user(cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> User:
    """The token's user; 401 without a bearer token or with an unknown one."""
    if cred is None or (cred.scheme or "").lower() != "bearer" or not cred.credentials.strip():
        raise _unauthorized("Authorization: Bearer <token> is required")
    try:
        return user_from_token(cred.credentials)
    except PermissionError:
        raise _unauthorized("the bearer token is not a known API token") from None
    except InputError as exc:  # a broken token configuration: refuse everyone, say where
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"the API tokens are misconfigured: {exc}") from exc


def needs(action: str) -> Callable[[User], User]:
    """A dependency: the signed-in user when their role may ``action`` (data/roles.toml), else 403."""

    def dep(user: User = Depends(current_user)) -> User:
        try:
            require(user, action)
        except PermissionError as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from exc
        return user

    return dep
