"""Copies the runs of an MLflow SQLite database (`mlflow.db`) into an MLflow PostgreSQL database,
ids kept, so the same runs, parent links and benchmark keys are read from either store.

Usage: python scripts/sqlite-to-postgres.py MLFLOW_DB POSTGRESQL_URI [--batch 50000]

POSTGRESQL_URI is a tracking URI (`postgresql://user:password@host:port/database`, any
`postgresql+driver://` spelling). The target must hold MLflow's schema at the same alembic
revision as the file and nothing but MLflow's Default experiment: the schema is created first
by opening the URI with MLflow itself (as the tests and scripts/compare-select-speed.sh do), so
it is exactly MLflow's. The tracking tables are copied in foreign-key order with COPY
(experiments, experiment_tags, runs, tags, params, metrics, latest_metrics, datasets, inputs,
input_tags), the experiment id sequence is moved past the copied ids, and a table with rows that
is not copied is named (the copy then fails rather than leave it behind). Booleans (`is_nan`)
are converted from SQLite's 0/1. One transaction: nothing is half-copied.
"""

import argparse
import sqlite3
import sys
import time

import psycopg

# Foreign-key order: parents first.
TABLES = [
    "experiments",
    "experiment_tags",
    "runs",
    "tags",
    "params",
    "metrics",
    "latest_metrics",
    "datasets",
    "inputs",
    "input_tags",
]
# Written by MLflow itself when it creates a database (the revision, the default workspace);
# never copied.
SKIPPED = {"alembic_version", "workspaces"}


def connect_uri(uri):
    """A libpq URI from a SQLAlchemy one (`postgresql+psycopg2://` → `postgresql://`)."""
    scheme, rest = uri.split("://", 1)
    if not scheme.startswith("postgresql"):
        sys.exit(f"not a postgresql:// URI: {scheme}://…")
    return "postgresql://" + rest


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mlflow_db")
    parser.add_argument("postgresql_uri")
    parser.add_argument("--batch", type=int, default=50_000, help="rows fetched per step")
    args = parser.parse_args()
    started = time.time()
    source = sqlite3.connect(f"file:{args.mlflow_db}?mode=ro", uri=True)
    (source_revision,) = source.execute("SELECT version_num FROM alembic_version").fetchone()
    tables_with_rows = []
    for (name,) in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"):
        if name not in SKIPPED and source.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone():
            tables_with_rows.append(name)
    left_out = sorted(set(tables_with_rows) - set(TABLES))
    if left_out:
        sys.exit(f"{args.mlflow_db}: tables with rows this copy does not handle: {left_out}")

    with psycopg.connect(connect_uri(args.postgresql_uri)) as target:
        with target.cursor() as cursor:
            cursor.execute("SELECT version_num FROM alembic_version")
            (target_revision,) = cursor.fetchone()
            if target_revision != source_revision:
                sys.exit(f"revisions differ: {args.mlflow_db} is at {source_revision}, the "
                         f"database at {target_revision}; upgrade the older one first")
            cursor.execute("SELECT count(*) FROM runs")
            (runs,) = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM experiments WHERE experiment_id <> 0")
            (experiments,) = cursor.fetchone()
            if runs or experiments:
                sys.exit("the target database already holds experiments or runs; copy into a "
                         "fresh one (only MLflow's Default experiment)")
            # The file's Default experiment (id 0) replaces the one MLflow created.
            cursor.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
            cursor.execute("DELETE FROM experiments WHERE experiment_id = 0")
            for table in TABLES:
                if table not in tables_with_rows:
                    continue
                cursor.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = %s", (table,))
                target_types = dict(cursor.fetchall())
                columns = [row[1] for row in source.execute(f'PRAGMA table_info("{table}")')
                           if row[1] in target_types]
                booleans = [target_types[column] == "boolean" for column in columns]
                quoted = ", ".join(f'"{column}"' for column in columns)
                rows = source.execute(f'SELECT {quoted} FROM "{table}"')
                copied = 0
                with cursor.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
                    while True:
                        batch = rows.fetchmany(args.batch)
                        if not batch:
                            break
                        for row in batch:
                            if any(booleans):
                                row = tuple(None if value is None else bool(value)
                                            if is_bool else value
                                            for value, is_bool in zip(row, booleans))
                            copy.write_row(row)
                        copied += len(batch)
                print(f"{table}: {copied} rows", file=sys.stderr)
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), "
                "GREATEST((SELECT max(experiment_id) FROM experiments), 1))")
            cursor.execute("ANALYZE")
    print(f"copied {args.mlflow_db} in {time.time() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
