"""Configuration files (TOML) read into pydantic models, with errors that name the file and key.

One adapter for every configuration loader: :func:`read_toml` turns unreadable files into an
:class:`InputError` naming the file; :func:`validate` turns pydantic's error locations into
``Problem(file, None, "section.key", message)`` rows, the form the command line prints and
exits 2 with. Validators raise ``ValueError("...")`` with the message the user should read.

For files with many sections (the import mapping): :class:`Table` is a section whose unknown
keys are reported with the problems of its known keys, in the section's own words, and whose
list entries read ``patterns[0]``; :class:`Errors` collects problems across entries checked one
by one (with their pydantic kinds, so :func:`problems_of` words them the same way).
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, ClassVar, Iterable, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError, ValidatorFunctionWrapHandler, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.errors import InputError, Problem

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]
# One pydantic error: (kind, location, message, input).
Error = tuple[str, Loc, str, Any]
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


def errors_of(exc: ValidationError, prefix: Loc = ()) -> list[Error]:
    """pydantic's errors as ``(kind, location, message, input)``, locations under ``prefix``."""
    return [(e["type"], (*prefix, *e["loc"]), e["msg"], e.get("input")) for e in exc.errors()]


def raise_errors(errors: Iterable[Error]) -> NoReturn:
    """Raise errors (merged or moved) again as one ValidationError; kinds and inputs are kept."""
    raise ValidationError.from_exception_data("config", [
        InitErrorDetails(type=PydanticCustomError(kind, "{message}", {"message": msg}), loc=loc, input=value)
        for kind, loc, msg, value in errors])


class Errors(list[Error]):
    """Problems gathered while checking entries one by one, raised together (from a validator)."""

    def add(self, loc: Loc, message: str) -> None:
        self.append(("config", tuple(loc), message, None))

    def add_exc(self, exc: ValidationError, prefix: Loc = ()) -> None:
        self.extend(errors_of(exc, prefix))

    def raise_if_any(self) -> None:
        if self:
            raise_errors(self)


def _indexed(loc: Loc) -> Loc:
    """``("patterns", 0, "match")`` -> ``("patterns[0]", "match")``."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, int) and out and isinstance(out[-1], str):
            out[-1] = f"{out[-1]}[{part}]"
        else:
            out.append(part)
    return tuple(out)


class Table(BaseModel):
    """A section of a configuration file, checked as a whole.

    Unknown keys are problems worded by ``unknown_key`` (``{known}``: the known keys in order,
    ``{sorted}``: sorted), reported together with the problems of the known keys; a value that is
    not a table (or that :meth:`accepts` refuses) is one problem worded by ``not_a_table``; an
    empty value (YAML's ``key:``) is an empty table. List entries read ``patterns[0]``.
    """

    unknown_key: ClassVar[str] = "unknown key"
    not_a_table: ClassVar[str | None] = None  # None: pydantic's "must be a table, got ..."

    @classmethod
    def known_keys(cls) -> list[str]:
        return [f.alias or name for name, f in cls.model_fields.items()]

    @classmethod
    def accepts(cls, data: Any) -> bool:
        return isinstance(data, dict)

    @model_validator(mode="wrap")
    @classmethod
    def _table(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if data is None:
            data = {}
        if isinstance(data, cls):
            return data
        if not cls.accepts(data):
            if cls.not_a_table is None:
                return handler(data)
            raise ValueError(cls.not_a_table)
        known = cls.known_keys()
        words = {"known": ", ".join(known), "sorted": ", ".join(sorted(known))}
        errors: list[Error] = [("config", (str(k),), cls.unknown_key.format(**words), None)
                               for k in data if k not in known]
        try:
            out = handler({k: v for k, v in data.items() if k in known} if errors else data)
        except ValidationError as exc:
            errors += errors_of(exc)
        if errors:
            raise_errors([(kind, _indexed(loc), msg, value) for kind, loc, msg, value in errors])
        return out
