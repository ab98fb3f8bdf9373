"""SQL run beside the repository on a connection of its own, as an operator's hand or another
program would: for the tests that write what the repository never would, or check what it stored.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

# What each engine raises when a trigger refuses a statement.
REFUSED = (sqlite3.IntegrityError, psycopg.errors.RaiseException)


def execute(target: str | Path, sql: str) -> list[tuple]:
    """Run one statement and commit it; returns its rows (if any)."""
    if isinstance(target, Path):
        with sqlite3.connect(target) as raw:
            return raw.execute(sql).fetchall()
    with psycopg.connect(target, autocommit=True) as raw, raw.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else []
