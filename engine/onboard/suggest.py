"""A suggested import mapping for an export nobody has written a mapping for yet.

``python -m engine import --suggest-mapping --source FILE`` calls :func:`suggest_mapping`, which
reads the headers and a sample of the values and writes a commented YAML mapping (the format of
data/mappings/README.md) for a person to review and edit:

- headers are matched to contract columns by name: common names and their variants (``Wheels In``,
  ``In Room``, ``Pt In Room``, ``OR Suite``, ``Room``, ``CPT``, ``Primary Procedure``, ...), after
  lower-casing and dropping punctuation; each header is used once, the best matches first, and a
  match whose values do not fit the column's kind (dates, times, numbers) is not taken;
- date, time and datetime formats are detected from the values (a day above 12 tells day-first from
  month-first; where nothing tells them apart the mapping says so);
- the values seen for status, urgency and service are listed with their counts; status and
  urgency values get a guessed code, service names a guessed full name where the abbreviation is
  a common one;
- every header the suggestion does not use is listed with sample values.

The suggestion is a starting point, not a promise: it always loads as a mapping
(:func:`engine.importer.parse_mapping`), and the comments say what to check.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from engine.contract import CASES_COLUMNS, CASES_REQUIRED
from engine.importer import SOURCE_FORMATS, SourceOptions, read_source

__all__ = ["Suggestion", "suggest_mapping", "SYNONYMS"]

SAMPLE_ROWS = 2000

# contract (or extra) column -> names it goes by, normalised (lower case, words only). The first
# few are exact matches; a header containing one of them as whole words also matches, more weakly.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "case_id": ("case id", "case number", "case no", "case nbr", "case num", "log id", "encounter id",
                "encounter", "surgical case id", "or case id", "fallnummer", "fall nr", "fall id", "case key",
                "csn", "episode id", "case"),
    "surgery_date": ("surgery date", "date of surgery", "procedure date", "case date", "service date", "op datum",
                     "dos", "operation date", "surgical date", "date of service", "or date", "date"),
    "status": ("case status", "status", "outcome", "case outcome", "case state", "state", "disposition"),
    "service_line": ("service line", "service", "specialty", "speciality", "surgical specialty", "department",
                     "division", "fachabteilung", "surgical service", "primary service", "dept"),
    "procedure_code": ("cpt code", "cpt", "procedure code", "proc code", "primary cpt", "ops code", "ops",
                       "opcs code", "opcs", "procedure cd", "code"),
    "procedure_name": ("primary procedure", "procedure name", "procedure description", "cpt description",
                       "procedure desc", "procedure text", "procedure", "eingriff", "operation", "description"),
    "surgeon_id": ("primary surgeon", "surgeon", "surgeon name", "surgeon id", "attending surgeon", "attending",
                   "consultant", "operateur", "operator", "provider", "surgeon npi"),
    "room_id": ("or suite", "or room", "room", "room id", "operating room", "theatre", "theater", "saal", "op saal",
                "suite", "or number", "or", "location"),
    "booked_minutes": ("booked time min", "booked minutes", "booked time", "booked duration", "scheduled duration",
                       "estimated duration", "est duration", "planned duration", "geplante dauer", "sched duration",
                       "case length", "booked length", "scheduled minutes", "est mins", "expected duration",
                       "scheduled length", "duration booked"),
    "booked_at": ("booked at", "booking date", "posted date", "date booked", "date posted", "scheduled on",
                  "case created", "created", "booked on"),
    "scheduled_start": ("scheduled start", "sched start", "or schedule", "scheduled time", "planned start",
                        "sched time", "scheduled start time", "start scheduled"),
    "wheels_in": ("wheels in", "in room", "pt in room", "patient in room", "in room time", "room in", "patient in",
                  "pt in", "einschleusung", "in or", "in theatre", "in theater", "into room"),
    "wheels_out": ("wheels out", "out room", "out of room", "pt out room", "pt out of room", "patient out of room",
                   "out room time", "room out", "patient out", "pt out", "ausschleusung", "out or",
                   "out of theatre", "leave room", "left room"),
    "procedure_start": ("procedure start", "incision", "incision time", "cut time", "surgery start", "start time",
                        "procedure start time", "schnitt"),
    "procedure_end": ("procedure end", "closure", "close time", "closing time", "surgery end", "procedure stop",
                      "end time", "procedure end time", "naht"),
    "urgency": ("urgency", "add on", "addon", "priority", "case urgency", "case class", "emergency", "dringlichkeit",
                "elective", "case priority", "acuity"),
    "cancellation_reason": ("cancel reason", "cancellation reason", "cancelled reason", "canceled reason",
                            "storno grund", "reason for cancellation", "cancel code"),
    "patient_age": ("patient age", "age", "pt age", "age at surgery", "alter"),
    "patient_sex": ("patient sex", "sex", "gender", "pt sex", "geschlecht"),
    "asa_class": ("asa class", "asa", "asa score", "asa status", "asa rating"),
    "bmi": ("bmi", "body mass index"),
    "anesthesia_type": ("anesthesia type", "anaesthesia type", "anesthesia", "anaesthesia", "anesthetic type",
                        "anesthetic", "narkose"),
    "admission_type": ("patient class", "admission type", "patient type", "encounter type", "admit type",
                       "inpatient outpatient"),
    "site": ("site", "facility", "hospital", "campus", "location site"),
    "required_equipment": ("required equipment", "equipment", "resources"),
    # not contract columns: kept as extras (PACU times let inference count recovery beds)
    "pacu_in": ("pacu in", "pacu in time", "recovery in", "pacu arrival", "pacu start", "in pacu", "phase i start",
                "aufwachraum ein"),
    "pacu_out": ("pacu out", "pacu out time", "recovery out", "pacu discharge", "pacu end", "out pacu", "phase i end",
                 "aufwachraum aus"),
}
EXTRA_TARGETS = {"pacu_in": "datetime", "pacu_out": "datetime"}
TIME_TARGETS = ("scheduled_start", "wheels_in", "procedure_start", "procedure_end", "wheels_out", "booked_at",
                "pacu_in", "pacu_out")
# A time that can pass midnight, and the column it must not be earlier than.
ROLL_AFTER = {"wheels_out": "wheels_in", "procedure_start": "wheels_in", "procedure_end": "procedure_start",
              "pacu_in": "wheels_out", "pacu_out": "pacu_in"}

STATUS_WORDS = {
    "completed": ("completed", "complete", "done", "performed", "finished", "closed", "durchgeführt", "durchgefuehrt",
                  "erledigt", "c", "comp"),
    "cancelled": ("cancelled", "canceled", "cancel", "cx", "abgesetzt", "storniert", "storno", "void", "scratched",
                  "no show", "noshow", "x"),
    "booked": ("booked", "scheduled", "posted", "planned", "geplant", "pending", "open", "confirmed", "sched",
               "future", "s", "b"),
}
URGENCY_WORDS = {
    "elective": ("elective", "n", "no", "routine", "elektiv", "planned", "scheduled", "0", "false", "standard"),
    "urgent": ("urgent", "y", "yes", "add on", "add-on", "addon", "dringend", "1", "true", "expedited"),
    "emergent": ("emergent", "emergency", "e", "notfall", "stat", "trauma", "immediate", "2"),
}
SERVICE_NAMES = {
    "ortho": "Orthopedics", "orthopedics": "Orthopedics", "orthopaedics": "Orthopedics", "orthopädie": "Orthopedics",
    "gen surg": "General Surgery", "general": "General Surgery", "general surgery": "General Surgery",
    "gs": "General Surgery", "allgemeinchirurgie": "General Surgery",
    "uro": "Urology", "urology": "Urology", "urologie": "Urology",
    "gyn": "Gynecology", "obgyn": "Gynecology", "gynecology": "Gynecology", "gynaecology": "Gynecology",
    "gynäkologie": "Gynecology",
    "ent": "Otolaryngology", "otolaryngology": "Otolaryngology", "hno": "Otolaryngology",
    "vasc": "Vascular Surgery", "vascular": "Vascular Surgery", "gefäßchirurgie": "Vascular Surgery",
    "neuro": "Neurosurgery", "neurosurgery": "Neurosurgery", "neurochirurgie": "Neurosurgery",
    "cardiac": "Cardiac Surgery", "cardiac surgery": "Cardiac Surgery", "cts": "Cardiac Surgery",
    "plastics": "Plastic Surgery", "plastic surgery": "Plastic Surgery",
    "ophtho": "Ophthalmology", "ophthalmology": "Ophthalmology", "eye": "Ophthalmology",
    "thoracic": "Thoracic Surgery", "colorectal": "Colorectal Surgery", "peds": "Pediatric Surgery",
}

DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%m-%d-%Y", "%d-%b-%Y",
                "%d %b %Y", "%b %d %Y", "%m/%d/%y", "%d/%m/%y", "%d.%m.%y", "%Y%m%d")
TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%I:%M %p", "%I:%M:%S %p", "%I:%M%p", "%H%M", "%H.%M")
_T_SEPS = (" ", "T")


def normalise(name: Any) -> str:
    """``Pt. In-Room`` -> ``pt in room``: lower case, words only, single spaces."""
    text = re.sub(r"[^\w]+", " ", str(name).lower().replace("_", " "))
    return " ".join(text.split())


@dataclass
class ColumnKind:
    """What a source column's values look like."""

    kind: str  # date | datetime | time | number | text | empty
    formats: tuple[str, ...] = ()
    ambiguous: bool = False  # a day-first/month-first pair both fit every value
    share: float = 0.0  # share of non-empty values that fit


def _fits(values: list[str], fmt: str) -> float:
    ok = 0
    for v in values:
        try:
            dt.datetime.strptime(v, fmt)
            ok += 1
        except ValueError:
            pass
    return ok / len(values) if values else 0.0


def _best_formats(values: list[str], candidates: tuple[str, ...], need: float = 0.98) -> tuple[tuple[str, ...], float]:
    """Formats that, tried in order, read at least ``need`` of the values (greedy cover)."""
    chosen: list[str] = []
    left = list(values)
    for _ in range(3):
        if not left:
            break
        scored = sorted(((_fits(left, f), i, f) for i, f in enumerate(candidates) if f not in chosen), reverse=True,
                        key=lambda t: (t[0], -t[1]))
        if not scored or scored[0][0] == 0:
            break
        f = scored[0][2]
        chosen.append(f)
        left = [v for v in left if _fits([v], f) == 0]
    share = 1 - len(left) / len(values) if values else 0.0
    return (tuple(chosen), share) if share >= need else ((), share)


def classify(values: pd.Series) -> ColumnKind:
    """The kind of a column from a sample of its (text) values."""
    vals = [str(v).strip() for v in values.dropna() if str(v).strip()]
    if not vals:
        return ColumnKind("empty")
    vals = vals[:300]
    if sum(any(ch.isdigit() for ch in v) for v in vals) < 0.9 * len(vals):
        return ColumnKind("text", share=1.0)
    nums = pd.to_numeric(pd.Series(vals).str.replace(",", "", regex=False), errors="coerce")
    if nums.notna().mean() >= 0.98 and not any(re.search(r"[:/.-]\d", v) and not re.fullmatch(r"-?\d+\.\d+", v)
                                               for v in vals):
        return ColumnKind("number", share=float(nums.notna().mean()))
    fmts, share = _best_formats(vals, TIME_FORMATS)
    if fmts and not all(re.fullmatch(r"\d{3,4}", v) for v in vals):
        return ColumnKind("time", fmts, share=share)
    fmts, share = _best_formats(vals, DATE_FORMATS)
    if fmts:
        return ColumnKind("date", fmts, ambiguous=_ambiguous(vals, fmts), share=share)
    # A datetime: find the date part's and the time part's formats separately, then combine them.
    split = [re.split(r"[ T]", v, maxsplit=1) for v in vals]
    if all(len(x) == 2 for x in split):
        d_fmts, _ = _best_formats([x[0] for x in split], DATE_FORMATS)
        t_fmts, _ = _best_formats([x[1].strip() for x in split], TIME_FORMATS)
        seps = [sep for sep in _T_SEPS if all(sep in v for v in vals)] or [" "]
        cands = tuple(f"{d}{sep}{t}" for d in d_fmts for sep in seps for t in t_fmts)
        fmts, share = _best_formats(vals, cands) if cands else ((), 0.0)
        if fmts:
            return ColumnKind("datetime", fmts, ambiguous=_ambiguous(vals, fmts), share=share)
    return ColumnKind("text", share=1.0)


_SWAP = {"%m/%d": "%d/%m", "%d/%m": "%m/%d", "%m-%d": "%d-%m", "%d-%m": "%m-%d"}


def _ambiguous(vals: list[str], fmts: tuple[str, ...]) -> bool:
    """True when swapping day and month in the first format reads every value too."""
    f = fmts[0]
    for a, b in _SWAP.items():
        if a in f:
            return _fits(vals, f.replace(a, b)) == 1.0
    return False


# --------------------------------------------------------------------------- matching headers


def _name_score(header_norm: str, synonyms: tuple[str, ...]) -> float:
    best = 0.0
    words = header_norm.split()
    for rank, syn in enumerate(synonyms):
        bonus = 0.02 * (len(synonyms) - rank) / len(synonyms)  # earlier synonyms are more typical
        if header_norm == syn or header_norm.replace(" ", "") == syn.replace(" ", ""):
            best = max(best, 1.0 + bonus)
        elif re.search(rf"(^| ){re.escape(syn)}( |$)", header_norm):
            # the header contains the synonym as whole words: the more of the header it covers, the better
            best = max(best, 0.5 + 0.4 * len(syn.split()) / max(len(words), 1) + bonus)
    return best


def _kind_fits(target: str, kind: ColumnKind) -> bool:
    want = EXTRA_TARGETS.get(target) or CASES_COLUMNS.get(target)
    if kind.kind == "empty":
        return target not in CASES_REQUIRED
    if want == "date":
        return kind.kind in ("date", "datetime")
    if want == "datetime":
        return kind.kind in ("datetime", "time", "date") if target == "booked_at" else kind.kind in ("datetime", "time")
    if want == "float":
        return kind.kind == "number" or (target == "asa_class" and kind.kind == "text")
    return True


def match_headers(headers: list[str], kinds: dict[str, ColumnKind]) -> dict[str, tuple[str, float]]:
    """Contract (or extra) column -> (header, score): best scores first, each header used once."""
    pairs = []
    for h in headers:
        hn = normalise(h)
        for target, syns in SYNONYMS.items():
            s = _name_score(hn, syns)
            if s > 0 and _kind_fits(target, kinds[h]):
                pairs.append((s, target, h))
    pairs.sort(key=lambda t: -t[0])
    out: dict[str, tuple[str, float]] = {}
    used: set[str] = set()
    for s, target, h in pairs:
        if target in out or h in used:
            continue
        out[target] = (h, s)
        used.add(h)
    return out


# --------------------------------------------------------------------------- values


def _guess_code(value: str, words: dict[str, tuple[str, ...]]) -> str | None:
    v = normalise(value)
    for code, ws in words.items():
        if v in ws or v.replace(" ", "") in {w.replace(" ", "") for w in ws}:
            return code
    for code, ws in words.items():
        if any(len(w) > 3 and w in v for w in ws):
            return code
    return None


def _counts(s: pd.Series, limit: int = 40) -> list[tuple[str, int]]:
    vc = s.dropna().astype(str).str.strip()
    vc = vc[vc != ""].value_counts()
    return [(str(k), int(n)) for k, n in vc.head(limit).items()]


def _service_name(value: str) -> str:
    key = normalise(value)
    return SERVICE_NAMES.get(key) or SERVICE_NAMES.get(key.replace(" ", "")) or \
        (value.title() if value.isupper() or value.islower() else value)


# --------------------------------------------------------------------------- the YAML text


def _q(value: Any) -> str:
    """A YAML scalar: JSON strings are valid YAML double-quoted strings."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


@dataclass
class Suggestion:
    """A suggested mapping: its YAML ``text`` and what was found (for tests and the Data page)."""

    text: str
    matches: dict[str, str]  # contract/extra column -> source header
    kinds: dict[str, ColumnKind]
    unused: list[str]
    source: SourceOptions
    notes: list[str] = field(default_factory=list)


def _sniff_csv(path: Path) -> SourceOptions:
    raw = path.read_bytes()[:65536]
    encoding = "utf-8"
    for enc in ("utf-8-sig", "utf-8", "cp1252", "latin-1"):
        try:
            text = raw.decode(enc)
            encoding = "utf-8" if enc == "utf-8-sig" else enc
            break
        except UnicodeDecodeError:
            continue
    first = text.splitlines()[0] if text else ""
    delimiter = max([",", ";", "\t", "|"], key=first.count) if first else ","
    try:
        delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter if not first.count(delimiter) \
            else delimiter
    except csv.Error:
        pass
    return SourceOptions(encoding=encoding, delimiter=delimiter)


def suggest_mapping(source: str | Path, sample_rows: int = SAMPLE_ROWS) -> Suggestion:
    """Read ``source`` (CSV, Parquet, Excel) and suggest a commented mapping for it.

    Raises ``InputError`` naming the file when it cannot be read.
    """
    path = Path(source)
    fmt = SOURCE_FORMATS.get(path.suffix.lower())
    opts = _sniff_csv(path) if fmt == "csv" and path.is_file() else SourceOptions()
    df = read_source(path, SimpleNamespace(source=opts), [])
    sample = df.head(sample_rows)
    headers = [str(c) for c in df.columns]
    kinds = {h: classify(sample[h]) for h in headers}
    found = match_headers(headers, kinds)
    matches = {t: h for t, (h, _) in found.items()}
    return Suggestion(_render(path, opts, sample, matches, kinds, found), matches, kinds,
                      [h for h in headers if h not in matches.values()], opts)


def _render(path: Path, opts: SourceOptions, df: pd.DataFrame, matches: dict[str, str],
            kinds: dict[str, ColumnKind], found: dict[str, tuple[str, float]]) -> str:
    L: list[str] = []
    add = L.append
    add(f"# Suggested mapping for {path.name} ({len(df)} rows sampled), written by")
    add(f"#   python -m engine import --suggest-mapping --source {path.name}")
    add("# Review every line marked CHECK, then import:")
    add(f"#   python -m engine import --source {path.name} --mapping THIS.yaml --out hospital/")
    add("# The format is described in data/mappings/README.md.")
    add("version: 1")
    add(f"name: {_q('Suggested mapping for ' + path.name)}")
    add("")
    if SOURCE_FORMATS.get(path.suffix.lower()) == "csv":
        add("source:")
        add(f"  encoding: {_q(opts.encoding)}")
        add(f"  delimiter: {_q('tab' if opts.delimiter == chr(9) else opts.delimiter)}")
        add("")
    # formats: the detected ones of each kind, in order of use
    date_fmts: list[str] = []
    time_fmts: list[str] = []
    dt_fmts: list[str] = []
    ambiguous = []
    for target, h in matches.items():
        k = kinds[h]
        bucket = {"date": date_fmts, "time": time_fmts, "datetime": dt_fmts}.get(k.kind)
        if bucket is None or (CASES_COLUMNS.get(target) or EXTRA_TARGETS.get(target)) not in ("date", "datetime"):
            continue
        bucket.extend(f for f in k.formats if f not in bucket)
        if k.ambiguous:
            ambiguous.append(h)
    add("# Detected from the values (ISO forms and Excel serial numbers are always accepted too).")
    if ambiguous:
        add(f"# CHECK: in {', '.join(ambiguous)} every day is 12 or less, so day-first and month-first both fit;")
        add("#        the first format below is a guess.")
    add("formats:")
    add(f"  date: [{', '.join(_q(f) for f in date_fmts or ['%m/%d/%Y'])}]")
    add(f"  time: [{', '.join(_q(f) for f in time_fmts or ['%H:%M', '%I:%M %p'])}]")
    if dt_fmts:
        add(f"  datetime: [{', '.join(_q(f) for f in dt_fmts)}]")
    add("")

    services = _counts(df[matches["service_line"]]) if "service_line" in matches else []
    if services:
        add("value_maps:")
        add("  # CHECK: every service name seen (count), with a guessed full name. Merge spellings here.")
        add("  service_lines:")
        for v, n in services:
            add(f"    {_q(v)}: {_q(_service_name(v))}   # {n}")
        add("")

    add("columns:")
    date_h = matches.get("surgery_date")
    for target in [*CASES_COLUMNS, *EXTRA_TARGETS]:
        if target in EXTRA_TARGETS:
            continue
        _render_column(add, target, matches, kinds, df, date_h, found)
    missing = [c for c in CASES_REQUIRED if c not in matches]
    for c in missing:
        if c == "surgery_date" and "wheels_in" in matches:
            continue
        if c == "surgeon_id":
            continue  # rendered as a constant below
        add(f"  # CHECK: no column found for required '{c}'. Name one here (e.g. {c}: \"Column Name\").")
    add("")
    consts = []
    if "surgeon_id" not in matches:
        consts.append(("surgeon_id", "unknown", "no surgeon column found: every case is 'unknown'"))
    if "site" not in matches:
        consts.append(("site", "Main", "one site; CHECK"))
    if consts:
        add("constants:")
        for c, v, why in consts:
            add(f"  {c}: {_q(v)}   # {why}")
        add("")
    extras = [t for t in EXTRA_TARGETS if t in matches]
    if extras or "surgeon_id" in matches:
        add("# Kept in cases.csv beside the contract columns (ignored unless used as features).")
        add("extras:")
        for t in extras:
            add(f"  {t}: {_spec_text(t, matches, kinds, date_h)}")
        if "surgeon_id" in matches:
            add(f"  surgeon_name: {_q(matches['surgeon_id'])}")
        add("")
    L.extend(_clean_lines(df, matches))
    add("")
    unused = [h for h in df.columns if h not in matches.values()]
    if unused:
        add("# Not used (add under columns or extras if they matter):")
        for h in unused:
            samples = ", ".join(v for v, _ in _counts(df[h], 3))
            add(f"#   {h}: {samples or '(empty)'}")
        add("")
    add("extra_columns: drop")
    add("bad_values: quarantine")
    add("max_bad_row_fraction: 0.05")
    add("")
    add("# CHECK: the hospital's own rules (written to settings.toml).")
    add("settings:")
    add(f"  hospital_name: {_q(path.stem)}")
    add("  turnover_minutes: 30")
    add("  pacu_minutes: 75")
    add('  prime_time: "07:30-15:30"')
    add("")
    open_t, close_t = _room_hours(df, matches, kinds, date_h)
    add("# Room hours from the times seen (first case in, last case out); CHECK.")
    add("rooms:")
    add(f"  open_time: {_q(open_t)}")
    add(f"  close_time: {_q(close_t)}")
    add("  capabilities: [general]")
    return "\n".join(L) + "\n"


def _surgeon_ids_in_brackets(vals: list[str]) -> bool:
    return bool(vals) and sum(bool(re.search(r"\((\w+)\)\s*$", v)) for v in vals) >= 0.9 * len(vals)


def _clean_lines(df: pd.DataFrame, matches: dict[str, str]) -> list[str]:
    """The commented ``clean:`` section, with the surgeon, code and service spellings seen."""
    from engine.importer.clean import suggest_clean_lines

    def seen(target: str, limit: int = 200) -> list[str]:
        return [v for v, _ in _counts(df[matches[target]], limit)] if target in matches else []

    surgeons = seen("surgeon_id")
    return suggest_clean_lines(surgeons, seen("procedure_code", 500), seen("service_line"),
                               surgeon_is_column=not _surgeon_ids_in_brackets(surgeons))


def _spec_text(target: str, matches: dict[str, str], kinds: dict[str, ColumnKind], date_h: str | None) -> str:
    h = matches[target]
    k = kinds[h]
    if k.kind == "time" and date_h:
        parts = [f"date: {_q(date_h)}", f"time: {_q(h)}"]
        after = ROLL_AFTER.get(target)
        if after and after in matches:
            parts += ["roll_over_midnight: true", f"after: {after}"]
        if target in EXTRA_TARGETS:
            parts.append("kind: datetime")
        return "{" + ", ".join(parts) + "}"
    if target in EXTRA_TARGETS:
        return "{" + f"column: {_q(h)}, kind: datetime" + "}"
    return _q(h)


def _render_column(add, target: str, matches: dict[str, str], kinds: dict[str, ColumnKind], df: pd.DataFrame,
                   date_h: str | None, found: dict[str, tuple[str, float]]) -> None:
    if target not in matches:
        if target == "surgery_date" and "wheels_in" in matches:
            add("  # CHECK: no date column found; the date is taken from wheels_in (booked cases need one).")
            add("  surgery_date: {derive: from_datetime_date, from: wheels_in}")
        return
    h = matches[target]
    score = found[target][1]
    note = "" if score >= 1.0 else "   # CHECK: matched by a part of the name"
    if target == "status":
        seen = _counts(df[h])
        add(f"  status:   # values seen (count): {', '.join(f'{v} ({n})' for v, n in seen[:12])}")
        add(f"    column: {_q(h)}")
        pairs = [(v, _guess_code(v, STATUS_WORDS)) for v, _ in seen]
        known = [(v, c) for v, c in pairs if c]
        add("    map: {" + ", ".join(f"{_q(v)}: {c}" for v, c in known) + "}")
        for v, c in pairs:
            if not c:
                add(f"    # CHECK: {_q(v)} has no guess; add it to the map (completed, cancelled or booked)")
        add("    unmapped: error   # an unknown status is a row problem, never a silent guess")
        return
    if target == "urgency":
        seen = _counts(df[h])
        add(f"  urgency:   # values seen (count): {', '.join(f'{v} ({n})' for v, n in seen[:12])}")
        add(f"    column: {_q(h)}")
        pairs = [(v, _guess_code(v, URGENCY_WORDS)) for v, _ in seen]
        add("    map: {" + ", ".join(f"{_q(v)}: {c}" for v, c in pairs if c) + "}")
        for v, c in pairs:
            if not c:
                add(f"    # CHECK: {_q(v)} has no guess (elective, urgent or emergent)")
        add("    unmapped: keep")
        add("    if_missing: elective")
        return
    if target == "service_line":
        add(f"  service_line: {{column: {_q(h)}, map: service_lines, unmapped: keep}}{note}")
        return
    if target == "surgeon_id":
        vals = [v for v, _ in _counts(df[h], 200)]
        if _surgeon_ids_in_brackets(vals):
            add(f"  surgeon_id:   # e.g. {_q(vals[0])}: the id in brackets")
            add(f"    {{derive: regex, column: {_q(h)}, pattern: '\\((\\w+)\\)\\s*$', if_missing: unknown}}")
        else:
            add(f"  surgeon_id: {{column: {_q(h)}, if_missing: unknown}}   "
                f"# CHECK: names, not ids (e.g. {_q(vals[0]) if vals else ''}); spellings of one person must agree")
        return
    if target == "asa_class" and kinds[h].kind == "text":
        add(f"  asa_class: {{derive: regex, column: {_q(h)}, pattern: '([1-6])'}}   # '3E' -> 3")
        return
    if target == "surgery_date" and kinds[h].kind == "datetime":
        add(f"  surgery_date: {{derive: regex, column: {_q(h)}, pattern: '^(\\S+)'}}   # CHECK: the date part")
        return
    add(f"  {target}: {_spec_text(target, matches, kinds, date_h)}{note}")


def _minute_of_day(values: pd.Series, kind: ColumnKind) -> pd.Series:
    out = []
    for v in values.dropna().astype(str).head(SAMPLE_ROWS):
        for f in kind.formats:
            try:
                t = dt.datetime.strptime(v.strip(), f)
                out.append(t.hour * 60 + t.minute)
                break
            except ValueError:
                continue
    return pd.Series(out, dtype=float)


def _room_hours(df: pd.DataFrame, matches: dict[str, str], kinds: dict[str, ColumnKind],
                date_h: str | None) -> tuple[str, str]:
    """Opening: the usual first wheels-in, rounded down to 30 minutes; closing: the 90th percentile
    of wheels-out, rounded up to 30 minutes (defaults 07:30-17:30)."""
    def hhmm(m: float) -> str:
        m = int(max(0, min(m, 23 * 60 + 30)))
        return f"{m // 60:02d}:{m % 60:02d}"

    open_t, close_t = "07:30", "17:30"
    if "wheels_in" in matches and kinds[matches["wheels_in"]].kind in ("time", "datetime"):
        m = _minute_of_day(df[matches["wheels_in"]], kinds[matches["wheels_in"]])
        if len(m) >= 5:
            open_t = hhmm((m.quantile(0.05) // 30) * 30)
    if "wheels_out" in matches and kinds[matches["wheels_out"]].kind in ("time", "datetime"):
        m = _minute_of_day(df[matches["wheels_out"]], kinds[matches["wheels_out"]])
        m = m[m > 8 * 60]  # past-midnight ends say nothing about closing
        if len(m) >= 5:
            close_t = hhmm(-(-m.quantile(0.9) // 30) * 30)
    return open_t, close_t
