"""The curated Iceberg table's history, undoing a run, and expiring old snapshots.

    python -m tools.table history  --target_path data/curated
    python -m tools.table rollback --target_path data/curated --to-run RUN_ID
    python -m tools.table rollback --target_table traffic.traffic_minutes --to-snapshot ID
    python -m tools.table expire   --target_path data/curated --retention-days 7

A table given by name is looked up in the local catalog (`--catalog-dir`), or in the
Glue Data Catalog with `--glue-warehouse s3://bucket/prefix/` (AWS credentials and
region as for boto3). Exit status: 0 done, 1 the table or run is not there, 2 a bad argument.
"""

from __future__ import annotations

import argparse
import json
import sys

from traffic_glue.store import catalog, iceberg
from traffic_glue.jobs import maintenance


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.table", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("history", "list the runs that changed the table"),
                       ("rollback", "make the table read as before a run"),
                       ("expire", "drop old snapshots, leftover run branches and orphan files")):
        command = commands.add_parser(name, help=text)
        where = command.add_mutually_exclusive_group(required=True)
        where.add_argument("--target_path", "--target-path", help="the table's folder (s3a:// or local)")
        where.add_argument("--target_table", "--target-table", help="database.table in the catalog")
        command.add_argument("--catalog-dir", help="local catalog (default .local/catalog)")
        command.add_argument("--glue-warehouse", help="use the Glue Data Catalog, warehouse s3://...")
        if name == "rollback":
            to = command.add_mutually_exclusive_group(required=True)
            to.add_argument("--to-run", help="restore the table as it was before this run id")
            to.add_argument("--to-snapshot", type=int, help="restore this snapshot id")
        if name == "expire":
            command.add_argument("--retention-days", type=int, default=maintenance.DEFAULT_RETENTION_DAYS,
                                 help=f"keep snapshots this many days (default {maintenance.DEFAULT_RETENTION_DAYS})")
        if name == "history":
            command.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    if args.command == "expire" and args.retention_days < 0:
        parser.error("--retention-days must be >= 0")
    return args


def session(args: argparse.Namespace):
    from traffic_glue.runtime.glue import DEFAULT_LOCAL_CATALOG
    from traffic_glue.runtime.session import local_spark_session

    if args.glue_warehouse:
        return local_spark_session(
            "traffic-glue-table", extra_conf=iceberg.local_glue_catalog_conf(args.glue_warehouse))
    catalog_dir = args.catalog_dir or (str(DEFAULT_LOCAL_CATALOG) if args.target_table else None)
    return local_spark_session("traffic-glue-table", catalog_dir=catalog_dir)


def resolve(spark, args: argparse.Namespace) -> tuple[str, str]:
    """(identifier, location) of the table; `TableHistoryError` if there is none."""
    if args.target_table:
        info = catalog.describe(spark, args.target_table)
        if info.provider != "iceberg":
            raise maintenance.TableHistoryError(f"{args.target_table} is not an Iceberg table")
        return args.target_table, info.location
    from traffic_glue.store import storage

    location = storage.qualified(spark, args.target_path)
    if not storage.exists(spark, location.rstrip("/") + "/metadata"):
        raise maintenance.TableHistoryError(f"no Iceberg table at {location} (no metadata/)")
    return iceberg.path_table(spark, location), location


def print_history(commits: list[maintenance.Commit], as_json: bool) -> None:
    if as_json:
        for c in commits:
            print(json.dumps({**c.__dict__, "made_current_at": c.made_current_at.isoformat()}))
        return
    print(f"{'made current (UTC)':<20} {'snapshot':>20} {'run':<26} {'days':<22} {'mode':<9} {'rows':>10}")
    for c in commits:
        print(f"{c.made_current_at:%Y-%m-%d %H:%M:%S}  {c.snapshot_id:>20} {c.run_id or '(rollback)':<26} "
              f"{c.days or '':<22} {c.semantics or '':<9} {c.rows:>10}" + ("  <- current" if c.current else ""))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spark = session(args)
    try:
        identifier, location = resolve(spark, args)
        if args.command == "history":
            print_history(maintenance.history(spark, identifier), args.json)
        elif args.command == "rollback" and args.to_run:
            commit = maintenance.rollback_run(spark, identifier, args.to_run)
            print(f"table: {identifier} reads as before run {args.to_run} "
                  f"(snapshot {commit.before_snapshot_id})")
        elif args.command == "rollback":
            maintenance.rollback_to_snapshot(spark, identifier, args.to_snapshot)
            print(f"table: {identifier} reads as snapshot {args.to_snapshot}")
        else:
            print(json.dumps(maintenance.expire(spark, identifier, location, args.retention_days)))
    except (maintenance.TableHistoryError, catalog.CatalogError) as error:
        print(f"table: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
