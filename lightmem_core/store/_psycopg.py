"""The PostgreSQL driver (psycopg 3 and psycopg-pool, extra ``postgres``), imported in one
place, so that every PostgreSQL module says the same thing when the extra is missing."""

from __future__ import annotations

from .._errors import MissingDependency

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.conninfo import conninfo_to_dict
    from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout
except ImportError as err:  # pragma: no cover - the extra is installed in CI
    raise MissingDependency(
        "the PostgreSQL record store needs the 'postgres' extra: "
        "pip install 'lightmem-slm[postgres]'"
    ) from err

__all__ = [
    "AsyncConnectionPool",
    "ConnectionPool",
    "PoolTimeout",
    "conninfo_to_dict",
    "pg_errors",
    "psycopg",
]
