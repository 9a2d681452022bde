"""The error vocabulary: every failure the server reports has one stable code.

Adapters translate these into their own shapes (MCP error results, HTTP statuses);
services and storage raise them and nothing else.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error a caller may see. ``code`` is stable and documented."""

    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInputError(DomainError):
    code = "INVALID_INPUT"


class LimitExceededError(DomainError):
    code = "LIMIT_EXCEEDED"


class AuthRequiredError(DomainError):
    code = "AUTH_REQUIRED"


class AuthFailedError(DomainError):
    code = "AUTH_FAILED"


class TokenExpiredError(DomainError):
    code = "TOKEN_EXPIRED"


class TokenRevokedError(DomainError):
    code = "TOKEN_REVOKED"


class PermissionDeniedError(DomainError):
    code = "PERMISSION_DENIED"


class SessionNotFoundError(DomainError):
    code = "SESSION_NOT_FOUND"


class SessionClosedError(DomainError):
    code = "SESSION_CLOSED"


class MessageNotFoundError(DomainError):
    code = "MESSAGE_NOT_FOUND"


class MemoryNotFoundError(DomainError):
    code = "MEMORY_NOT_FOUND"


class KeyExistsError(DomainError):
    code = "KEY_EXISTS"


class ResourceNotFoundError(DomainError):
    code = "RESOURCE_NOT_FOUND"


class ConflictError(DomainError):
    code = "CONFLICT"


class InternalError(DomainError):
    code = "INTERNAL"


ALL_ERRORS: tuple[type[DomainError], ...] = (
    InvalidInputError,
    LimitExceededError,
    AuthRequiredError,
    AuthFailedError,
    TokenExpiredError,
    TokenRevokedError,
    PermissionDeniedError,
    SessionNotFoundError,
    SessionClosedError,
    MessageNotFoundError,
    MemoryNotFoundError,
    KeyExistsError,
    ResourceNotFoundError,
    ConflictError,
    InternalError,
)


class InvalidParentError(DomainError):
    code = "INVALID_PARENT"


ALL_ERRORS += (InvalidParentError,)


class TokenInvalidError(DomainError):
    """Malformed, tampered with (bad signature) or missing required claims."""

    code = "TOKEN_INVALID"


class TokenAudienceError(DomainError):
    code = "TOKEN_WRONG_AUDIENCE"


class TokenAlgorithmError(DomainError):
    """Signed with an algorithm the server does not accept (including ``none``)."""

    code = "TOKEN_UNSUPPORTED_ALGORITHM"


ALL_ERRORS += (TokenInvalidError, TokenAudienceError, TokenAlgorithmError)


class SessionLockedError(DomainError):
    """Another agent holds an exclusive lock on the session: it is read-only for others."""

    code = "SESSION_LOCKED"


ALL_ERRORS += (SessionLockedError,)


class NoLockHeldError(DomainError):
    """The caller holds no live lock on the session to unlock or renew (or, for
    force_unlock, nobody does)."""

    code = "NO_LOCK_HELD"


ALL_ERRORS += (NoLockHeldError,)


class IdentityNotAllowedError(DomainError):
    """The credential may not act as that agent: outside its key's binding, an id another
    key registered first, a reserved name, or a ``<delegator>:<name>`` id outside delegation."""

    code = "IDENTITY_NOT_ALLOWED"


class RateLimitedError(DomainError):
    """Too many calls (or failed authentications) in a short time; ``details.retry_after``
    says how many seconds to wait."""

    code = "RATE_LIMITED"


class StorageUnavailableError(DomainError):
    """The database cannot take the write (disk full, read-only) or cannot be reached."""

    code = "STORAGE_UNAVAILABLE"


ALL_ERRORS += (IdentityNotAllowedError, RateLimitedError, StorageUnavailableError)
