"""Entity clean-up (the mapping's ``clean:`` section): one surgeon, procedure code and service line
per real thing, however the export spells it.

Runs on the mapped cases frame (contract columns ``surgeon_id``, ``procedure_code``,
``service_line``) before rooms, surgeons and settings are derived, so the merged values are what
validation sees. Every merge is reported; a merge that is not certain is never made:

- surgeons (``normalise: true``): ``Smith, John``, ``SMITH JOHN``, ``Dr. John Smith`` and
  ``J. Smith (10234)`` are one surgeon. An explicit id in brackets wins; otherwise the id is
  ``S-`` + a normalised ``last-first`` key. An initial (``J. Smith``) or a bare last name joins a
  full name only when exactly one surgeon fits; a name that fits two is left as it is and listed
  as not merged (ambiguous). Values that already look like ids (a digit, no spaces) stay as they are;
- procedure codes (``strip_modifiers: true``): ``27447-RT``, ``27447 59``, ``27447-59-LT`` -> ``27447``;
- service lines: ``aliases`` (matched ignoring case) and ``fold_case`` (spellings equal ignoring
  case and spacing become one: a name from ``settings.service_lines`` or an alias target, else the
  most frequent spelling).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from engine.contract import UNKNOWN_SURGEON

__all__ = ["CleanRules", "Merge", "NotMerged", "SurgeonRules", "CodeRules", "ServiceRules",
           "clean_cases", "parse_clean", "strip_modifiers", "suggest_clean_lines"]

# An id in brackets has a digit: 'Smith, John (10234)'; 'Smith, John (Ortho)' is no id.
_ID_IN_NAME = re.compile(r"\(\s*([A-Za-z0-9_-]*\d[A-Za-z0-9_-]*)\s*\)\s*$")
_BARE_ID = re.compile(r"^[A-Za-z_-]*\d[\w-]*$")  # has a digit, no spaces: already an id
_TITLES = {"dr", "prof", "professor", "md", "mr", "mrs", "ms", "miss", "frcs", "phd", "mbbs", "dds", "facs"}
# CPT/HCPCS modifiers are two characters after the code, separated by '-', a space, ':' or ','.
_MODIFIERS = re.compile(r"^([A-Za-z0-9]{3,})((?:\s*[-\s:,]\s*[A-Za-z0-9]{2})+)$")


# ---------------------------------------------------------------------------------------------
# The rules (parsed from the mapping)

@dataclass(frozen=True)
class SurgeonRules:
    normalise: bool = False
    aliases: dict[str, str] = field(default_factory=dict)  # casefolded spelling -> name or id
    id_prefix: str = "S-"


@dataclass(frozen=True)
class CodeRules:
    strip_modifiers: bool = False


@dataclass(frozen=True)
class ServiceRules:
    fold_case: bool = False
    aliases: dict[str, str] = field(default_factory=dict)  # folded spelling -> service line


@dataclass(frozen=True)
class CleanRules:
    """The ``clean:`` section; ``None`` parts do nothing."""

    surgeons: SurgeonRules | None = None
    procedure_codes: CodeRules | None = None
    service_lines: ServiceRules | None = None


_SECTIONS = {"surgeons": ("normalise", "aliases", "id_prefix"),
             "procedure_codes": ("strip_modifiers",),
             "service_lines": ("fold_case", "aliases")}


def _fold_space(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def parse_clean(raw: Any, errs: Any) -> CleanRules | None:
    """``clean:`` -> CleanRules; problems go to ``errs.add(key, message)`` naming ``clean.<...>``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        errs.add("clean", f"must be a mapping with any of {', '.join(_SECTIONS)}")
        return None
    parts: dict[str, Any] = {}
    for name, body in raw.items():
        key = f"clean.{name}"
        if name not in _SECTIONS:
            errs.add(key, f"unknown key (known: {', '.join(_SECTIONS)})")
            continue
        if body is None:
            continue
        if not isinstance(body, dict):
            errs.add(key, f"must be a mapping ({', '.join(_SECTIONS[name])})")
            continue
        for k in body:
            if k not in _SECTIONS[name]:
                errs.add(f"{key}.{k}", f"unknown key (known: {', '.join(_SECTIONS[name])})")
        flags = {}
        for k in ("normalise", "strip_modifiers", "fold_case"):
            if k in body:
                if not isinstance(body[k], bool):
                    errs.add(f"{key}.{k}", f"must be true or false, got {body[k]!r}")
                flags[k] = body[k] is True
        aliases: dict[str, str] = {}
        if "aliases" in body:
            aliases = _parse_aliases(body["aliases"], f"{key}.aliases", errs)
        if name == "surgeons":
            prefix = body.get("id_prefix", "S-")
            if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", prefix):
                errs.add(f"{key}.id_prefix", f"must be letters, digits, '-' or '_', got {prefix!r}")
                prefix = "S-"
            parts[name] = SurgeonRules(normalise=flags.get("normalise", False), aliases=aliases,
                                       id_prefix=prefix)
        elif name == "procedure_codes":
            parts[name] = CodeRules(strip_modifiers=flags.get("strip_modifiers", False))
        else:
            parts[name] = ServiceRules(fold_case=flags.get("fold_case", False), aliases=aliases)
    return CleanRules(**parts)


def _parse_aliases(raw: Any, key: str, errs: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        errs.add(key, "must be a non-empty mapping of spelling -> the name it means")
        return {}
    out: dict[str, str] = {}
    for src, dst in raw.items():
        if src is None or not str(src).strip() or dst is None or isinstance(dst, (dict, list, bool)) \
                or not str(dst).strip():
            errs.add(f"{key}.{src}", "each alias maps a non-empty spelling to a non-empty name")
            continue
        folded = _fold_space(src)
        if folded in out and out[folded] != str(dst).strip():
            errs.add(f"{key}.{src}", "clashes with another alias (keys match ignoring case)")
            continue
        out[folded] = str(dst).strip()
    return out


# ---------------------------------------------------------------------------------------------
# What was merged

def _quote_list(values: list[str]) -> str:
    q = [f"'{v}'" for v in values]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + " and " + q[-1]


def _n_cases(n: int) -> str:
    return f"{n} case" if n == 1 else f"{n} cases"


@dataclass(frozen=True)
class Merge:
    """Several spellings (``spellings``, most cases first) that became one value ``into``."""

    kind: str  # surgeon | procedure code | service line
    into: str
    spellings: tuple[str, ...]
    cases: int

    @property
    def text(self) -> str:
        return f"{self.kind} {_quote_list(list(self.spellings))} \u2192 {self.into} ({_n_cases(self.cases)})"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "into": self.into, "spellings": list(self.spellings),
                "cases": self.cases, "text": self.text}


@dataclass(frozen=True)
class NotMerged:
    """A value left as it was because merging it would be a guess."""

    kind: str
    value: str
    kept_as: str
    candidates: tuple[str, ...]
    cases: int
    reason: str = "ambiguous"

    @property
    def text(self) -> str:
        return (f"{self.kind} '{self.value}' not merged: {self.reason} (could be "
                f"{' or '.join(self.candidates)}); kept as '{self.kept_as}' ({_n_cases(self.cases)})")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "kept_as": self.kept_as,
                "candidates": list(self.candidates), "cases": self.cases, "reason": self.reason,
                "text": self.text}


# ---------------------------------------------------------------------------------------------
# Surgeons

def _fold(text: str) -> str:
    """ASCII lower-case letters and digits only: 'O'Brien' -> 'obrien', 'Müller' -> 'muller'."""
    t = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in t if not unicodedata.combining(c)).lower())


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s.]+", text) if w and _fold(w) and _fold(w) not in _TITLES]


@dataclass
class _Name:
    explicit_id: str | None
    keys: tuple[tuple[str, str], ...]  # candidate (last, first) keys, the default first; () = id only

    @property
    def full(self) -> bool:
        return len(self.keys) > 0 and len(self.keys[0][1]) > 1


def _parse_name(text: str, prefix: str) -> _Name | None:
    """A surgeon cell -> its explicit id and (last, first) key candidates; None if unreadable."""
    if prefix and re.fullmatch(re.escape(prefix) + r"[a-z0-9]+(-[a-z0-9]+)?", text):
        return _Name(text, ())  # an id this clean-up made (a cleaned file imported again)
    m = _ID_IN_NAME.search(text)
    explicit = m.group(1) if m else None
    name = text[:m.start()] if m else text
    if explicit is None and _BARE_ID.match(text):
        return _Name(text, ())
    if "," in name:
        last_part, _, first_part = name.partition(",")
        last = _fold("".join(_words(last_part)))
        firsts = _words(first_part)
        if not last:
            return _Name(explicit, ()) if explicit else None
        return _Name(explicit, ((last, _fold(firsts[0]) if firsts else ""),))
    words = _words(name)
    if not words:
        return _Name(explicit, ()) if explicit else None
    if len(words) == 1:
        return _Name(explicit, ((_fold(words[0]), ""),))
    if len(_fold(words[0])) == 1:  # J. Smith
        return _Name(explicit, ((_fold(words[-1]), _fold(words[0])),))
    if len(words) == 2 and len(_fold(words[1])) == 1:  # Smith J
        return _Name(explicit, ((_fold(words[0]), _fold(words[1])),))
    first_last = (_fold(words[-1]), _fold(words[0]))
    last_first = (_fold(words[0]), _fold(words[1]))
    letters = [c for c in name if c.isalpha()]
    shouting = bool(letters) and all(c.isupper() for c in letters)
    # Reporting systems write upper-case names LAST FIRST; mixed case reads First Last.
    return _Name(explicit, (last_first, first_last) if shouting else (first_last, last_first))


def _clean_surgeons(values: pd.Series, rules: SurgeonRules) -> tuple[pd.Series, list[NotMerged]]:
    counts = Counter(v for v in values.dropna().astype(str) if v and v != UNKNOWN_SURGEON)

    def alias(v: str) -> str:
        return rules.aliases.get(_fold_space(v), v)

    if not rules.normalise:
        return values.map(lambda v: alias(v) if isinstance(v, str) else v), []
    parsed = {raw: _parse_name(alias(raw), rules.id_prefix) for raw in counts}
    # Keys read without doubt (a comma, an explicit id, or a single order): they decide the order
    # of two-word names that could be read either way.
    known = {p.keys[0] for p in parsed.values() if p and len(p.keys) == 1 and p.full}
    key_of: dict[str, tuple[str, str]] = {}
    ambiguous: dict[str, tuple[tuple[str, str], ...]] = {}
    for raw, p in parsed.items():
        if p is None or not p.keys:
            continue
        if len(p.keys) == 1:
            key_of[raw] = p.keys[0]
            continue
        hits = [k for k in p.keys if k in known]
        if len(hits) == 2:
            ambiguous[raw] = tuple(hits)
        else:
            key_of[raw] = hits[0] if hits else p.keys[0]
    full_keys = {k for raw, k in key_of.items() if len(k[1]) > 1}
    ids_of: dict[tuple[str, str], set[str]] = {}
    for raw, k in key_of.items():
        if k in full_keys and parsed[raw].explicit_id:
            ids_of.setdefault(k, set()).add(parsed[raw].explicit_id)
    # Initials and bare last names join a full name only when exactly one fits.
    linked_ids: list[tuple[tuple[str, str], str]] = []
    for raw, k in list(key_of.items()):
        if k in full_keys:
            continue
        p = parsed[raw]
        fits = sorted(f for f in full_keys if f[0] == k[0] and f[1].startswith(k[1]))
        same_id = [f for f in fits if p.explicit_id and p.explicit_id in ids_of.get(f, set())]
        if same_id:
            key_of[raw] = same_id[0]
        elif len(fits) == 1:
            key_of[raw] = fits[0]
            if p.explicit_id:
                linked_ids.append((fits[0], p.explicit_id))
        elif len(fits) > 1:
            ambiguous[raw] = tuple(fits)
            del key_of[raw]
    for k, eid in linked_ids:
        ids_of.setdefault(k, set()).add(eid)

    def key_id(k: tuple[str, str]) -> str | None:
        ids = ids_of.get(k, set())
        if len(ids) > 1:
            return None  # two people of one name: only their explicit ids tell them apart
        if ids:
            return next(iter(ids))
        return f"{rules.id_prefix}{k[0]}-{k[1]}" if k[1] else f"{rules.id_prefix}{k[0]}"

    new: dict[str, str] = {}
    not_merged: list[NotMerged] = []
    for raw, p in parsed.items():
        if p is None:
            new[raw] = raw
        elif p.explicit_id:  # an explicit id always wins
            new[raw] = p.explicit_id
        elif raw in key_of:
            got = key_id(key_of[raw])
            new[raw] = raw if got is None else got
            if got is None:
                not_merged.append(NotMerged("surgeon", raw, raw, tuple(sorted(ids_of[key_of[raw]])),
                                            counts[raw], "surgeons of this name have different ids"))
        else:
            new[raw] = raw
    for raw, cands in ambiguous.items():
        ids = tuple(sorted({key_id(c) or f"{c[0]}-{c[1]}" for c in cands}))
        not_merged.append(NotMerged("surgeon", raw, new[raw], ids, counts[raw]))
    return values.map(lambda v: new.get(v, v) if isinstance(v, str) else v), not_merged


# ---------------------------------------------------------------------------------------------
# Procedure codes and service lines

def strip_modifiers(code: str) -> str:
    """``27447-RT`` / ``27447 59`` / ``27447-59-LT`` -> ``27447``; anything else as it is."""
    m = _MODIFIERS.match(code.strip())
    return m.group(1) if m else code


def _clean_services(values: pd.Series, rules: ServiceRules,
                    known_names: list[str]) -> pd.Series:
    def alias(v: str) -> str:
        return rules.aliases.get(_fold_space(v), v)

    aliased = values.map(lambda v: alias(v) if isinstance(v, str) else v)
    if not rules.fold_case:
        return aliased
    counts = Counter(v for v in aliased.dropna().astype(str))
    preferred: dict[str, str] = {}
    for name in [*known_names, *rules.aliases.values()]:
        preferred.setdefault(_fold_space(name), name)
    groups: dict[str, list[str]] = {}
    for v in counts:
        groups.setdefault(_fold_space(v), []).append(v)
    new = {}
    for folded, spellings in groups.items():
        target = preferred.get(folded) or sorted(spellings, key=lambda s: (-counts[s], s))[0]
        new.update({s: target for s in spellings})
    return aliased.map(lambda v: new.get(v, v) if isinstance(v, str) else v)


def _merges(kind: str, before: pd.Series, after: pd.Series, renames: bool = True) -> list[Merge]:
    """Groups of two or more spellings that now share one value (and, with ``renames``, a single
    spelling that changed: a code that lost its modifier; a surgeon's name becoming an id is not)."""
    pairs = pd.DataFrame({"b": before, "a": after}).dropna()
    out = []
    for into, grp in pairs.groupby("a", sort=True):
        spellings = grp["b"].value_counts()
        names = sorted(spellings.index, key=lambda s: (-spellings[s], s))
        if len(names) > 1 or (renames and names[0] != into):
            out.append(Merge(kind, str(into), tuple(names), int(spellings.sum())))
    return out


def clean_cases(cases: pd.DataFrame, rules: CleanRules | None,
                service_names: list[str] | None = None
                ) -> tuple[pd.DataFrame, list[Merge], list[NotMerged]]:
    """Apply ``clean:`` to the mapped cases; returns the cleaned copy, the merges and the values
    left unmerged because they were ambiguous. ``service_names`` (``settings.service_lines``) are
    the preferred spellings when ``fold_case`` merges service names."""
    if rules is None:
        return cases, [], []
    out = cases.copy()
    merges: list[Merge] = []
    not_merged: list[NotMerged] = []

    def text(col: str) -> pd.Series:
        return out[col].map(lambda v: v if isinstance(v, str) and v and v != "nan" else None)

    if rules.surgeons is not None and "surgeon_id" in out.columns:
        before = text("surgeon_id")
        after, nm = _clean_surgeons(before, rules.surgeons)
        out["surgeon_id"] = after.where(after.notna(), out["surgeon_id"])
        merges += _merges("surgeon", before, after, renames=False)
        not_merged += nm
    if rules.procedure_codes is not None and rules.procedure_codes.strip_modifiers \
            and "procedure_code" in out.columns:
        before = text("procedure_code")
        after = before.map(lambda v: strip_modifiers(v) if isinstance(v, str) else v)
        out["procedure_code"] = after.where(after.notna(), out["procedure_code"])
        merges += _merges("procedure code", before, after)
    if rules.service_lines is not None and "service_line" in out.columns:
        before = text("service_line")
        after = _clean_services(before, rules.service_lines, list(service_names or []))
        out["service_line"] = after.where(after.notna(), out["service_line"])
        merges += _merges("service line", before, after)
    return out, merges, not_merged


# ---------------------------------------------------------------------------------------------
# For --suggest-mapping

def suggest_clean_lines(surgeons: list[str], codes: list[str], services: list[str],
                        surgeon_is_column: bool) -> list[str]:
    """A commented ``clean:`` section for a suggested mapping, with what the sample shows."""
    with_mods = [c for c in codes if strip_modifiers(c) != c]
    folded = Counter(_fold_space(s) for s in services)
    case_twins = [s for s in services if folded[_fold_space(s)] > 1]
    L = ["# Entity clean-up (data/mappings/README.md, 'clean'): uncomment what the export needs.",
         "# The import report lists every merge, and every name it would not merge (ambiguous)."]
    if surgeons:
        L.append(f"#   surgeons seen, e.g. {', '.join(repr(s) for s in surgeons[:3])}")
        if not surgeon_is_column:
            L.append("#   (normalise reads names: map surgeon_id to the surgeon column itself first)")
    if with_mods:
        L.append(f"#   {len(with_mods)} procedure codes with modifiers, e.g. {', '.join(repr(c) for c in with_mods[:3])}")
    if case_twins:
        L.append(f"#   service names that differ only in case: {', '.join(repr(s) for s in case_twins[:4])}")
    L += ["# clean:",
          "#   surgeons:",
          "#     normalise: true        # 'Smith, John' / 'SMITH JOHN' / 'J. Smith (10234)' -> one id",
          "#     aliases: {\"Jack Smith\": \"Smith, John\"}",
          "#   procedure_codes:",
          "#     strip_modifiers: true  # '27447-RT', '27447 59' -> 27447",
          "#   service_lines:",
          "#     fold_case: true        # 'ORTHOPEDICS' and 'Orthopedics' -> one",
          "#     aliases: {Orthopaedics: Orthopedics}"]
    return L
