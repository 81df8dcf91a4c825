"""The data quality ruleset a curated day must meet (docs/QUALITY.md): its rules, read
from one JSON document and checked whole before any row is looked at.

A ruleset is `{"description": "...", "rules": [<rule>, ...]}`; a rule is an object with
`name`, `check`, `severity` (`blocking` or `warning`), optionally `semantics` (the modes
it applies to, by default both) and `why`, and the fields of its check (`CHECKS`):

| check | fields | what it measures on a day |
|---|---|---|
| `unique` | `columns` (with `uniqueid`) | rows that repeat a key held by an earlier row |
| `not_null` | `columns` | NULL values |
| `between` | `columns`, `min` and/or `max`, `nulls` | values outside `min..max` (NULL too, unless `nulls`) |
| `in_set` | `columns`, `values`, `nulls` | values not in `values` (NULL too, unless `nulls`) |
| `location_minutes` | `min_share` | locations with fewer than `min_share` of the day's 1,440 minutes |
| `day_rows_band` | `recent_days`, `min_ratio`, `max_ratio` | the day's rows over the median of the last `recent_days` published days |

Anything else (an unknown field or check, a column the curated table does not have, a
value of the wrong kind) is a `RulesetError` naming the file, the rule and the field.
Plain Python: nothing here needs Spark, so a bad file is refused before Spark starts.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from traffic_glue.compute import schema as S
from traffic_glue.compute.modes import SEMANTICS

BLOCKING, WARNING = "blocking", "warning"
SEVERITIES = (BLOCKING, WARNING)
UNIQUE, NOT_NULL, BETWEEN, IN_SET = "unique", "not_null", "between", "in_set"
LOCATION_MINUTES, DAY_ROWS_BAND = "location_minutes", "day_rows_band"
# The checks of values, measured per column.
COLUMN_CHECKS = (NOT_NULL, BETWEEN, IN_SET)
# Every check's own fields: (required, optional).
CHECKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    UNIQUE: (("columns",), ()),
    NOT_NULL: (("columns",), ()),
    BETWEEN: (("columns",), ("min", "max", "nulls")),
    IN_SET: (("columns", "values"), ("nulls",)),
    LOCATION_MINUTES: (("min_share",), ()),
    DAY_ROWS_BAND: (("recent_days", "min_ratio", "max_ratio"), ()),
}
COMMON_FIELDS = (("name", "check", "severity"), ("semantics", "why"))
TOP_FIELDS = ("description", "rules")
# A rule's name is a column name of the measures (`quality.day_measures`): `<name>`, and
# `<name>__<column>` for its details, so no `__` in a name, and none of the measures' own
# columns or the curated table's (the measures are grouped by some of them).
_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
_RESERVED_NAMES = ("date", "rows", *S.CURATED_TABLE_SCHEMA.fieldNames())
_NUMERIC = ("int", "bigint", "double")
_TYPES = {f.name: f.dataType.simpleString() for f in S.CURATED_TABLE_SCHEMA.fields}


class RulesetError(ValueError):
    """A ruleset file that cannot be used as written; the message names the file, the
    rule and the field."""


@dataclass(frozen=True)
class Rule:
    name: str
    check: str  # one of CHECKS
    severity: str  # BLOCKING or WARNING
    semantics: tuple[str, ...] = SEMANTICS  # the modes it applies to
    why: str = ""
    columns: tuple[str, ...] = ()
    minimum: int | float | None = None  # between
    maximum: int | float | None = None  # between
    values: tuple[int | float, ...] = ()  # in_set
    nulls: bool = False  # between, in_set: NULL is allowed
    min_share: float | None = None  # location_minutes
    recent_days: int | None = None  # day_rows_band
    min_ratio: float | None = None  # day_rows_band
    max_ratio: float | None = None  # day_rows_band

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING


@dataclass(frozen=True)
class Ruleset:
    source: str  # the file, as messages and the report name it
    rules: tuple[Rule, ...]
    description: str = ""

    def for_semantics(self, semantics: str) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if semantics in rule.semantics)

    @property
    def needs_published_days(self) -> bool:
        """Whether a rule compares with the table's earlier days."""
        return any(rule.check == DAY_ROWS_BAND for rule in self.rules)


def parse_ruleset(text: str, source: str) -> Ruleset:
    """The ruleset in `text` (a JSON document) read from `source`; `RulesetError`."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise RulesetError(f"{source}: not JSON: {error}") from None
    if not isinstance(document, dict):
        raise RulesetError(f'{source}: must be a JSON object with "rules", got {_kind(document)}')
    _refuse_unknown(document, TOP_FIELDS, f"{source}:")
    rules = document.get("rules")
    if not isinstance(rules, list) or not rules:
        raise RulesetError(f'{source}: "rules" must be a non-empty list of rules')
    description = document.get("description", "")
    if not isinstance(description, str):
        raise RulesetError(f'{source}: "description" must be text')
    parsed: list[Rule] = []
    for number, item in enumerate(rules, start=1):
        rule = _rule(item, f"{source}: rule {number}")
        if any(rule.name == other.name for other in parsed):
            raise RulesetError(f'{source}: rule {number}: the name "{rule.name}" is used twice')
        parsed.append(rule)
    return Ruleset(source, tuple(parsed), description)


def _rule(item: Any, where: str) -> Rule:
    if not isinstance(item, dict):
        raise RulesetError(f"{where}: must be a JSON object, got {_kind(item)}")
    name = item.get("name")
    if isinstance(name, str) and _NAME.fullmatch(name) and len(name) <= 64 and name not in _RESERVED_NAMES:
        where = f'{where} ("{name}")'
    else:
        raise RulesetError(f'{where}: "name" must be up to 64 lower-case letters, digits and single _ '
                           "between them, starting with a letter, and neither date, rows nor a column's "
                           f"name; got {json.dumps(name)}")
    check = item.get("check")
    if check not in CHECKS:
        raise RulesetError(f'{where}: "check" must be one of {", ".join(CHECKS)}, got {json.dumps(check)}')
    required, optional = CHECKS[check]
    _refuse_unknown(item, COMMON_FIELDS[0] + COMMON_FIELDS[1] + required + optional, f"{where}:")
    for field in required:
        if field not in item:
            raise RulesetError(f'{where}: check "{check}" needs "{field}"')
    severity = item.get("severity")
    if severity not in SEVERITIES:
        raise RulesetError(f'{where}: "severity" must be blocking or warning, got {json.dumps(severity)}')
    values: dict[str, Any] = {"name": name, "check": check, "severity": severity}
    if "semantics" in item:
        modes = item["semantics"]
        if not isinstance(modes, list) or not modes or any(m not in SEMANTICS for m in modes):
            raise RulesetError(f'{where}: "semantics" must be a non-empty list of {" and ".join(SEMANTICS)}, '
                               f"got {json.dumps(modes)}")
        values["semantics"] = tuple(dict.fromkeys(modes))
    if "why" in item:
        if not isinstance(item["why"], str):
            raise RulesetError(f'{where}: "why" must be text')
        values["why"] = item["why"]
    if "columns" in required:
        values["columns"] = _columns(item["columns"], check, where)
    if check == BETWEEN:
        values.update(_bounds(item, values["columns"], where))
    if check == IN_SET:
        found = item["values"]
        if not isinstance(found, list) or not found or not all(_is_number(v) for v in found):
            raise RulesetError(f'{where}: "values" must be a non-empty list of numbers, got {json.dumps(found)}')
        values["values"] = tuple(dict.fromkeys(found))
    if check in (BETWEEN, IN_SET):
        nulls = item.get("nulls", False)
        if not isinstance(nulls, bool):
            raise RulesetError(f'{where}: "nulls" must be true or false, got {json.dumps(nulls)}')
        values["nulls"] = nulls
    if check == LOCATION_MINUTES:
        values["min_share"] = _number(item, "min_share", where, above=0, at_most=1)
    if check == DAY_ROWS_BAND:
        days = item["recent_days"]
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise RulesetError(f'{where}: "recent_days" must be a whole number of at least 1, got {json.dumps(days)}')
        values["recent_days"] = days
        values["min_ratio"] = _number(item, "min_ratio", where, at_least=0)
        values["max_ratio"] = _number(item, "max_ratio", where, above=0)
        if values["min_ratio"] > values["max_ratio"]:
            raise RulesetError(f'{where}: "min_ratio" {values["min_ratio"]} is above "max_ratio" {values["max_ratio"]}')
    return Rule(**values)


def _columns(found: Any, check: str, where: str) -> tuple[str, ...]:
    if not isinstance(found, list) or not found or not all(isinstance(c, str) for c in found):
        raise RulesetError(f'{where}: "columns" must be a non-empty list of column names, got {json.dumps(found)}')
    for column in found:
        if column not in _TYPES:
            close = difflib.get_close_matches(column, list(_TYPES), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise RulesetError(f'{where}: "columns": "{column}" is not a column of the curated table{hint}')
        if check in (BETWEEN, IN_SET) and _TYPES[column] not in _NUMERIC:
            raise RulesetError(f'{where}: "columns": "{column}" is {_TYPES[column]}, not a number')
    if len(set(found)) != len(found):
        raise RulesetError(f'{where}: "columns" names a column twice')
    if check == UNIQUE and S.LOCATION_ID not in found:
        raise RulesetError(f'{where}: "columns" must include {S.LOCATION_ID}: a key is counted per location and day')
    return tuple(found)


def _bounds(item: dict, columns: tuple[str, ...], where: str) -> dict:
    if "min" not in item and "max" not in item:
        raise RulesetError(f'{where}: check "between" needs "min", "max" or both')
    bounds = {}
    for field, attribute in (("min", "minimum"), ("max", "maximum")):
        if field in item:
            bounds[attribute] = _number(item, field, where)
    if bounds.get("minimum") is not None and bounds.get("maximum") is not None \
            and bounds["minimum"] > bounds["maximum"]:
        raise RulesetError(f'{where}: "min" {bounds["minimum"]} is above "max" {bounds["maximum"]}')
    return bounds


def _number(item: dict, field: str, where: str, *, above: float | None = None,
            at_least: float | None = None, at_most: float | None = None) -> int | float:
    value = item[field]
    limits = []
    if above is not None:
        limits.append(f"above {above}")
    if at_least is not None:
        limits.append(f"at least {at_least}")
    if at_most is not None:
        limits.append(f"at most {at_most}")
    wanted = "a number" + (f" {' and '.join(limits)}" if limits else "")
    if (not _is_number(value) or (above is not None and value <= above)
            or (at_least is not None and value < at_least) or (at_most is not None and value > at_most)):
        raise RulesetError(f'{where}: "{field}" must be {wanted}, got {json.dumps(value)}')
    return value


def _is_number(value: Any) -> bool:
    # JSON's true and false are no numbers (Python's bool is an int); nor are NaN or infinities.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value \
        and value not in (float("inf"), float("-inf"))


def _refuse_unknown(found: dict, known: tuple[str, ...], where: str) -> None:
    for field in found:
        if field not in known:
            close = difflib.get_close_matches(str(field), known, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else f" (known: {', '.join(known)})"
            raise RulesetError(f'{where} unknown field "{field}"{hint}')


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true or false",
            type(None): "null"}.get(type(value), "a number")
