"""A ruleset's verdict on curated days (docs/QUALITY.md): measured in one pass over the
rows with Spark's own aggregations, then judged against each rule's threshold.

- `day_measures(rows, rules, proven)`: one row per day of `rows`, with each rule's
  measure. Two aggregations in one Spark job: per location and day (rows, distinct keys,
  values out of their domain), then per day;
- `proven_columns(rules, files)`: the columns of checks of values that the data files'
  own column metrics (Iceberg's null and NaN counts, lower and upper bounds) show no value
  breaks: their measure is 0 without reading them, and the one pass reads fewer columns;
- `judge(...)`: each rule's outcome per day, from those measures and, for a band of the
  recent days, the rows per day the table held before the run (plain values);
- `evaluate(...)`: both.

The same ruleset gives the same verdict wherever Spark runs it (Glue or a laptop):
nothing here is Glue's.
"""

from __future__ import annotations

import datetime as dt
import functools
import statistics
from dataclasses import dataclass
from typing import Sequence

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F

from traffic_glue.compute import schema as S
from traffic_glue.compute.quality_rules import (
    BETWEEN, COLUMN_CHECKS, DAY_ROWS_BAND, IN_SET, LOCATION_MINUTES, NOT_NULL, UNIQUE, Rule, Ruleset,
)

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
MINUTES_PER_DAY = 1440  # a UTC day: no clock change
DAY, ROWS = "date", "rows"  # not `day`: a partition column's name
_DAY_KEYS = S.EVENT_PARTITIONS[:3]  # year, month, day
_HOUR = S.EVENT_PARTITIONS[3]
_HOUR_SECONDS = 3600
# The columns of a rule's measures in `day_measures`: `<rule>` its value, `<rule>__<x>` the rest.
_SEP = "__"
_MINUTES = "_minutes"  # a location's distinct minutes of the day
# Keys counted per hour (`by_hour`) take a 64-bit mask of the hour's minutes per location,
# counted with `bit_count`: Spark's plain hash aggregation, where a distinct count keeps
# every one of a day's millions of keys (a day of the full network, two cores: about 0.5
# s instead of 2.4). A time that is no whole minute would share its minute's bit: such
# times are counted here, and any found has the keys counted exactly (`evaluate`).
_UNALIGNED = "_unaligned"
_MINUTE_SECONDS = 60
_DAY_LINE_LIMIT = 3  # a failing rule's days named in the one line; the report has them all


def day_measures(rows: DataFrame, rules: Sequence[Rule],
                 proven: frozenset[tuple[str, str]] = frozenset(), by_hour: bool = False,
                 exact: bool = False) -> DataFrame:
    """One row per day (`date`) of curated `rows`: its `rows`, and per rule of
    `rules` its measure `<rule name>` (and `<rule name>__<column>` per column of a check of
    values; `__locations` and `__lowest` for `location_minutes`). A (rule name, column) of
    `proven` (`proven_columns`) is known to break nowhere: measured 0, not read.

    `by_hour`: the keys are counted per hour partition and location first, then added up
    per day; the same figures where no minute lies outside its hour partition
    (`times_in_their_hours`). There a location's minutes are counted from a mask of the
    hour's minutes, unless `exact`; the measures then carry `_unaligned`, the keyed times
    that are no whole minute (0: the masks counted exactly). Spark's partial aggregation
    then sends one row per hour and location across the shuffle, not the rows."""
    location, minute = F.col(S.LOCATION_ID), F.col(S.RECORD_TIMESTAMP)
    per_location = [F.count(F.lit(1)).alias(ROWS)]
    per_day = [F.sum(ROWS).alias(ROWS)]
    masked = by_hour and not exact and any(rule.check == LOCATION_MINUTES or _location_minute_key(rule)
                                           for rule in rules)
    present = location.isNotNull() & minute.isNotNull()  # a (location, minute) key
    minutes = _minutes_in_hour(present) if masked else F.count_distinct(location, minute)
    if masked:
        per_location.append(F.count_if(present & (F.pmod(minute, F.lit(_MINUTE_SECONDS)) != 0)).alias(_UNALIGNED))
        per_day.append(F.sum(_UNALIGNED).alias(_UNALIGNED))
    if any(rule.check == LOCATION_MINUTES for rule in rules):
        per_location.append(minutes.alias(_MINUTES))
    for rule in rules:
        name = rule.name
        if rule.check == UNIQUE:
            # A row with a NULL in its key repeats no key (that is `not_null`'s to say).
            keyed = F.count_if(_all_present(rule.columns))
            distinct = (minutes if masked and _location_minute_key(rule)
                        else F.count_distinct(*(F.col(c) for c in rule.columns)))
            per_location.append((keyed - distinct).alias(name))
            per_day.append(F.sum(name).alias(name))
        elif rule.check in COLUMN_CHECKS:
            counted = [c for c in rule.columns if (name, c) not in proven]
            for column in counted:
                per_location.append(F.count_if(_breaks(rule, F.col(column))).alias(f"{name}{_SEP}{column}"))
            per_day += [(F.sum(f"{name}{_SEP}{c}") if c in counted else F.lit(0).cast("long")).alias(f"{name}{_SEP}{c}")
                        for c in rule.columns]
            per_day.append(sum((F.sum(f"{name}{_SEP}{c}") for c in counted), F.lit(0).cast("long")).alias(name))
        elif rule.check == LOCATION_MINUTES:
            below = F.col(_MINUTES) < F.lit(rule.min_share * MINUTES_PER_DAY)
            located = location.isNotNull()
            per_day += [
                F.count_if(located & below).alias(name),
                F.count_if(located).alias(f"{name}{_SEP}locations"),
                # The fewest minutes, and of the locations that have them the lowest id.
                F.min(F.when(located, F.struct(F.col(_MINUTES).alias("minutes"), location.alias("location"))))
                .alias(f"{name}{_SEP}lowest"),
            ]
    if by_hour:
        # Every figure per location is a count: the hours' add up to the day's.
        per_hour = rows.groupBy(*_DAY_KEYS, _HOUR, S.LOCATION_ID).agg(*per_location)
        located = per_hour.groupBy(*_DAY_KEYS, S.LOCATION_ID).agg(
            *(F.sum(c).alias(c) for c in per_hour.columns if c not in (*_DAY_KEYS, _HOUR, S.LOCATION_ID)))
    else:
        located = rows.groupBy(*_DAY_KEYS, S.LOCATION_ID).agg(*per_location)
    measured = located.groupBy(*_DAY_KEYS).agg(*per_day)
    return measured.select(
        F.make_date(*(F.col(c).cast("int") for c in _DAY_KEYS)).alias(DAY),
        *(c for c in measured.columns if c not in _DAY_KEYS),
    )


@dataclass(frozen=True)
class ColumnMetrics:
    """What one data file's metadata says of one column (Iceberg's column metrics): its
    values (NULLs and NaNs included), NULLs, NaNs, and the lowest and highest other value,
    exact for numbers; None where the file recorded no such figure."""

    values: int | None
    nulls: int | None
    nans: int | None
    lower: float | int | None
    upper: float | int | None


def proven_columns(rules: Sequence[Rule], files: Sequence[dict[str, ColumnMetrics]],
                   integral: frozenset[str] = frozenset()) -> frozenset[tuple[str, str]]:
    """The (rule name, column) of `rules`' checks of values that no value of the data
    files `files` (each file's metrics per column) can break, from the metrics alone: no
    NULL where NULL is refused, no NaN, the bounds inside the range, or (an `in_set` of a
    column of `integral`) every whole number between the bounds in the set. A column a
    file has no metrics for, or whose metrics leave a doubt, is not proven: it is counted.
    No file: nothing is proven (there is nothing to count either)."""
    if not files:
        return frozenset()
    proven = set()
    for rule in rules:
        if rule.check not in COLUMN_CHECKS:
            continue
        for column in rule.columns:
            if all(_file_keeps(rule, file.get(column), column in integral) for file in files):
                proven.add((rule.name, column))
    return frozenset(proven)


def times_in_their_hours(files: Sequence[tuple[tuple, ColumnMetrics | None]]) -> bool:
    """Whether the data files' metrics show every `recordtimestamp` inside its file's
    hour partition (`files`: each file's (year, month, day, hour) and its metrics of
    `recordtimestamp`): then a location's minute is in one hour partition only, and its
    keys counted per hour add up to the day's (`day_measures(by_hour=True)`). A file
    without those metrics, or a time outside: False."""
    for partition, metrics in files:
        if metrics is None or metrics.values is None or metrics.nulls is None:
            return False
        if metrics.values == metrics.nulls:
            continue  # only NULL times: keys of none
        if metrics.lower is None or metrics.upper is None or any(p is None for p in partition):
            return False
        year, month, day, hour = (int(p) for p in partition)
        start = int(dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc).timestamp())
        if not start <= metrics.lower <= metrics.upper < start + _HOUR_SECONDS:
            return False
    return True


def _file_keeps(rule: Rule, metrics: ColumnMetrics | None, integral: bool) -> bool:
    """Whether `metrics` show that no value of the file breaks `rule` (False: unknown)."""
    if metrics is None or metrics.values is None or metrics.nulls is None:
        return False
    if metrics.nulls and (rule.check == NOT_NULL or not rule.nulls):
        return False
    if rule.check == NOT_NULL:
        return True
    nans = 0 if integral else metrics.nans  # NaN is a value of floating columns only
    if nans is None or nans:
        return False  # NaN is outside any range with a maximum: counted, not judged here
    if metrics.values == metrics.nulls:
        return True  # only NULLs, allowed
    low, high = metrics.lower, metrics.upper
    if low is None or high is None:
        return False
    if rule.check == BETWEEN:
        return ((rule.minimum is None or low >= rule.minimum)
                and (rule.maximum is None or high <= rule.maximum))
    # IN_SET: only a whole-number column with every whole number between its bounds in the set.
    if not integral or high - low > len(rule.values):
        return False
    return all(float(v) in {float(x) for x in rule.values} for v in range(int(low), int(high) + 1))


def _location_minute_key(rule: Rule) -> bool:
    """A `unique` rule of the curated key: (location, minute)."""
    return rule.check == UNIQUE and sorted(rule.columns) == sorted((S.LOCATION_ID, S.RECORD_TIMESTAMP))


def _minutes_in_hour(present: Column) -> Column:
    """A group's distinct (location, minute) keys, for a group of one location and one
    hour partition whose times all lie inside it: the bits of a mask of the hour's 60
    minutes, set by the rows whose key is `present` (no NULL in it)."""
    bit = F.expr(f"shiftleft(1L, cast(pmod(`{S.RECORD_TIMESTAMP}`, {_HOUR_SECONDS}) div {_MINUTE_SECONDS} as int))")
    return F.coalesce(F.bit_count(F.bit_or(F.when(present, bit))), F.lit(0)).cast("long")


def _all_present(columns: Sequence[str]) -> Column:
    return functools.reduce(lambda a, b: a & b, (F.col(c).isNotNull() for c in columns), F.lit(True))


def _breaks(rule: Rule, value: Column) -> Column:
    """Whether a value breaks a check of values (NULL: whether NULL is refused)."""
    if rule.check == NOT_NULL:
        return value.isNull()
    if rule.check == BETWEEN:
        inside = F.lit(True)
        if rule.minimum is not None:
            inside = inside & (value >= F.lit(rule.minimum))
        if rule.maximum is not None:
            inside = inside & (value <= F.lit(rule.maximum))
        # NaN sorts above every number in Spark: it is outside any range with a maximum,
        # and inside one without (a double with only a minimum).
    else:  # IN_SET
        inside = value.isin(list(rule.values))
    return F.when(value.isNull(), F.lit(not rule.nulls)).otherwise(~inside)


# --- the verdict --------------------------------------------------------------------------


@dataclass(frozen=True)
class DayOutcome:
    day: dt.date
    status: str  # PASSED, FAILED or SKIPPED
    value: int | float | None  # the measure (None: skipped)
    measured: str  # the measure as a person reads it


@dataclass(frozen=True)
class RuleOutcome:
    rule: Rule
    status: str  # FAILED if a day failed, else PASSED if a day passed, else SKIPPED
    days: tuple[DayOutcome, ...]
    requirement: str  # what the rule asks, as a person reads it
    note: str = ""  # why it was skipped

    @property
    def failed_days(self) -> tuple[DayOutcome, ...]:
        return tuple(d for d in self.days if d.status == FAILED)

    def failure_text(self) -> str:
        """`<rule> on <day>: <measured>[, on <day>: ...] (wanted: <requirement>)`."""
        failed = self.failed_days
        named = [f"on {d.day}: {d.measured}" for d in failed[:_DAY_LINE_LIMIT]]
        if len(failed) > _DAY_LINE_LIMIT:
            named.append(f"and {len(failed) - _DAY_LINE_LIMIT} more days")
        return f"{self.rule.name} {', '.join(named)} (wanted: {self.requirement})"


@dataclass(frozen=True)
class Verdict:
    """Every rule's outcome on the run's days."""

    ruleset: str  # the file the rules came from
    outcomes: tuple[RuleOutcome, ...]

    @property
    def blocking_failures(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == FAILED and o.rule.blocking)

    @property
    def warnings(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == FAILED and not o.rule.blocking)

    @property
    def blocked(self) -> bool:
        return bool(self.blocking_failures)

    def counts_text(self) -> str:
        """`7 rules: 5 passed, 1 warning, 1 skipped`."""
        statuses = [o.status for o in self.outcomes]
        parts = [f"{statuses.count(PASSED)} passed"]
        if self.blocking_failures:
            parts.append(f"{len(self.blocking_failures)} blocking failed")
        if self.warnings:
            parts.append(f"{len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''}")
        if statuses.count(SKIPPED):
            parts.append(f"{statuses.count(SKIPPED)} skipped")
        return f"{len(self.outcomes)} rules: {', '.join(parts)}"

    def failure_line(self) -> str:
        """The one line of a run the blocking rules stopped."""
        failed = self.blocking_failures
        rules = "rule" if len(failed) == 1 else "rules"
        return (f"data quality: {len(failed)} blocking {rules} failed, nothing was published: "
                + "; ".join(o.failure_text() for o in failed) + f" [ruleset {self.ruleset}]")


def judge(measures: Sequence[Row], ruleset: Ruleset, semantics: str, days: Sequence[dt.date],
          published_rows: dict[dt.date, int]) -> Verdict:
    """Each rule's outcome on each of `days`, from `measures` (`day_measures`' rows; a day
    without a row has no rows) and `published_rows` (rows per day the table held before
    the run: what `day_rows_band` compares with)."""
    by_day = {row[DAY]: row.asDict() for row in measures}
    outcomes = []
    for rule in ruleset.rules:
        requirement = _requirement(rule)
        if semantics not in rule.semantics:
            outcomes.append(RuleOutcome(rule, SKIPPED, (), requirement,
                                        f"a rule of --semantics {' and '.join(rule.semantics)} only"))
            continue
        judged = tuple(_judge_day(rule, day, by_day.get(day, {}), published_rows) for day in days)
        statuses = {d.status for d in judged}
        status = FAILED if FAILED in statuses else PASSED if PASSED in statuses else SKIPPED
        outcomes.append(RuleOutcome(rule, status, judged, requirement))
    return Verdict(ruleset.source, tuple(outcomes))


def evaluate(rows: DataFrame, ruleset: Ruleset, semantics: str, days: Sequence[dt.date],
             published_rows: dict[dt.date, int],
             proven: frozenset[tuple[str, str]] = frozenset(), by_hour: bool = False) -> Verdict:
    """`ruleset`'s verdict on the curated `rows` of `days` (one Spark job); `proven`:
    checks of values that the files' metrics show pass (`proven_columns`), not read;
    `by_hour`: keys counted per hour first (`day_measures`)."""
    rules = ruleset.for_semantics(semantics)
    measures = day_measures(rows, rules, proven, by_hour).collect()
    if any(row.asDict().get(_UNALIGNED) for row in measures):  # a time that is no whole minute
        measures = day_measures(rows, rules, proven, by_hour, exact=True).collect()
    return judge(measures, ruleset, semantics, days, published_rows)


def _judge_day(rule: Rule, day: dt.date, measured: dict, published_rows: dict[dt.date, int]) -> DayOutcome:
    name = rule.name
    if rule.check == DAY_ROWS_BAND:
        return _judge_band(rule, day, int(measured.get(ROWS) or 0), published_rows)
    value = int(measured.get(name) or 0)
    status = PASSED if value == 0 else FAILED
    if rule.check == UNIQUE:
        text = f"{_counted(value, 'row')} {'repeats' if value == 1 else 'repeat'} a key"
    elif rule.check == LOCATION_MINUTES:
        lowest = measured.get(f"{name}{_SEP}lowest")
        located = int(measured.get(f"{name}{_SEP}locations") or 0)
        text = f"{value:,} of {_counted(located, 'location')} below"
        if value:
            text += (f" (fewest: location {lowest['location']}, {_counted(lowest['minutes'], 'minute')}, "
                     f"{lowest['minutes'] / MINUTES_PER_DAY:.3f} of the day)")
    else:
        text = _counted(value, "NULL value" if rule.check == NOT_NULL else "value") \
            + ("" if rule.check == NOT_NULL else " outside")
        per_column = [(c, int(measured.get(f"{name}{_SEP}{c}") or 0)) for c in rule.columns]
        if value and len(rule.columns) > 1:
            text += " (" + ", ".join(f"{c} {n:,}" for c, n in per_column if n) + ")"
        elif value:
            text += f" ({rule.columns[0]})"
    return DayOutcome(day, status, value, text)


def _judge_band(rule: Rule, day: dt.date, rows: int, published_rows: dict[dt.date, int]) -> DayOutcome:
    before = [published_rows[d] for d in sorted(published_rows) if d < day and published_rows[d] > 0]
    recent = before[-rule.recent_days:]
    if not recent:
        return DayOutcome(day, SKIPPED, None, f"{rows:,} rows; no published day before it to compare with")
    median = statistics.median(recent)
    ratio = rows / median
    status = PASSED if rule.min_ratio <= ratio <= rule.max_ratio else FAILED
    days = f"{len(recent)} published days before it" if len(recent) > 1 else "published day before it"
    return DayOutcome(day, status, ratio, f"{rows:,} rows, {ratio:.3g} x the median {median:,g} of the {days}")


def _counted(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _requirement(rule: Rule) -> str:
    columns = ", ".join(rule.columns)
    or_null = " or NULL" if rule.nulls else ""
    if rule.check == UNIQUE:
        return f"each ({columns}) once"
    if rule.check == NOT_NULL:
        return f"no NULL in {columns}"
    if rule.check == BETWEEN:
        if rule.maximum is None:
            return f"{columns} at least {rule.minimum:g}{or_null}"
        if rule.minimum is None:
            return f"{columns} at most {rule.maximum:g}{or_null}"
        return f"{columns} in {rule.minimum:g}..{rule.maximum:g}{or_null}"
    if rule.check == IN_SET:
        return f"{columns} in {{{', '.join(f'{v:g}' for v in rule.values)}}}{or_null}"
    if rule.check == LOCATION_MINUTES:
        return (f"every location at least {rule.min_share:g} of the day's {MINUTES_PER_DAY:,} minutes "
                f"({rule.min_share * MINUTES_PER_DAY:,g})")
    return (f"{rule.min_ratio:g}..{rule.max_ratio:g} x the median rows of the last {rule.recent_days} "
            "published days")
