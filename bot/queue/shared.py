"""What the front-ends and the workers agree on: the procrastinate app, the task's name, the
results table and how a payload travels."""

from __future__ import annotations

import base64
import pickle

import procrastinate
from procrastinate.schema import SchemaManager

from storage.postgres import open_connection

TASK = "melodybot.run_job"
QUEUE = "melodybot"
RESULTS_CHANNEL = "melodybot_results"
HEARTBEAT_S = 2.0  # how often a worker says it is alive
STALLED_AFTER_S = 10.0  # a worker silent this long is gone: its jobs run again elsewhere
RESULTS_KEPT_S = 3600.0  # results nobody took (their front-end stopped) go after an hour
SCHEMA_LOCK = 0x6D656C6F_64790003

# Results by idempotency key. `taken_at` is set (and the outcome dropped) when the front-end
# takes one; the row stays a while so that a job run a second time finds it and stops.
RESULTS_TABLE = """CREATE TABLE IF NOT EXISTS melodybot_job_results (
    key        TEXT PRIMARY KEY,
    outcome    BYTEA,
    stored_at  DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM clock_timestamp()),
    taken_at   DOUBLE PRECISION
)"""


def queue_app(url: str, *, max_connections: int = 4) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(conninfo=url, min_size=1, max_size=max_connections)
    return procrastinate.App(connector=connector)


def encode(value: object) -> str:
    return base64.b64encode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).decode()


def decode(text: str) -> object:
    return pickle.loads(base64.b64decode(text))


async def ensure_schema(url: str) -> None:
    """procrastinate's tables and the results table, made once by whichever process is first."""
    connection = await open_connection(url)
    async with connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs')")
        row = await cursor.fetchone()
        if row is None or row[0] is None:
            schema = SchemaManager.get_schema()
            await connection.execute(schema)  # type: ignore[arg-type]
        await connection.execute(RESULTS_TABLE)


async def store_result(app: procrastinate.App, key: str, outcome: bytes) -> bool:
    """Keep a job's outcome under its key and wake the front-end; False if it was there already
    (the job ran twice: the first outcome stands)."""
    row = await app.connector.execute_query_one_async(
        """WITH stored AS (
               INSERT INTO melodybot_job_results (key, outcome) VALUES (%(key)s, %(outcome)s)
               ON CONFLICT (key) DO NOTHING RETURNING key)
           SELECT count(pg_notify(%(channel)s, key)) AS stored FROM stored""",
        key=key,
        outcome=outcome,
        channel=RESULTS_CHANNEL,
    )
    return bool(row["stored"])


async def answered(app: procrastinate.App, key: str) -> bool:
    row = await app.connector.execute_query_one_async(
        "SELECT count(*) AS n FROM melodybot_job_results WHERE key = %(key)s", key=key
    )
    return bool(row["n"])
