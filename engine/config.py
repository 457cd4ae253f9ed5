"""Configuration files (TOML) read into pydantic models, with errors that name the file and key.

One adapter for every configuration loader: :func:`read_toml` turns unreadable files into an
:class:`InputError` naming the file; :func:`validate` turns pydantic's error locations into
``Problem(file, None, "section.key", message)`` rows, the form the command line prints and
exits 2 with. Validators raise ``ValueError("...")`` with the message the user should read.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Iterable, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.errors import InputError, Problem

M = TypeVar("M", bound=BaseModel)
# pydantic's type errors in the words the files' users read.
_KINDS = {"string_type": "a string", "dict_type": "a table", "model_type": "a table", "list_type": "a list", "int_type": "an integer",
          "float_type": "a number", "bool_type": "true or false"}


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a mapping; InputError (naming the file and, for bad TOML, the line)."""
    path = Path(path)
    fname = str(path)
    if not path.is_file():
        raise InputError("file not found", file=fname)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc}", file=fname) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", file=fname) from exc


def fail(problems: Iterable[tuple[tuple[str | int, ...], str]]) -> NoReturn:
    """Raise, from inside a validator, one error per ``(location, message)``.

    For checks across keys (an action a role names must be listed under ``[actions]``): the
    location is relative to the field or model being validated, and pydantic prefixes the outer
    keys, so the problem names ``roles.viewer.can`` rather than the section that was checked.
    """
    raise ValidationError.from_exception_data("config", [
        InitErrorDetails(type=PydanticCustomError("config", "{message}", {"message": msg}), loc=loc, input=None)
        for loc, msg in problems])


def problems_of(exc: ValidationError, fname: str, missing: str = "is required",
                extra: str = "unknown key") -> list[Problem]:
    """pydantic's errors -> Problems naming the key (``knobs.duration_inflation``)."""
    out = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or None
        if err["type"] == "missing":
            msg = missing
        elif err["type"] == "extra_forbidden":
            msg = extra
        elif err["type"] in _KINDS:
            msg = f"must be {_KINDS[err['type']]}, got {err.get('input')!r}"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
        out.append(Problem(fname, None, key, msg))
    return out


def validate(model: type[M], raw: Any, fname: str, **context: Any) -> M:
    """``model`` from ``raw``; InputError listing every problem, each naming file and key."""
    try:
        return model.model_validate(raw, context=context or None)
    except ValidationError as exc:
        raise InputError(problems_of(exc, fname)) from None
