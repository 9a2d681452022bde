"""Database errors as domain errors: the caller learns what went wrong, never the driver's
message (it may quote the statement's values)."""

from __future__ import annotations

import sqlalchemy as sa

from shared_context_server.errors import (
    ConflictError,
    DomainError,
    InvalidInputError,
    StorageUnavailableError,
)
from shared_context_server.storage.sql.dialect import Dialect

INVALID_VALUE = (
    "a value is outside what the database can store or compare: an integer too large for "
    "its column, a NUL character or another value it refuses"
)

_UNAVAILABLE_TEXT = {
    "disk_full": "the database cannot take the write: its disk is full",
    "read_only": "the database is read-only: nothing can be written now",
    "unreachable": "the database cannot be reached",
    "busy": "the database is too busy to take the request now; retry shortly",
    "io_error": "the database reported an I/O error",
}


def unavailable_reason(exc: BaseException, dialect: Dialect) -> str | None:
    """Why the database cannot serve, if ``exc`` says it cannot (disk full, read-only,
    unreachable...); None for any other error."""
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free in time
        return "busy"
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    if exc.orig is not None and _has_code(exc.orig):
        return dialect.unavailable_reason(exc.orig)
    if exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError):
        return "unreachable"  # no code: the driver could not reach the server
    return None


def _has_code(orig: BaseException) -> bool:
    """Whether the driver named the error (SQLite's result code, PostgreSQL's SQLSTATE)."""
    return isinstance(getattr(orig, "sqlite_errorname", None), str) or isinstance(
        getattr(orig, "sqlstate", None), str
    )


def translate_error(exc: BaseException, dialect: Dialect) -> DomainError | None:
    """The domain error a database error stands for, or None if it is a server fault."""
    reason = unavailable_reason(exc, dialect)
    if reason is not None:
        return StorageUnavailableError(_UNAVAILABLE_TEXT[reason], reason=reason)
    if isinstance(exc, sa.exc.IntegrityError):
        # A constraint the specific checks did not foresee (a duplicate id, say).
        return ConflictError("the change conflicts with data already stored")
    if isinstance(exc, sa.exc.DataError | OverflowError):
        # PostgreSQL's class 22 (NUL in text, numeric out of range), SQLite's int64 bind.
        return InvalidInputError(INVALID_VALUE)
    return None
