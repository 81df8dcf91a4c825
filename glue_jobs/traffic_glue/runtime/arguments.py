"""A job's arguments, declared once: what each one is called, how its value is read,
its default and what it means.

A job declares them as an `Arguments` of `Argument`s and `Group`s (two arguments on one
row, with a rule between them: exactly one of a path and a table, both dates or
neither), and decorates its configuration class with `Arguments.config`. From that one
declaration come the configuration (a frozen dataclass with an attribute per
argument), the strict parser (`Arguments.parse`), `--help` (`help_text`) and the
README's table (`markdown_table`; a test holds the README to it).

The parser stops at an argument the job does not know, naming the closest known one;
the parameters AWS Glue itself passes to every job script are known too
(`GLUE_PARAMETERS`). It reads the values through a reader: Glue's `getResolvedOptions`
(`glue.resolved_options`) for the Spark jobs, `plain_values` for the Python shell job.
Every bad value raises `ArgumentError` naming the argument, before any Spark session
exists. Plain Python (3.9 too, for the Python shell job): nothing here imports Spark
or Glue.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
import textwrap
import typing
from dataclasses import dataclass, field
from typing import Any, Callable


class ArgumentError(ValueError):
    """A job argument is missing or wrong; the message names it."""


# --- reading one value: (name, text) -> value, ArgumentError naming --name --------------

Parse = Callable[[str, str], Any]
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


def text(name: str, value: str) -> str | None:
    return value or None


def table_name(name: str, value: str) -> str | None:
    """`database.table`."""
    if value and not _TABLE_NAME.match(value):
        raise ArgumentError(f"--{name} must be database.table, got {value!r}")
    return value or None


def date(name: str, value: str) -> dt.date | None:
    """`YYYY-MM-DD`, a calendar date."""
    if not value:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ArgumentError(f"--{name} must be a date YYYY-MM-DD, got {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ArgumentError(f"--{name} is not a calendar date: {value!r}") from None


def whole(minimum: int) -> Parse:
    """A whole number of at least `minimum`."""

    def parse(name: str, value: str) -> int:
        if not re.fullmatch(r"\d+", value.strip()):
            raise ArgumentError(f"--{name} must be a whole number >= {minimum}, got {value!r}")
        number = int(value)
        if number < minimum:
            raise ArgumentError(f"--{name} must be >= {minimum}, got {number}")
        return number

    return parse


def choice(allowed: tuple[str, ...], normalise: Callable[[str], str] = str) -> Parse:
    """One of `allowed` (after `normalise`, e.g. `str.upper`)."""

    def parse(name: str, value: str) -> str:
        value = normalise(value)
        if value not in allowed:
            raise ArgumentError(f"--{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    return parse


def boolean(name: str, value: str) -> bool:
    """`true` or `false`, as Glue passes every value: a string."""
    return choice(("true", "false"))(name, value) == "true"


# --- the declaration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Argument:
    name: str  # as given, without the leading --
    parse: Parse = text
    default: Any = None  # the value when it is not given
    help: str = ""  # its meaning in --help and the README; none: Glue's own, not listed
    shown: str | None = None  # the default as a person reads it, when not the value itself
    attribute: str = ""  # the configuration's attribute, when not `name`
    required: bool = False
    flag: bool = False  # may be given alone (`--dry_run`), meaning true; Glue always passes a value
    fallback: str | None = None  # an argument whose value it takes when it is not given
    by_glue: bool = False  # getResolvedOptions returns it by itself: asking for it fails on Glue

    def __post_init__(self):
        if not self.attribute:
            object.__setattr__(self, "attribute", self.name)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def arguments(self) -> tuple[Argument, ...]:
        return (self,)

    @property
    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.required:
            return "required"
        if self.default is None:
            return "none"
        if isinstance(self.default, bool):
            return f"`{str(self.default).lower()}`"
        return f"`{self.default}`" if isinstance(self.default, str) else str(self.default)

    @property
    def type(self) -> Any:
        """What its value is: the return type of `parse`."""
        try:
            return typing.get_type_hints(self.parse).get("return", Any)
        except (NameError, TypeError):
            return Any


Rule = Callable[["Group", dict], None]


def exactly_one(group: Group, values: dict) -> None:
    first, second = group.names
    if bool(values[first]) == bool(values[second]):
        raise ArgumentError(f"exactly one of --{first} and --{second} is required")


def at_least_one(group: Group, values: dict) -> None:
    first, second = group.names
    if not values[first] and not values[second]:
        raise ArgumentError(f"--{first} or --{second} is required")


def both_or_neither(group: Group, values: dict) -> None:
    first, second = group.names
    if (values[first] is None) != (values[second] is None):
        missing = second if values[second] is None else first
        raise ArgumentError(f"--{missing} is required when the other {group.noun} is given")


@dataclass(frozen=True)
class Group:
    """Arguments on one row of the table, with a rule between them."""

    arguments: tuple[Argument, ...]
    rule: Rule
    shown: str  # the default, as a person reads it
    help: str
    noun: str = "argument"  # what one of them is, in the rule's message

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(argument.name for argument in self.arguments)

    @property
    def default_text(self) -> str:
        return self.shown


class Config:
    """What every job's configuration does; `Arguments.config` makes a subclass a frozen
    dataclass with an attribute per argument, and `given`: every argument as given,
    Glue's too (for the run report)."""

    def check(self) -> None:
        """The checks between arguments, once each value is well formed; `ArgumentError`."""

    def as_report(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


Reader = Callable[[list[str], list[str]], dict]


class Arguments:
    """A job's arguments in the order `--help` and the README list them."""

    def __init__(self, *rows: Argument | Group):
        self.rows = rows
        self.config_type: type | None = None

    @property
    def arguments(self) -> tuple[Argument, ...]:
        return tuple(argument for row in self.rows for argument in row.arguments)

    @property
    def documented(self) -> tuple[Argument | Group, ...]:
        """The rows of the table: the job's own arguments (Glue's are not listed)."""
        return tuple(row for row in self.rows if row.help)

    @property
    def names(self) -> list[str]:
        """Every documented argument's name."""
        return [name for row in self.documented for name in row.names]

    def config(self, cls: type) -> type:
        """Class decorator: `cls` (a `Config`) as a frozen dataclass whose fields are the
        arguments, then the fields `cls` declares itself (values resolved later, such
        as the days a run is given), then `given`."""
        own = dict(cls.__dict__.get("__annotations__", {}))
        annotations = {}
        for argument in self.arguments:
            annotations[argument.attribute] = argument.type
            setattr(cls, argument.attribute, argument.default)
        annotations.update(own)
        annotations["given"] = dict
        cls.given = field(default_factory=dict, compare=False)
        cls.__annotations__ = annotations
        self.config_type = dataclass(frozen=True)(cls)
        return self.config_type

    def parse(self, argv: list[str], read: Reader | None = None):
        """`sys.argv` as Glue passes it (`--name value`), read by `read` (by default
        `plain_values`), as this declaration's configuration."""
        read = read or plain_values
        argv = with_flag_values(argv, tuple(a.name for a in self.arguments if a.flag))
        unknown = unknown_argument(argv, [a.name for a in self.arguments])
        if unknown:
            raise ArgumentError(unknown)
        given = given_arguments(argv)
        for argument in self.arguments:
            if argument.required and not given.get(argument.name):
                raise ArgumentError(f"--{argument.name} is required")
        asked = [a.name for a in self.arguments if a.name in given and not a.by_glue]
        texts = read(argv, asked)
        values = {}
        for argument in self.arguments:
            value = given.get(argument.name) if argument.by_glue else texts.get(argument.name)
            values[argument.name] = argument.default if value is None else argument.parse(argument.name, value)
        for argument in self.arguments:
            if argument.fallback and values[argument.name] is None:
                values[argument.name] = values.get(argument.fallback)
        for row in self.rows:
            if isinstance(row, Group):
                row.rule(row, values)
        config = self.config_type(**{a.attribute: values[a.name] for a in self.arguments}, given=given)
        config.check()
        return config


# --- argv as Glue passes it -----------------------------------------------------------------

# The special parameters AWS Glue passes to, or takes from, a job script's arguments
# ("Using job parameters in AWS Glue jobs", AWS Glue developer guide), without `--`.
GLUE_PARAMETERS = frozenset({
    "JOB_ID", "JOB_RUN_ID", "JOB_NAME", "WORKFLOW_NAME", "WORKFLOW_RUN_ID",
    "SECURITY_CONFIGURATION", "TempDir", "RedshiftTempDir", "encryption-type",
    "additional-python-modules", "python-modules-installer-option", "auto-scale-within-microbatch",
    "class", "conf", "continuous-log-conversionPattern", "continuous-log-logGroup",
    "continuous-log-logStreamPrefix", "customer-driver-env-vars", "customer-executor-env-vars",
    "datalake-formats", "disable-proxy-v2", "enable-auto-scaling",
    "enable-continuous-cloudwatch-log", "enable-continuous-log-filter", "enable-glue-datacatalog",
    "enable-job-insights", "enable-lakeformation-fine-grained-access", "enable-metrics",
    "enable-observability-metrics", "enable-rename-algorithm-v2",
    "enable-s3-parquet-optimized-committer", "enable-spark-ui", "executor-cores", "extra-files",
    "extra-jars", "extra-py-files", "job-bookmark-option", "job-bookmark-from", "job-bookmark-to",
    "job-language", "scriptLocation", "spark-event-logs-path", "use-postgres-driver",
    "user-jars-first", "write-shuffle-files-to-s3", "write-shuffle-spills-to-s3",
    "shuffle-storage-path", "enable-data-lineage", "continuation-option",
})


def given_names(argv: list[str]) -> list[str]:
    """The argument names in `sys.argv` (`--name value` or `--name=value`)."""
    return [token[2:].split("=", 1)[0] for token in argv[1:] if token.startswith("--")]


def given_arguments(argv: list[str]) -> dict[str, str]:
    """Every `--name value` pair in `sys.argv`, as given (for the run report)."""
    given, tokens = {}, argv[1:]
    for index, token in enumerate(tokens):
        if token.startswith("--"):
            name, equals, value = token[2:].partition("=")
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if not equals and following is not None and not following.startswith("--"):
                value = following
            given[name] = value
    return given


def plain_values(argv: list[str], names: list[str]) -> dict[str, str]:
    """The values of `names` in `argv`, read in plain Python (a Python shell job, which
    has no Spark for Glue's own reader to import)."""
    given = given_arguments(argv)
    return {name: given[name] for name in names if name in given}


def with_flag_values(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """`argv` with `true` after each of `flags` given without a value."""
    result = []
    for index, token in enumerate(argv):
        result.append(token)
        following = argv[index + 1] if index + 1 < len(argv) else None
        if token[2:] in flags and token.startswith("--") and (following is None or following.startswith("--")):
            result.append("true")
    return result


def unknown_argument(argv: list[str], own: list[str]) -> str | None:
    """A message for the first argument that is neither the job's nor Glue's, or None."""
    for name in given_names(argv):
        if name not in own and name not in GLUE_PARAMETERS:
            close = difflib.get_close_matches(name, own, n=1, cutoff=0.6)
            hint = f"; did you mean --{close[0]}?" if close else "; see --help"
            return f"unknown argument --{name}{hint}"
    return None


# --- what a person reads ------------------------------------------------------------------


def markdown_table(arguments: Arguments) -> str:
    """The README's table of the arguments."""
    lines = ["| argument | default | meaning |", "|---|---|---|"]
    for row in arguments.documented:
        names = " / ".join(f"`--{name}`" for name in row.names)
        lines.append(f"| {names} | {row.default_text} | {row.help} |")
    return "\n".join(lines)


def help_text(program: str, usage: str, arguments: Arguments) -> str:
    """`--help`: the usage line, then each argument with its default and meaning."""
    lines = [f"usage: {program} {usage}", "", "arguments:"]
    for row in arguments.documented:
        names = ", ".join(f"--{name}" for name in row.names)
        lines.append(f"  {names}  (default: {row.default_text.replace('`', '')})")
        lines += textwrap.wrap(row.help.replace("`", ""), width=88,
                               initial_indent="      ", subsequent_indent="      ")
    lines += ["", "AWS Glue's own job parameters (--JOB_NAME, --TempDir, --conf, ...) are accepted."]
    return "\n".join(lines)
