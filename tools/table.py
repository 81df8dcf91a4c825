"""The curated Iceberg table: its history, undoing a run, expiry, migrating an old table.

    python -m tools.table history  --target_path data/curated
    python -m tools.table rollback --target_path data/curated --to_run RUN_ID
    python -m tools.table rollback --target_table traffic.traffic_minutes --to_snapshot ID
    python -m tools.table expire   --target_path data/curated --retention_days 7
    python -m tools.table migrate  --target_path data/seed [--target_table DB.T] [--semantics athena]

A table given by name is looked up in the local catalog (`--catalog_dir`), or in the
Glue Data Catalog with `--glue_warehouse s3://bucket/prefix/` (AWS credentials and
region as for boto3). Options may be spelled with dashes too (`--to-run`). Exit status:
0 done, 1 the table or run is not there or cannot be used, 2 a bad argument (for migrate,
also a --semantics other than the one the old table recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from traffic_glue.compute import modes
from traffic_glue.jobs import maintenance
from traffic_glue.store import migrate, tables

PROG = "python -m tools.table"
MIGRATE_HELP = (
    "make an Iceberg table of a curated table of the old layouts (this job's earlier Parquet "
    "folders, the seed pipeline's Hive table: year=/month=/day=/hour= folders), importing its "
    "data files where they are"
)
SEMANTICS_HELP = (
    "the mode the table's rows were computed in: athena or corrected. Default: what the "
    "folder's _table.json records (this job's earlier Parquet output; another value is an "
    "error), else athena (the seed pipeline computed the athena numbers)"
)


class Parser(argparse.ArgumentParser):
    """Bad arguments end in one line, `python -m tools.table: error: ...`, and status 2."""

    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {message}\n")


def _option(group, name: str, **kwargs) -> None:
    """`--name_with_underscores`, as the jobs spell options, and `--name-with-dashes`."""
    spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    group.add_argument(*spellings, dest=name, **kwargs)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, text in (("history", "list the runs that changed the table"),
                       ("rollback", "make the table read as before a run"),
                       ("expire", "drop old snapshots, leftover run branches and orphan files"),
                       ("migrate", MIGRATE_HELP)):
        command = commands.add_parser(name, help=text, description=text)
        if name == "migrate":
            # A folder, a Hive table, or both (the folder's table made under that name).
            where = command.add_argument_group("the table (one of them, or both)")
            _option(where, "target_path", help="the folder of year= folders (s3a:// or local)")
            _option(where, "target_table", help="database.table: a Hive table in the catalog, or the "
                                                "name to give the folder's table there")
            _option(command, "semantics", choices=modes.SEMANTICS, help=SEMANTICS_HELP)
        else:
            where = command.add_mutually_exclusive_group(required=True)
            _option(where, "target_path", help="the table's folder (s3a:// or local)")
            _option(where, "target_table", help="database.table in the catalog")
        _option(command, "catalog_dir", help="local catalog (default $TRAFFIC_GLUE_CATALOG_DIR or .local/catalog)")
        _option(command, "glue_warehouse", help="use the Glue Data Catalog, warehouse s3://...")
        if name == "rollback":
            to = command.add_mutually_exclusive_group(required=True)
            _option(to, "to_run", help="restore the table as it was before this run id")
            _option(to, "to_snapshot", type=int, help="restore this snapshot id")
        if name == "expire":
            _option(command, "retention_days", type=int, default=maintenance.DEFAULT_RETENTION_DAYS,
                    help=f"keep snapshots this many days (default {maintenance.DEFAULT_RETENTION_DAYS})")
        if name == "history":
            command.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    if args.command == "expire" and args.retention_days < 0:
        parser.error("--retention_days must be >= 0")
    if args.command == "migrate" and not (args.target_path or args.target_table):
        parser.error("migrate needs --target_path or --target_table (or both)")
    return args


def session(args: argparse.Namespace):
    from traffic_glue.runtime.glue import DEFAULT_LOCAL_CATALOG
    from traffic_glue.runtime.session import local_spark_session
    from traffic_glue.store import iceberg

    if args.glue_warehouse:
        return local_spark_session(
            "traffic-glue-table", extra_conf=iceberg.local_glue_catalog_conf(args.glue_warehouse))
    default = os.environ.get("TRAFFIC_GLUE_CATALOG_DIR") or str(DEFAULT_LOCAL_CATALOG)  # as the jobs'
    catalog_dir = args.catalog_dir or (default if args.target_table else None)
    return local_spark_session("traffic-glue-table", catalog_dir=catalog_dir)


def resolve(spark, args: argparse.Namespace):
    """The Iceberg table named; `TableError` if there is none."""
    table = tables.open_table(spark, None, table=args.target_table, path=args.target_path)
    if not table.exists():
        raise tables.TableError(f"no Iceberg table at {table.name} (no metadata/)")
    return table


def print_history(commits: list, as_json: bool) -> None:
    """One line per move of the table's `main`: a run's commit or a rollback (the run
    column says to which run's snapshot), the current one marked."""
    if as_json:
        for c in commits:
            print(json.dumps({**c.__dict__, "made_current_at": c.made_current_at.isoformat()}))
        return
    runs = [
        (f"(rollback to run {c.rollback_to_run})" if c.rollback_to_run else f"(rollback to snapshot {c.snapshot_id})")
        if c.rollback else c.run_id or "(no run id)"
        for c in commits
    ]
    width = max([26, *map(len, runs)])
    print(f"{'made current (UTC)':<20} {'snapshot':>20} {'run':<{width}} {'days':<22} {'mode':<9} {'rows':>10}")
    for c, run in zip(commits, runs):
        print(f"{c.made_current_at:%Y-%m-%d %H:%M:%S}  {c.snapshot_id:>20} {run:<{width}} "
              f"{c.days or '':<22} {c.semantics or '':<9} {c.rows:>10}" + ("  <- current" if c.current else ""))


def run(spark, args: argparse.Namespace) -> None:
    if args.command == "migrate":
        result = migrate.migrate(spark, args.target_path, args.target_table, args.semantics)
        for line in result.lines():
            print(line)
        return
    table = resolve(spark, args)
    if args.command == "history":
        print_history(table.history(), args.json)
    elif args.command == "rollback" and args.to_run:
        commit = table.rollback_run(args.to_run)
        print(f"table: {table.name} reads as before run {args.to_run} (snapshot {commit.before_snapshot_id})")
    elif args.command == "rollback":
        table.rollback_to_snapshot(args.to_snapshot)
        print(f"table: {table.name} reads as snapshot {args.to_snapshot}")
    else:
        print(json.dumps(maintenance.expire(table, args.retention_days)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(session(args), args)
    except Exception as error:  # every failure ends in one line, no traceback
        known = isinstance(error, (tables.TableError, migrate.MigrateError))
        message = migrate.first_line(error)
        if not known and not hasattr(error, "java_exception"):
            message = f"{type(error).__name__}: {message}"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2 if isinstance(error, migrate.ModeConflict) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
