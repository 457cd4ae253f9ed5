"""The mapping loader's problems, each exactly as the user reads it: key and wording.

Every case changes one thing in the worked mapping (data/mappings/or_utilization_export.yaml) and
lists every problem the loader reports for it, in any order. The table was taken from the hand
validation the pydantic models replaced (issue 18). They differ on purpose in one way: a section
or column that is wrong no longer makes the ones depending on it report it again (see
test_a_wrong_column_is_not_reported_again_by_the_columns_that_use_it).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from engine.errors import InputError
from engine.importer import DEFAULT_FORMATS, parse_mapping
from engine.onboard.infer import InferParams
from tests.nested import with_key, without_key

ROOT = Path(__file__).resolve().parents[3]
BASE = yaml.safe_load((ROOT / "data" / "mappings" / "or_utilization_export.yaml").read_text(encoding="utf-8"))
PATH = "/maps/m.yaml"


def S(value, *keys):
    """Set ``keys`` to ``value``."""
    return lambda d: with_key(d, value, *keys)


def D(*keys):
    """Delete ``keys``."""
    return lambda d: without_key(d, *keys)


def C(*fs):
    """Apply every change."""
    def f(d):
        for g in fs:
            d = g(d)
        return d
    return f


DT = {"date": "Date", "time": "Wheels In"}


BAD = {
    "top not a mapping": lambda d: [1, 2],
    "top is None": lambda d: None,
    "unknown top key": S(1, "colums"),
    "source not a mapping": S("csv", "source"),
    "source unknown key": S("x", "source", "sep"),
    "source bad format": S("json", "source", "format"),
    "source bad encoding": S("klingon", "source", "encoding"),
    "source bad delimiter": S(";;", "source", "delimiter"),
    "source delimiter number": S(5, "source", "delimiter"),
    "source bool sheet": S(True, "source", "sheet"),
    "source list sheet": S([1], "source", "sheet"),
    "source header_row 0": S(0, "source", "header_row"),
    "source header_row text": S("2", "source", "header_row"),
    "source header_row bool": S(True, "source", "header_row"),
    "formats not a mapping": S("%d", "formats"),
    "formats unknown key": S("%H", "formats", "clock"),
    "formats no directive": S("MM/DD/YYYY", "formats", "date"),
    "formats empty list": S([], "formats", "time"),
    "formats list of non-text": S([1, "%H"], "formats", "time"),
    "formats one bad in list": S(["%H:%M", "HH"], "formats", "time"),
    "value_maps not a mapping": S(["a"], "value_maps"),
    "value map empty": S({}, "value_maps", "service_lines"),
    "value map a list": S(["x"], "value_maps", "service_lines"),
    "value map None key": S({None: "x", "A": "b"}, "value_maps", "service_lines"),
    "value map nested value": S({"A": {"b": 1}}, "value_maps", "service_lines"),
    "value map clash": S({"Ortho": "Orthopedics", "ORTHO": "Other"}, "value_maps", "service_lines"),
    "unmapped_values bad": S("drop", "unmapped_values"),
    "missing columns": D("columns"),
    "columns a list": S(["a"], "columns"),
    "columns empty": S({}, "columns"),
    "columns None": S(None, "columns"),
    "unknown target": S("Patient Name", "columns", "patient_name"),
    "empty column name": S("  ", "columns", "room_id"),
    "spec a number": S(3, "columns", "room_id"),
    "spec a list": S(["a"], "columns", "room_id"),
    "spec unknown key": S({"column": "OR Suite", "fromat": "%H"}, "columns", "room_id"),
    "kind in a columns spec": S({"column": "OR Suite", "kind": "str"}, "columns", "room_id"),
    "column not text": S({"column": 3}, "columns", "room_id"),
    "column empty text": S({"column": " "}, "columns", "room_id"),
    "spec format bad": S({"column": "Date", "format": "dd"}, "columns", "surgery_date"),
    "spec format on combine": S({**DT, "format": "%d"}, "columns", "wheels_in"),
    "unknown value map name": S("services", "columns", "service_line", "map"),
    "inline map bad": S([], "columns", "service_line", "map"),
    "status map to bad status": S({"Completed": "done"}, "columns", "status", "map"),
    "urgency map to bad urgency": S({"Y": "asap", "N": None}, "columns", "urgency", "map"),
    "named map with bad status": C(S({"Done": "finished"}, "value_maps", "st"), S("st", "columns", "status", "map")),
    "unmapped without map": S({"column": "OR Suite", "unmapped": "keep"}, "columns", "room_id"),
    "unmapped bad": S("ignore", "columns", "status", "unmapped"),
    "optional not bool": S({"column": "OR Suite", "optional": "yes"}, "columns", "room_id"),
    "list_sep empty": S({"column": "OR Suite", "list_sep": ""}, "columns", "room_id"),
    "list_sep number": S({"column": "OR Suite", "list_sep": 1}, "columns", "room_id"),
    "if_missing list": S({"column": "OR Suite", "if_missing": [1]}, "columns", "room_id"),
    "if_missing bad status": S({"column": "Case Status", "if_missing": "done"}, "columns", "status"),
    "if_missing spec with error": S({"column": "OR Suite", "if_missing": {"column": "X", "derive": "nope"}},
                                    "columns", "room_id"),
    "if_missing spec bad key": S({"column": "OR Suite", "if_missing": {"column": "X", "zz": 1}}, "columns", "room_id"),
    "unknown derive": S({"derive": "lookup", "column": "Surgeon"}, "columns", "surgeon_id"),
    "derive not text": S({"derive": ["regex"], "column": "Surgeon"}, "columns", "surgeon_id"),
    "minutes_between missing end": S({"derive": "minutes_between", "start": "wheels_in"}, "columns", "booked_minutes"),
    "minutes_between start not text": S({"derive": "minutes_between", "start": 3, "end": "wheels_out"},
                                        "columns", "booked_minutes"),
    "minutes_between on text": S({"derive": "minutes_between", "start": "wheels_in", "end": "wheels_out"},
                                 "columns", "room_id"),
    "from_datetime_date missing from": S({"derive": "from_datetime_date"}, "columns", "surgery_date"),
    "from_datetime_date on a number": S({"derive": "from_datetime_date", "from": "wheels_in"}, "columns", "booked_minutes"),
    "regex no column": S({"derive": "regex", "pattern": "(x)"}, "columns", "surgeon_id"),
    "regex no pattern": S({"derive": "regex", "column": "Surgeon"}, "columns", "surgeon_id"),
    "regex pattern number": S({"derive": "regex", "column": "Surgeon", "pattern": 5}, "columns", "surgeon_id"),
    "bad regex": S("((", "columns", "surgeon_id", "pattern"),
    "regex group too big": S({"derive": "regex", "column": "Surgeon", "pattern": "(a)", "group": 2}, "columns", "surgeon_id"),
    "regex group negative": S({"derive": "regex", "column": "Surgeon", "pattern": "(a)", "group": -1}, "columns", "surgeon_id"),
    "regex group unknown name": S({"derive": "regex", "column": "Surgeon", "pattern": "(?P<id>a)", "group": "x"},
                                  "columns", "surgeon_id"),
    "regex group bool": S({"derive": "regex", "column": "Surgeon", "pattern": "(a)", "group": True}, "columns", "surgeon_id"),
    "split no sep": S({"derive": "split", "column": "Surgeon"}, "columns", "surgeon_id"),
    "split bad index": S({"derive": "split", "column": "Surgeon", "sep": ",", "index": "1"}, "columns", "surgeon_id"),
    "split no column": S({"derive": "split", "sep": ","}, "columns", "surgeon_id"),
    "concat no columns": S({"derive": "concat"}, "columns", "surgeon_id"),
    "concat empty name": S({"derive": "concat", "columns": ["A", " "]}, "columns", "surgeon_id"),
    "concat bad sep": S({"derive": "concat", "columns": ["A", "B"], "sep": 1}, "columns", "surgeon_id"),
    "date+time missing time": S({"date": "Date"}, "columns", "wheels_in"),
    "date+time on a date": S(DT, "columns", "surgery_date"),
    "date+time time not text": S({"date": "Date", "time": 7}, "columns", "wheels_in"),
    "roll not bool": S({**DT, "roll_over_midnight": "yes"}, "columns", "wheels_out"),
    "after without roll": S({**DT, "after": "wheels_in"}, "columns", "wheels_out"),
    "after itself": S({**DT, "roll_over_midnight": True, "after": "wheels_out"}, "columns", "wheels_out"),
    "max roll 0": S({**DT, "max_roll_over_hours": 0}, "columns", "wheels_out"),
    "max roll text": S({**DT, "max_roll_over_hours": "5"}, "columns", "wheels_out"),
    "max roll 25": S({**DT, "max_roll_over_hours": 25}, "columns", "wheels_out"),
    "date_format bad": S({**DT, "date_format": "x"}, "columns", "wheels_out"),
    "time_format bad": S({**DT, "time_format": [3]}, "columns", "wheels_out"),
    "date_format on column spec": S({"column": "X", "date_format": "%d"}, "columns", "room_id"),
    "roll on derive": S({"derive": "split", "column": "X", "sep": ",", "roll_over_midnight": True}, "columns", "room_id"),
    "map on minutes_between": S({"derive": "minutes_between", "start": "wheels_in", "end": "wheels_out", "map": {"a": "b"}},
                                "columns", "booked_minutes"),
    "spec without a source": S({"optional": True}, "columns", "room_id"),
    "constants not a mapping": S(["x"], "constants"),
    "constants unknown target": S({"colour": "red"}, "constants"),
    "constants nested": S({"site": ["a"]}, "constants"),
    "constant bad status": S({"status": "done"}, "constants"),
    "extras not a mapping": S(["a"], "extras"),
    "extras contract column": S({"room_id": "X"}, "extras"),
    "extras bad name": S({"my col": "X"}, "extras"),
    "extras unknown kind": S({"x": {"column": "X", "kind": "blob"}}, "extras"),
    "extras spec error": S({"x": {"column": "X", "kind": "date", "format": "dd"}}, "extras"),
    "extras minutes_between on str": S({"x": {"derive": "minutes_between", "start": "wheels_in", "end": "wheels_out"}}, "extras"),
    "extras list kind ok but bad key": S({"x": {"column": "X", "kind": "list", "zz": 1}}, "extras"),
    "extras str spec empty": S({"x": ""}, "extras"),
    "required column not mapped": D("columns", "case_id"),
    "two required not mapped": C(D("columns", "case_id"), D("columns", "room_id")),
    "cycle": S({"date": "Date", "time": "Wheels In", "roll_over_midnight": True, "after": "wheels_out"}, "columns", "wheels_in"),
    "undefined reference": S({"derive": "minutes_between", "start": "wheels_in", "end": "anesthesia_end"},
                             "columns", "booked_minutes"),
    "reference to a date": S({"derive": "minutes_between", "start": "surgery_date", "end": "wheels_out"},
                             "columns", "booked_minutes"),
    "reference to an extra of kind str": C(S({"derive": "minutes_between", "start": "patient_class", "end": "wheels_out"},
                                             "columns", "booked_minutes")),
    "extra_columns bad": S("all", "extra_columns"),
    "bad_values bad": S("skip", "bad_values"),
    "max_bad 2": S(2, "max_bad_row_fraction"),
    "max_bad bool": S(True, "max_bad_row_fraction"),
    "max_bad text": S("0.1", "max_bad_row_fraction"),
    "files not a mapping": S(["a"], "files"),
    "files unknown": S({"patients": "p.csv"}, "files"),
    "files empty path": S({"blocks": " "}, "files"),
    "files number": S({"blocks": 3}, "files"),
    "settings missing": D("settings"),
    "settings and files.settings": S({"settings": "s.toml"}, "files"),
    "settings not a mapping": S("x", "settings"),
    "settings missing key": D("settings", "prime_time"),
    "settings bad service level": S({"finish_probability": 2}, "settings", "service_levels"),
    "settings bad timezone": S("Mars/Olympus", "settings", "timezone"),
    "settings None value": S(None, "settings", "hospital_name"),
    "settings bad turnover": S("x", "settings", "turnover_minutes"),
    "rooms not a mapping": S(["a"], "rooms"),
    "rooms unknown key": S(1, "rooms", "beds"),
    "rooms bad open_time": S("7am", "rooms", "open_time"),
    "rooms bad close_time number": S(1700, "rooms", "close_time"),
    "rooms empty site": S("", "rooms", "site"),
    "rooms site list": S(["a"], "rooms", "site"),
    "rooms capabilities number": S(3, "rooms", "capabilities"),
    "rooms patterns not list": S({"match": "x"}, "rooms", "patterns"),
    "rooms pattern no match": S([{"site": "A"}], "rooms", "patterns"),
    "rooms pattern not mapping": S(["x"], "rooms", "patterns"),
    "rooms pattern unknown key": S([{"match": "x", "beds": 1}], "rooms", "patterns"),
    "rooms pattern bad regex": S([{"match": "(("}], "rooms", "patterns"),
    "rooms pattern bad time": S([{"match": "x", "open_time": "25:00"}], "rooms", "patterns"),
    "rooms ids not list": S("OR 1", "rooms", "ids"),
    "infer not a mapping": S(True, "infer"),
    "infer flag not bool": S({"blocks": "no"}, "infer"),
    "infer pacu_beds negative": S({"pacu_beds": -1}, "infer"),
    "infer pacu_beds float": S({"pacu_beds": 2.5}, "infer"),
    "infer unknown key": S({"wekes": 3}, "infer"),
    "infer bad param": S({"weeks": 0}, "infer"),
    "infer bad share": S({"min_used_share": 2}, "infer"),
    "clean not a mapping": S(["x"], "clean"),
    "clean unknown section": S({"rooms": {}}, "clean"),
    "clean bad flag": S({"surgeons": {"normalise": "yes"}}, "clean"),
    "clean bad prefix": S({"surgeons": {"id_prefix": "a b"}}, "clean"),
    "clean bad aliases": S({"service_lines": {"aliases": []}}, "clean"),
    "many problems at once": C(S(1, "colums"), S("json", "source", "format"), S("((", "columns", "surgeon_id", "pattern"),
                               D("columns", "case_id"), S("skip", "bad_values"), S(["a"], "rooms", "site"),
                               S({"weeks": 0}, "infer"), D("settings", "prime_time"), S({"x": "y"}, "clean")),
}


EXPECTED = {
    'after itself': [
        ('columns.wheels_out.after', "'wheels_out' cannot roll over relative to itself; set 'after' to an earlier column")],
    'after without roll': [
        ('columns.wheels_out.after', "'after' only makes sense with roll_over_midnight: true")],
    'bad regex': [
        ('columns.surgeon_id.pattern', 'bad regular expression: missing ), unterminated subpattern at position 1')],
    'bad_values bad': [
        ('bad_values', "must be one of quarantine, blank, got 'skip'")],
    'clean bad aliases': [
        ('clean.service_lines.aliases', 'must be a non-empty mapping of spelling -> the name it means')],
    'clean bad flag': [
        ('clean.surgeons.normalise', "must be true or false, got 'yes'")],
    'clean bad prefix': [
        ('clean.surgeons.id_prefix', "must be letters, digits, '-' or '_', got 'a b'")],
    'clean not a mapping': [
        ('clean', 'must be a mapping with any of surgeons, procedure_codes, service_lines')],
    'clean unknown section': [
        ('clean.rooms', 'unknown key (known: surgeons, procedure_codes, service_lines)')],
    'column empty text': [
        ('columns.room_id.column', 'must be a non-empty text')],
    'column not text': [
        ('columns.room_id.column', 'must be a non-empty text')],
    'columns None': [
        ('columns', "missing section: 'columns' maps contract columns to source columns")],
    'columns a list': [
        ('columns', 'must be a non-empty mapping of contract column -> source spec')],
    'columns empty': [
        ('columns', 'must be a non-empty mapping of contract column -> source spec'),
        ('columns.case_id', "required cases.csv column 'case_id' is not mapped (map it under 'columns' or give it under 'constants')"),
        ('columns.surgery_date', "required cases.csv column 'surgery_date' is not mapped (map it under 'columns' or give it under 'constants')"),
        ('columns.status', "required cases.csv column 'status' is not mapped (map it under 'columns' or give it under 'constants')"),
        ('columns.service_line', "required cases.csv column 'service_line' is not mapped (map it under 'columns' or give it under 'constants')"),
        ('columns.procedure_code', "required cases.csv column 'procedure_code' is not mapped (map it under 'columns' or give it under 'constants')"),
        ('columns.surgeon_id', "required cases.csv column 'surgeon_id' is not mapped (map it under 'columns' or give it under 'constants')")],
    'concat bad sep': [
        ('columns.surgeon_id.sep', 'must be a text')],
    'concat empty name': [
        ('columns.surgeon_id.columns', "concat needs 'columns': a list of source columns")],
    'concat no columns': [
        ('columns.surgeon_id.columns', "concat needs 'columns': a list of source columns")],
    'constant bad status': [
        ('constants.status', "'done' is not a valid status (allowed: completed, cancelled, booked)")],
    'constants nested': [
        ('constants.site', 'a constant must be a single value')],
    'constants not a mapping': [
        ('constants', 'must be a mapping of contract column -> value')],
    'constants unknown target': [
        ('constants.colour', "unknown target column 'colour'")],
    'cycle': [
        ('columns.wheels_in', 'derived columns depend on each other in a cycle: wheels_in -> wheels_out -> wheels_in')],
    'date+time missing time': [
        ('columns.wheels_in', "a date+time spec needs both 'date' and 'time' source columns")],
    'date+time on a date': [
        ('columns.surgery_date', "date+time gives a datetime; 'surgery_date' is a date")],
    'date+time time not text': [
        ('columns.wheels_in.time', 'must be a non-empty text')],
    'date_format bad': [
        ('columns.wheels_out.date_format', "'x' has no % directive; strptime formats look like '%m/%d/%Y'")],
    'date_format on column spec': [
        ('columns.room_id.date_format', 'only for date + time specs')],
    'derive not text': [
        ('columns.surgeon_id.derive', "unknown derive kind '['regex']' (known: minutes_between, regex, split, concat, from_datetime_date)")],
    'empty column name': [
        ('columns.room_id', 'empty source column name')],
    'extra_columns bad': [
        ('extra_columns', "must be one of drop, keep, got 'all'")],
    'extras bad name': [
        ('extras.my col', 'extra column names must be identifiers (letters, digits, _)')],
    'extras contract column': [
        ('extras.room_id', "'room_id' is a contract column: map it under 'columns'")],
    'extras list kind ok but bad key': [
        ('extras.x.zz', 'unknown key')],
    'extras minutes_between on str': [
        ('extras.x.derive', "minutes_between gives minutes; 'x' is a str")],
    'extras not a mapping': [
        ('extras', 'must be a mapping of output column -> source spec')],
    'extras spec error': [
        ('extras.x.format', "'dd' has no % directive; strptime formats look like '%m/%d/%Y'")],
    'extras str spec empty': [
        ('extras.x', 'empty source column name')],
    'extras unknown kind': [
        ('extras.x.kind', "unknown kind 'blob' (known: str, date, datetime, float, int, list)")],
    'files empty path': [
        ('files.blocks', 'must be a path')],
    'files not a mapping': [
        ('files', 'must be a mapping of rooms, surgeons, blocks, staffing, settings -> path')],
    'files number': [
        ('files.blocks', 'must be a path')],
    'files unknown': [
        ('files.patients', 'unknown file (known: rooms, surgeons, blocks, staffing, settings)')],
    'formats empty list': [
        ('formats.time', "must be a strptime format or a list of them, e.g. '%m/%d/%Y'")],
    'formats list of non-text': [
        ('formats.time', "must be a strptime format or a list of them, e.g. '%m/%d/%Y'")],
    'formats no directive': [
        ('formats.date', "'MM/DD/YYYY' has no % directive; strptime formats look like '%m/%d/%Y'")],
    'formats not a mapping': [
        ('formats', 'must be a mapping with date / time / datetime formats')],
    'formats one bad in list': [
        ('formats.time', "'HH' has no % directive; strptime formats look like '%m/%d/%Y'")],
    'formats unknown key': [
        ('formats.clock', 'unknown key (known: date, time, datetime)')],
    'from_datetime_date missing from': [
        ('columns.surgery_date', "from_datetime_date needs 'from' (an output datetime column)")],
    'from_datetime_date on a number': [
        ('columns.booked_minutes.derive', "from_datetime_date gives a date; 'booked_minutes' is a float")],
    'if_missing bad status': [
        ('columns.status.if_missing', "'done' is not a valid status (allowed: completed, cancelled, booked)")],
    'if_missing list': [
        ('columns.room_id.if_missing', 'must be a constant or a spec mapping')],
    'if_missing spec bad key': [
        ('columns.room_id.if_missing.zz', 'unknown key')],
    'if_missing spec with error': [
        ('columns.room_id.if_missing.derive', "unknown derive kind 'nope' (known: minutes_between, regex, split, concat, from_datetime_date)")],
    'infer bad param': [
        ('infer', 'weeks must be >= 1, got 0')],
    'infer bad share': [
        ('infer', 'min_used_share must be between 0 and 1, got 2')],
    'infer flag not bool': [
        ('infer.blocks', "must be true or false, got 'no'")],
    'infer not a mapping': [
        ('infer', 'must be a mapping (blocks: true, staffing: true, pacu_beds: N, weeks: N, ...)')],
    'infer pacu_beds float': [
        ('infer.pacu_beds', 'must be a whole number of beds >= 0, got 2.5')],
    'infer pacu_beds negative': [
        ('infer.pacu_beds', 'must be a whole number of beds >= 0, got -1')],
    'infer unknown key': [
        ('infer.wekes', 'unknown key (known: blocks, staffing, pacu_beds, days_ahead, min_owner_share, min_surgeon_share, min_used_share, pacu_beds_per_room, pacu_quantile, weeks)')],
    'inline map bad': [
        ('columns.service_line.map', 'a value map must be a non-empty mapping of source value -> output value')],
    'kind in a columns spec': [
        ('columns.room_id.kind', 'unknown key')],
    'list_sep empty': [
        ('columns.room_id.list_sep', 'must be a non-empty text')],
    'list_sep number': [
        ('columns.room_id.list_sep', 'must be a non-empty text')],
    'many problems at once': [
        ('colums', 'unknown key (known: version, name, description, source, formats, value_maps, unmapped_values, constants, columns, extras, extra_columns, bad_values, max_bad_row_fraction, files, settings, rooms, infer, clean)'),
        ('source.format', "must be csv, parquet or excel, got 'json'"),
        ('columns.surgeon_id.pattern', 'bad regular expression: missing ), unterminated subpattern at position 1'),
        ('columns.case_id', "required cases.csv column 'case_id' is not mapped (map it under 'columns' or give it under 'constants')"),
        ('bad_values', "must be one of quarantine, blank, got 'skip'"),
        ('settings.prime_time', 'required setting is missing'),
        ('rooms.site', 'must be a site name'),
        ('infer', 'weeks must be >= 1, got 0'),
        ('clean.x', 'unknown key (known: surgeons, procedure_codes, service_lines)')],
    'map on minutes_between': [
        ('columns.booked_minutes.map', 'only for specs that read text (column, regex, split, concat); date + time specs use date_format/time_format')],
    'max roll 0': [
        ('columns.wheels_out.max_roll_over_hours', 'must be a number of hours in (0, 24], got 0')],
    'max roll 25': [
        ('columns.wheels_out.max_roll_over_hours', 'must be a number of hours in (0, 24], got 25')],
    'max roll text': [
        ('columns.wheels_out.max_roll_over_hours', "must be a number of hours in (0, 24], got '5'")],
    'max_bad 2': [
        ('max_bad_row_fraction', 'must be a number between 0 and 1, got 2')],
    'max_bad bool': [
        ('max_bad_row_fraction', 'must be a number between 0 and 1, got True')],
    'max_bad text': [
        ('max_bad_row_fraction', "must be a number between 0 and 1, got '0.1'")],
    'minutes_between missing end': [
        ('columns.booked_minutes', "minutes_between needs 'start' and 'end' (output datetime columns)")],
    'minutes_between on text': [
        ('columns.room_id.derive', "minutes_between gives minutes; 'room_id' is a str")],
    'minutes_between start not text': [
        ('columns.booked_minutes.start', 'must be a non-empty text')],
    'missing columns': [
        ('columns', "missing section: 'columns' maps contract columns to source columns")],
    'named map with bad status': [
        ('columns.status.map', "maps to 'finished', which is not a valid status (allowed: completed, cancelled, booked)")],
    'optional not bool': [
        ('columns.room_id.optional', 'must be true or false')],
    'reference to a date': [
        ('columns.booked_minutes', "'surgery_date' is a date; a datetime column is needed here")],
    'reference to an extra of kind str': [
        ('columns.booked_minutes', "'patient_class' is a str; a datetime column is needed here")],
    'regex group bool': [
        ('columns.surgeon_id.group', 'no group True in the pattern')],
    'regex group negative': [
        ('columns.surgeon_id.group', 'the pattern has 1 groups')],
    'regex group too big': [
        ('columns.surgeon_id.group', 'the pattern has 1 groups')],
    'regex group unknown name': [
        ('columns.surgeon_id.group', "no group 'x' in the pattern")],
    'regex no column': [
        ('columns.surgeon_id', "regex needs 'column' (the source column)")],
    'regex no pattern': [
        ('columns.surgeon_id.pattern', "regex needs a 'pattern'")],
    'regex pattern number': [
        ('columns.surgeon_id.pattern', "regex needs a 'pattern'")],
    'required column not mapped': [
        ('columns.case_id', "required cases.csv column 'case_id' is not mapped (map it under 'columns' or give it under 'constants')")],
    'roll not bool': [
        ('columns.wheels_out.roll_over_midnight', 'must be true or false')],
    'roll on derive': [
        ('columns.room_id.roll_over_midnight', 'only for date + time specs')],
    'rooms bad close_time number': [
        ('rooms.close_time', 'must be HH:MM, got 1700')],
    'rooms bad open_time': [
        ('rooms.open_time', "must be HH:MM, got '7am'")],
    'rooms capabilities number': [
        ('rooms.capabilities', "must be a list or a ';'-separated text")],
    'rooms empty site': [
        ('rooms.site', 'must be a site name')],
    'rooms ids not list': [
        ('rooms.ids', 'must be a list of room ids')],
    'rooms not a mapping': [
        ('rooms', 'must be a mapping (site, open_time, close_time, capabilities, patterns)')],
    'rooms pattern bad regex': [
        ('rooms.patterns[0].match', 'bad regular expression: missing ), unterminated subpattern at position 1')],
    'rooms pattern bad time': [
        ('rooms.patterns[0].open_time', "must be HH:MM, got '25:00'")],
    'rooms pattern no match': [
        ('rooms.patterns[0]', "each pattern needs 'match' (a regular expression on room_id)")],
    'rooms pattern not mapping': [
        ('rooms.patterns[0]', "each pattern needs 'match' (a regular expression on room_id)")],
    'rooms pattern unknown key': [
        ('rooms.patterns[0].beds', 'unknown key')],
    'rooms patterns not list': [
        ('rooms.patterns', 'must be a list of {match: REGEX, ...room fields}')],
    'rooms site list': [
        ('rooms.site', 'must be a site name')],
    'rooms unknown key': [
        ('rooms.beds', 'unknown key (known: capabilities, close_time, ids, open_time, patterns, site)')],
    'settings None value': [
        ('settings.hospital_name', 'has no value (TOML has no null)')],
    'settings and files.settings': [
        ('settings', "give either a 'settings' section or 'files.settings', not both")],
    'settings bad service level': [
        ('settings.service_levels.finish_probability', '2 must be a probability in [0.5, 1), e.g. 0.8')],
    'settings bad timezone': [
        ('settings.timezone', '\'Mars/Olympus\' is not an IANA time zone name (e.g. "Europe/Paris")')],
    'settings bad turnover': [
        ('settings.turnover_minutes', "'x' must be a number of minutes within 0..240")],
    'settings missing': [
        ('settings', 'missing section: settings.toml needs turnover_minutes, pacu_minutes, prime_time (or point files.settings at one)')],
    'settings missing key': [
        ('settings.prime_time', 'required setting is missing')],
    'settings not a mapping': [
        ('settings', 'must be a mapping (turnover_minutes, pacu_minutes, prime_time, ...)')],
    'source bad delimiter': [
        ('source.delimiter', "must be a single character, got ';;'")],
    'source bad encoding': [
        ('source.encoding', "unknown encoding 'klingon'")],
    'source bad format': [
        ('source.format', "must be csv, parquet or excel, got 'json'")],
    'source bool sheet': [
        ('source.sheet', 'must be a sheet name or a 0-based sheet index')],
    'source delimiter number': [
        ('source.delimiter', 'must be a single character, got 5')],
    'source header_row 0': [
        ('source.header_row', 'must be a whole number >= 1')],
    'source header_row bool': [
        ('source.header_row', 'must be a whole number >= 1')],
    'source header_row text': [
        ('source.header_row', 'must be a whole number >= 1')],
    'source list sheet': [
        ('source.sheet', 'must be a sheet name or a 0-based sheet index')],
    'source not a mapping': [
        ('source', 'must be a mapping (format, encoding, delimiter, sheet, header_row)')],
    'source unknown key': [
        ('source.sep', 'unknown key (known: delimiter, encoding, format, header_row, sheet)')],
    'spec a list': [
        ('columns.room_id', 'must be a source column name or a mapping (column / date+time / derive)')],
    'spec a number': [
        ('columns.room_id', 'must be a source column name or a mapping (column / date+time / derive)')],
    'spec format bad': [
        ('columns.surgery_date.format', "'dd' has no % directive; strptime formats look like '%m/%d/%Y'")],
    'spec format on combine': [
        ('columns.wheels_in.format', 'only for specs that read text (column, regex, split, concat); date + time specs use date_format/time_format')],
    'spec unknown key': [
        ('columns.room_id.fromat', 'unknown key')],
    'spec without a source': [
        ('columns.room_id', "needs 'column', 'date' + 'time', or 'derive'")],
    'split bad index': [
        ('columns.surgeon_id.index', 'must be a whole number (0 = first part, -1 = last)')],
    'split no column': [
        ('columns.surgeon_id', "split needs 'column' (the source column)")],
    'split no sep': [
        ('columns.surgeon_id.sep', "split needs a non-empty 'sep'")],
    'status map to bad status': [
        ('columns.status.map', "maps to 'done', which is not a valid status (allowed: completed, cancelled, booked)")],
    'time_format bad': [
        ('columns.wheels_out.time_format', "must be a strptime format or a list of them, e.g. '%m/%d/%Y'")],
    'top is None': [
        ('', 'the mapping must be a YAML mapping (key: value) at the top level')],
    'top not a mapping': [
        ('', 'the mapping must be a YAML mapping (key: value) at the top level')],
    'two required not mapped': [
        ('columns.case_id', "required cases.csv column 'case_id' is not mapped (map it under 'columns' or give it under 'constants')")],
    'undefined reference': [
        ('columns.booked_minutes', "refers to output column 'anesthesia_end', which the mapping does not define")],
    'unknown derive': [
        ('columns.surgeon_id.derive', "unknown derive kind 'lookup' (known: minutes_between, regex, split, concat, from_datetime_date)")],
    'unknown target': [
        ('columns.patient_name', "unknown target column 'patient_name' (cases.csv columns: case_id, surgery_date, status, service_line, procedure_code, procedure_name, surgeon_id, room_id, booked_minutes, booked_at, scheduled_start, wheels_in, wheels_out, procedure_start, procedure_end, urgency, cancellation_reason, required_equipment, patient_age, patient_sex, asa_class, bmi, anesthesia_type, admission_type, site; put other columns under 'extras')")],
    'unknown top key': [
        ('colums', 'unknown key (known: version, name, description, source, formats, value_maps, unmapped_values, constants, columns, extras, extra_columns, bad_values, max_bad_row_fraction, files, settings, rooms, infer, clean)')],
    'unknown value map name': [
        ('columns.service_line.map', "no value map named 'services' under 'value_maps'")],
    'unmapped bad': [
        ('columns.status.unmapped', "must be one of keep, error, missing, got 'ignore'")],
    'unmapped without map': [
        ('columns.room_id.unmapped', "'unmapped' needs a 'map'")],
    'unmapped_values bad': [
        ('unmapped_values', "must be one of keep, error, missing, got 'drop'")],
    'urgency map to bad urgency': [
        ('columns.urgency.map', "maps to 'asap', which is not a valid urgency (allowed: elective, urgent, emergent)")],
    'value map None key': [
        ('value_maps.service_lines', 'a value-map key is empty; missing values are handled by if_missing')],
    'value map a list': [
        ('value_maps.service_lines', 'a value map must be a non-empty mapping of source value -> output value')],
    'value map clash': [
        ('value_maps.service_lines.ORTHO', "clashes with 'Ortho' (keys match ignoring case)")],
    'value map empty': [
        ('value_maps.service_lines', 'a value map must be a non-empty mapping of source value -> output value')],
    'value map nested value': [
        ('value_maps.service_lines.A', 'must map to a single value')],
    'value_maps not a mapping': [
        ('value_maps', 'must be a mapping of map name -> {source value: output value}')],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_problem_names_the_file_and_key_in_the_old_words(case: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_mapping(BAD[case](BASE), PATH)
    probs = exc.value.problems
    assert {(p.file, p.row) for p in probs} == {(PATH, None)}
    assert sorted((p.column, p.problem) for p in probs) == sorted(EXPECTED[case])


def test_the_table_covers_every_case() -> None:
    assert set(BAD) == set(EXPECTED)


def test_problems_of_every_section_come_together() -> None:
    """One pass: a wrong section does not hide the problems of the others."""
    with pytest.raises(InputError) as exc:
        parse_mapping(BAD["many problems at once"](BASE), PATH)
    keys = [p.column.split(".")[0] for p in exc.value.problems]
    assert {"colums", "source", "columns", "bad_values", "settings", "rooms", "infer", "clean"} <= set(keys)


def test_a_wrong_column_is_not_reported_again_by_the_columns_that_use_it() -> None:
    """wheels_in is wrong; procedure_start and wheels_out roll over after it and say nothing more
    (the hand validation added "refers to output column 'wheels_in', which the mapping does not define")."""
    with pytest.raises(InputError) as exc:
        parse_mapping(S({"date": "Date"}, "columns", "wheels_in")(BASE), PATH)
    assert [p.column for p in exc.value.problems] == ["columns.wheels_in"]


def _parsed(*changes):
    return parse_mapping(C(*changes)(BASE), PATH)


def test_source_options() -> None:
    m = _parsed(S("tab", "source", "delimiter"), S("Sheet 1", "source", "sheet"), S(3, "source", "header_row"),
                S("excel", "source", "format"))
    assert (m.source.delimiter, m.source.sheet, m.source.header_row, m.source.format) == ("\t", "Sheet 1", 3, "excel")
    assert _parsed(S("\\t", "source", "delimiter")).source.delimiter == "\t"
    assert _parsed(D("source")).source.delimiter == ","


def test_formats_and_value_maps() -> None:
    m = _parsed(S("%d.%m.%Y", "formats", "date"), S({"column": "ASA", "map": {1: "one", 2.0: "two", "3": 3, "4": None}},
                                                    "columns", "asa_class"))
    assert m.formats == {**DEFAULT_FORMATS, "date": ("%d.%m.%Y",)}
    assert m.fields["surgery_date"].formats == ("%d.%m.%Y",)
    assert m.fields["asa_class"].value_map == {"1": "one", "2": "two", "3": "3", "4": None}
    assert m.fields["service_line"].value_map["gen surg"] == "General Surgery"  # named map, keys folded


def test_every_kind_of_spec() -> None:
    m = _parsed(
        S({"derive": "minutes_between", "start": "wheels_in", "end": "wheels_out"}, "columns", "booked_minutes"),
        S({"derive": "from_datetime_date", "from": "wheels_in"}, "columns", "surgery_date"),
        S({"derive": "concat", "columns": [" A", "B"], "sep": "-"}, "columns", "procedure_name"),
        S({"derive": "split", "column": "Surgeon", "sep": ",", "index": -1, "optional": True, "list_sep": "|"},
          "columns", "anesthesia_type"),
        S({"derive": "regex", "column": "Surgeon", "pattern": "(?P<id>\\d+)", "group": "id",
           "if_missing": {"column": "Surgeon ID"}}, "columns", "surgeon_id"),
        S({"date": "Date", "time": "Wheels Out", "roll_over_midnight": True, "max_roll_over_hours": 12,
           "date_format": ["%Y-%m-%d"], "time_format": "%H%M"}, "columns", "wheels_out"),
        S({"column": "Status", "map": {"Done": "completed"}, "unmapped": "missing", "if_missing": "booked"},
          "columns", "status"))
    f = m.fields
    assert (f["booked_minutes"].how, f["booked_minutes"].start, f["booked_minutes"].end) == ("derive", "wheels_in", "wheels_out")
    assert f["surgery_date"].from_target == "wheels_in"
    assert (f["procedure_name"].columns, f["procedure_name"].sep) == (("A", "B"), "-")
    assert (f["anesthesia_type"].index, f["anesthesia_type"].optional, f["anesthesia_type"].list_sep) == (-1, True, "|")
    sid = f["surgeon_id"]
    assert sid.pattern == re.compile("(?P<id>\\d+)") and sid.group == "id"
    assert sid.if_missing_spec.column == "Surgeon ID" and sid.if_missing_spec.key == "columns.surgeon_id.if_missing"
    wo = f["wheels_out"]
    assert (wo.how, wo.after, wo.max_roll_over_hours, wo.date_formats, wo.time_formats) == \
        ("combine", "wheels_in", 12.0, ("%Y-%m-%d",), ("%H%M",))
    assert (f["status"].unmapped, f["status"].if_missing_value, f["urgency"].unmapped) == ("missing", "booked", "error")
    assert m.order.index("wheels_in") < m.order.index("booked_minutes") and m.order.index("wheels_in") < m.order.index("wheels_out")


def test_extras_constants_and_policies() -> None:
    m = _parsed(S({"a": {"column": "A", "kind": "date"}, "d": {"date": "D", "time": "T", "kind": "datetime"},
                   "e": {"derive": "minutes_between", "start": "d", "end": "wheels_out", "kind": "float"}}, "extras"),
                S({"site": "Main", "status": "booked", "surgeon_id": None}, "constants"),
                S("keep", "extra_columns"), S("blank", "bad_values"), S(0, "max_bad_row_fraction"),
                S("missing", "unmapped_values"))
    assert {k: s.kind for k, s in m.extras.items()} == {"a": "date", "d": "datetime", "e": "float"}
    assert m.order.index("d") < m.order.index("e")
    assert m.constants == {"site": "Main", "status": "booked", "surgeon_id": None}
    assert (m.extra_columns, m.bad_values, m.max_bad_row_fraction) == ("keep", "blank", 0.0)
    assert m.fields["room_id"].unmapped == "missing"  # the default for specs that give none


def test_files_rooms_infer_and_clean() -> None:
    m = _parsed(S({"blocks": "b.csv", "staffing": "/abs/s.csv"}, "files"),
                S({"site": 7, "open_time": "06:00", "capabilities": "a; b;", "ids": ["OR 9", 10],
                   "patterns": [{"match": "^X", "site": "B", "capabilities": None}]}, "rooms"),
                S({"blocks": False, "pacu_beds": 4, "weeks": 3}, "infer"),
                S({"procedure_codes": {"strip_modifiers": True}}, "clean"))
    assert m.files == {"blocks.csv": Path("/maps/b.csv"), "staffing.csv": Path("/abs/s.csv")}
    r = m.rooms
    assert (r.site, r.open_time, r.close_time, r.capabilities, r.ids) == ("7", "06:00", "17:00", "a;b", ("OR 9", "10"))
    assert [(p.pattern.pattern, p.values) for p in r.rules] == [("^X", {"site": "B", "capabilities": ""})]
    assert m.infer == {"blocks": False, "staffing": True, "pacu_beds": 4, "params": InferParams(weeks=3)}
    assert _parsed().infer == {"blocks": True, "staffing": True}
    assert m.clean is not None and m.clean.procedure_codes.strip_modifiers is True
