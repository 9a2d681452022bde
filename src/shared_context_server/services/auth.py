"""Identity: API keys, JWTs, and turning a presented credential into a Principal."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared_context_server.clock import Clock
from shared_context_server.domain.access import (
    IdentityOwner,
    granted_by_key,
    require_may_act_as,
    require_may_bind,
    require_may_refresh,
    require_mintable,
)
from shared_context_server.domain.audit import AuditEvent, audit, system_audit
from shared_context_server.domain.events import Change, ChangeEvent, EventKind
from shared_context_server.domain.limits import check_agent_id
from shared_context_server.domain.models import ApiKey, KeyBinding, Permission
from shared_context_server.domain.presence import NO_SESSION
from shared_context_server.domain.principal import Principal
from shared_context_server.domain.rate_limit import TokenBuckets
from shared_context_server.errors import (
    AuthFailedError,
    IdentityNotAllowedError,
    InvalidInputError,
    TokenAlgorithmError,
    TokenAudienceError,
    TokenExpiredError,
    TokenInvalidError,
    TokenRevokedError,
)
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Snapshot, Transaction

API_KEY_PREFIX = "scs_"
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "exp", "iat", "jti", "aud", "iss"]
DEFAULT_PERMISSIONS = frozenset({Permission.READ, Permission.WRITE})
ALL_PERMISSIONS = frozenset(Permission)
# A validated token or API key is trusted this long before revocation is checked again.
REVOCATION_RECHECK_SECONDS = 2.0
# How long a key verified once still passes a failed-authentication limit (known_key).
KNOWN_KEY_SECONDS = 600.0
MIN_API_KEY_CHARS = 32
REFUSALS_AUDITED_BURST = 30
# Shell-style patterns over the agent-id alphabet: worker-*, ci-??, team-[ab]-*.
AGENT_PATTERN = re.compile(r"^[A-Za-z0-9._@*?\[\]-]{1,100}$")
CACHE_ENTRIES = 10_000


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def register_identity(
    tx: Transaction, agent_id: str, key_name: str | None, now: datetime
) -> IdentityOwner:
    """Register ``agent_id`` to ``key_name`` (None: an operator) unless someone did first
    (audited as ``identity.registered``); whoever holds it now."""
    row = tx.identity.register(agent_id, key_name, now)
    if row is None:
        owner = tx.identity.owner(agent_id)
        assert owner is not None, "an id registered first is never unregistered"
        return owner
    event = system_audit("identity.registered", now, target=agent_id, key=key_name)
    tx.audited(event.of_row("identity", agent_id, row))
    return IdentityOwner(key_name)


def revoke_token(tx: Transaction, jti: str, expires_at: datetime, event: AuditEvent) -> None:
    """Revoke the token ``jti`` until ``expires_at``, audited as a ``revoked_token`` row by
    ``event``. The record holds the expiry, so the sweep may remove the row once it has
    passed; a token revoked before leaves the event recorded without a digest (nothing
    was written)."""
    row = tx.identity.revoke_token(jti, expires_at)
    tx.changed(revoked(event, jti=jti))
    if row is not None:
        metadata = {**event.metadata, "expires_at": expires_at.isoformat()}
        event = replace(event, metadata=metadata).of_row("revoked_token", jti, row)
    tx.audited(event)


def revoked(event: AuditEvent, **credential: str) -> Change:
    """The feed's word to other processes that a credential was revoked."""
    return Change(
        EventKind.CREDENTIAL_REVOKED, NO_SESSION, event.agent_id, event.at, payload=credential
    )


def is_revoked(tx: Snapshot, jti: str, key_name: str | None = None) -> bool:
    """Whether the token, or the API key it was obtained with, has been revoked."""
    if tx.identity.is_token_revoked(jti):
        return True
    return key_name is not None and tx.identity.is_key_revoked(key_name)


def parse_permissions(values: Iterable[str]) -> frozenset[Permission]:
    try:
        return frozenset(Permission(v) for v in values)
    except ValueError as exc:
        allowed = ", ".join(p.value for p in Permission)
        raise InvalidInputError(f"unknown permission; use {allowed}", field="permissions") from exc


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    principal: Principal
    expires_at: datetime
    denied: frozenset[Permission]


@dataclass(frozen=True, slots=True)
class TokenSettings:
    secret: str
    issuer: str
    audience: str
    ttl_seconds: int


class AuthService:
    def __init__(self, store: Store, clock: Clock, tokens: TokenSettings) -> None:
        self._store = store
        self._clock = clock
        self._tokens = tokens
        # token -> (principal, jti, exp, monotonic time of the last revocation check)
        self._verified: dict[str, tuple[Principal, str, float, float]] = {}
        # (key hash, agent id, agent type) -> (principal, monotonic time of the last check)
        self._keys: dict[tuple[str, str | None, str | None], tuple[Principal, float]] = {}
        # key hash -> monotonic time it last verified (see known_key)
        self._good_keys: dict[str, float] = {}
        # Refusals of an identity audited per key: a burst, then one a second.
        self._refusals = TokenBuckets(clock, REFUSALS_AUDITED_BURST, 1.0)
        # Registered agent ids never change hands, so who holds one is remembered.
        self._owners: dict[str, IdentityOwner] = {}

    # API keys ---------------------------------------------------------------------------

    async def create_api_key(
        self,
        name: str,
        permissions: frozenset[Permission],
        binding: KeyBinding | None = None,
        key: str | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key; the plain key is returned once and only its hash is stored.

        Without ``binding`` the key acts as the agent named like it, of type generic."""
        check_agent_id(name, "name")
        if not permissions:
            raise InvalidInputError("an API key needs at least one permission", field="permissions")
        binding = check_binding(binding or KeyBinding(agent_id=name))
        if key is not None and len(key) < MIN_API_KEY_CHARS:
            raise InvalidInputError(
                f"an API key needs at least {MIN_API_KEY_CHARS} characters", field="key"
            )
        plain = key or API_KEY_PREFIX + secrets.token_urlsafe(32)
        key_hash = hash_api_key(plain)
        now = self._clock.now()
        record = ApiKey(uuid.uuid4().hex[:16], name, permissions, now, binding)
        event = system_audit(
            "api_key.created",
            now,
            target=name,
            permissions=sorted(p.value for p in permissions),
            acts_as=binding.describe(),
        )
        bound_id = binding.agent_id

        def create(tx: Transaction) -> ApiKey:
            if bound_id is not None:
                owner = tx.identity.owner(bound_id)
                held_by = owner.key_name if owner is not None else None
                holder = tx.identity.get_api_key(held_by) if held_by is not None else None
                require_may_bind(bound_id, owner, holder)
            row = tx.identity.insert_api_key(record, key_hash)
            tx.audited(event.of_row("api_key", name, row))
            if bound_id is not None:
                # The id is the key's from now on (unless someone had it): no pattern key
                # can claim it before its first use.
                register_identity(tx, bound_id, name, now)
            return record

        return (await self._store.write(create)).value, plain

    async def list_api_keys(self) -> list[ApiKey]:
        return await self._store.read(lambda tx: tx.identity.list_api_keys())

    async def find_api_key(self, key: str) -> ApiKey | None:
        """The stored record of the plain ``key``, revoked or not (None: no such key)."""
        key_hash = hash_api_key(key)
        return await self._store.read(lambda tx: tx.identity.find_api_key(key_hash))

    async def audit(self, event: AuditEvent) -> None:
        """Record an event that changes nothing else (a failed login, a refusal)."""
        await self._store.write(lambda tx: tx.audited(event))

    async def _register(self, agent_id: str, key_name: str | None) -> IdentityOwner:
        now = self._clock.now()
        done = await self._store.write(lambda tx: register_identity(tx, agent_id, key_name, now))
        return done.value

    async def revoke_api_key(self, name: str) -> bool:
        """Revoke a key: it, and every token and delegation obtained with it, stop working
        at once here, and in other processes as soon as they hear of it (``hear``)."""
        self._forget_key(name)
        now = self._clock.now()
        event = system_audit("api_key.revoked", now, target=name)

        def revoke(tx: Transaction) -> bool:
            row = tx.identity.revoke_api_key(name, now)
            if row is None:
                return False
            tx.audited(event.of_row("api_key", name, row))
            tx.changed(revoked(event, key=name))
            return True

        return (await self._store.write(revoke)).value

    def derived_key(self, purpose: str) -> bytes:
        """A key for ``purpose`` (the dashboard's cookie signature) derived from the token
        secret, so every process sharing that secret shares it and nothing else is needed;
        it reveals nothing of the secret."""
        return hmac.new(self._tokens.secret.encode(), purpose.encode(), hashlib.sha256).digest()

    def known_key(self, credential: str) -> bool:
        """Whether ``credential`` is an API key this process verified lately: its holder is
        let through (to be verified again as usual) a failed-authentication limit that others
        at the same address ran out."""
        checked = self._good_keys.get(hash_api_key(credential))
        return checked is not None and time.monotonic() - checked < KNOWN_KEY_SECONDS

    async def verify_api_key(self, key: str) -> ApiKey:
        record = await self.find_api_key(key)
        if record is None or record.revoked_at is not None:
            raise AuthFailedError("the API key is not valid")
        return record

    # tokens -----------------------------------------------------------------------------

    async def authenticate(
        self,
        agent_id: str,
        agent_type: str | None,
        api_key: str,
        requested: frozenset[Permission] | None = None,
    ) -> IssuedToken:
        """A token for ``agent_id`` if the key may act as it (its binding, and who registered
        the id first); ``agent_type`` defaults to the key's (first) type."""
        check_agent_id(agent_id)
        if agent_type is not None:
            check_agent_id(agent_type, "agent_type")
        now = self._clock.now()
        try:
            record = await self.verify_api_key(api_key)
        except AuthFailedError:
            failed = AuditEvent(
                "auth.failed", agent_id, agent_type or "generic", now, metadata={"via": "api_key"}
            )
            await self.audit(failed)
            raise
        agent_type = agent_type or record.binding.default_type
        wanted = requested if requested is not None else DEFAULT_PERMISSIONS
        granted = granted_by_key(record, wanted)  # a refusal before anything is registered
        await self._admit(record, agent_id, agent_type)
        principal = Principal(agent_id, agent_type, granted, key_name=record.name)
        token, expires_at = self.issue_token(principal)
        await self.audit(
            audit(
                principal,
                "auth.token_issued",
                now,
                target=record.name,
                permissions=sorted(p.value for p in granted),
                denied=sorted(p.value for p in wanted - granted),
            )
        )
        return IssuedToken(token, principal, expires_at, wanted - granted)

    async def _admit(self, key: ApiKey, agent_id: str, agent_type: str) -> None:
        """Refuse (and audit) an identity the key may not act as; register a new one to
        the key (an operator key registers it to the operators)."""
        try:
            owner = self._owners.get(agent_id) or await self._store.read(
                lambda tx: tx.identity.owner(agent_id)
            )
            require_may_act_as(key, agent_id, agent_type, owner)
            if owner is None:
                owner = await self._register(agent_id, None if key.binding.any_agent else key.name)
                require_may_act_as(key, agent_id, agent_type, owner)  # lost a race to register
        except IdentityNotAllowedError as exc:
            # Audited, but a key refused over and over writes a bounded number of records.
            if not self._refusals.take(key.name):
                refused = AuditEvent(
                    "auth.identity_refused",
                    agent_id,
                    agent_type,
                    self._clock.now(),
                    target=key.name,
                    metadata={"reason": exc.details.get("reason")},
                )
                await self.audit(refused)
            raise
        if len(self._owners) > CACHE_ENTRIES:
            self._owners.clear()
        self._owners[agent_id] = owner

    async def operator_token(self, principal: Principal) -> str:
        """A token minted by an operator at the command line (no API key): any identity
        but a sub-agent's or a reserved one; a new agent id is registered to operators."""
        require_mintable(principal.agent_id)
        await self._register(principal.agent_id, None)  # a no-op if it is registered
        token, _ = self.issue_token(principal)
        return token

    def issue_token(
        self,
        principal: Principal,
        *,
        ttl_seconds: float | None = None,
        jti: str | None = None,
    ) -> tuple[str, datetime]:
        """A signed token for ``principal``; a session-restricted one keeps its restriction."""
        now = self._clock.now()
        expires_at = now + timedelta(seconds=ttl_seconds or self._tokens.ttl_seconds)
        claims: dict[str, Any] = {
            "sub": principal.agent_id,
            "agent_type": principal.agent_type,
            "permissions": sorted(p.value for p in principal.permissions),
            "iss": self._tokens.issuer,
            "aud": self._tokens.audience,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": jti or uuid.uuid4().hex,
        }
        if principal.session_id is not None:
            claims["sid"] = principal.session_id
            claims["dlg"] = principal.delegated_by
        if principal.key_name is not None:
            claims["key"] = principal.key_name
        import jwt  # on first use: PyJWT and its crypto backends are not needed to start

        return jwt.encode(claims, self._tokens.secret, algorithm=ALGORITHM), expires_at

    def _decode(self, token: str) -> dict[str, Any]:
        import jwt  # see issue_token

        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise TokenInvalidError("the token is malformed") from exc
        if header.get("alg") != ALGORITHM:
            raise TokenAlgorithmError(f"tokens must be signed with {ALGORITHM}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._tokens.secret,
                algorithms=[ALGORITHM],
                audience=self._tokens.audience,
                issuer=self._tokens.issuer,
                options={
                    "require": ["sub", "exp", "iat", "jti", "aud", "iss"],
                    # Time is judged by our clock below, not the wall clock.
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError as exc:
            raise TokenAudienceError("the token was issued for another audience") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenInvalidError(f"the token is not valid: {exc}") from exc
        # Expiry is judged by our clock, not the wall clock, so tests can move time.
        if claims["exp"] <= self._clock.now().timestamp():
            raise TokenExpiredError("the token has expired; call refresh_token or authenticate")
        return claims

    async def verify_token(self, token: str) -> Principal:
        cached = self._verified.get(token)
        now = self._clock.now().timestamp()
        if cached and cached[2] > now and time.monotonic() - cached[3] < REVOCATION_RECHECK_SECONDS:
            return cached[0]
        claims = self._decode(token)
        jti, key_name = claims["jti"], claims.get("key")
        if await self._store.read(lambda tx: is_revoked(tx, jti, key_name)):
            raise TokenRevokedError("the token, or the API key it came from, has been revoked")
        try:
            principal = Principal(
                agent_id=check_agent_id(str(claims["sub"])),
                agent_type=check_agent_id(str(claims.get("agent_type", "generic")), "agent_type"),
                permissions=parse_permissions(claims.get("permissions", [])),
                session_id=claims.get("sid"),
                delegated_by=claims.get("dlg"),
                key_name=claims.get("key"),
            )
        except InvalidInputError as exc:
            raise TokenInvalidError("the token's claims are not valid") from exc
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = (principal, claims["jti"], float(claims["exp"]), time.monotonic())
        return principal

    def forget(self, jti: str) -> None:
        """Drop cached verifications of a token just revoked, so it fails at once here."""
        self._verified = {t: v for t, v in self._verified.items() if v[1] != jti}

    def _forget_key(self, name: str) -> None:
        self._verified = {t: v for t, v in self._verified.items() if v[0].key_name != name}
        self._keys = {k: v for k, v in self._keys.items() if v[0].key_name != name}
        self._good_keys.clear()  # re-verified on next use

    def hear(self, event: ChangeEvent) -> None:
        """A bus listener: a credential another process revoked stops working here as soon
        as the change feed brings the word (REVOCATION_RECHECK_SECONDS is the backstop)."""
        if event.kind is not EventKind.CREDENTIAL_REVOKED:
            return
        if jti := event.payload.get("jti"):
            self.forget(jti)
        if key := event.payload.get("key"):
            self._forget_key(key)

    async def refresh(self, token: str) -> IssuedToken:
        """Swap a valid token for a fresh one with the same identity; the old one is revoked.

        An expired token cannot be refreshed: the agent authenticates again with its key.
        """
        principal = await self.verify_token(token)
        require_may_refresh(principal)
        await self.revoke(token, audit(principal, "auth.token_refreshed", self._clock.now()))
        new_token, expires_at = self.issue_token(principal)
        return IssuedToken(new_token, principal, expires_at, frozenset())

    async def revoke(self, token: str, event: AuditEvent | None = None) -> None:
        claims = self._decode(token)
        self._verified.pop(token, None)
        jti = claims["jti"]
        expires_at = datetime.fromtimestamp(claims["exp"], UTC) + timedelta(seconds=1)
        if event is None:
            event = system_audit("auth.token_revoked", self._clock.now(), target=jti)
        recorded = event
        await self._store.write(lambda tx: revoke_token(tx, jti, expires_at, recorded))

    # credentials ------------------------------------------------------------------------

    async def resolve(
        self, credential: str, agent_id: str | None = None, agent_type: str | None = None
    ) -> Principal:
        """A JWT or an API key presented by a caller, as a Principal.

        An API key stands for the agent named by ``agent_id`` (default: the one it is bound
        to; an operator key's own name), within its binding, with its full permission set.
        """
        if credential.startswith(API_KEY_PREFIX) or credential.count(".") != 2:
            return await self._resolve_key(credential, agent_id, agent_type)
        return await self.verify_token(credential)

    async def _resolve_key(
        self, credential: str, agent_id: str | None, agent_type: str | None
    ) -> Principal:
        cache_key = (hash_api_key(credential), agent_id, agent_type)
        cached = self._keys.get(cache_key)
        if cached and time.monotonic() - cached[1] < REVOCATION_RECHECK_SECONDS:
            return cached[0]
        record = await self.verify_api_key(credential)
        binding = record.binding
        name = agent_id or binding.agent_id or (record.name if binding.any_agent else None)
        if name is None:
            raise IdentityNotAllowedError(
                f"this key acts for {binding.describe()}: name the agent (X-Agent-Id)",
                reason="binding",
            )
        principal = Principal(
            agent_id=check_agent_id(name),
            agent_type=check_agent_id(agent_type or binding.default_type, "agent_type"),
            permissions=record.permissions,
            source="api_key",
            key_name=record.name,
        )
        await self._admit(record, principal.agent_id, principal.agent_type)
        if len(self._keys) > CACHE_ENTRIES:
            self._keys.clear()
            self._good_keys.clear()
        self._keys[cache_key] = (principal, time.monotonic())
        self._good_keys[cache_key[0]] = time.monotonic()
        return principal


def check_binding(binding: KeyBinding) -> KeyBinding:
    """A binding names one id, a pattern, or any agent; ids and types are well formed."""
    chosen = [binding.agent_id is not None, binding.agent_pattern is not None, binding.any_agent]
    if sum(chosen) != 1:
        raise InvalidInputError(
            "bind a key to one of: an agent id, an agent pattern, or any agent", field="binding"
        )
    if binding.agent_id is not None:
        require_mintable(check_agent_id(binding.agent_id))
    if binding.agent_pattern is not None and not AGENT_PATTERN.fullmatch(binding.agent_pattern):
        raise InvalidInputError(
            "agent_pattern: letters, digits, . _ @ - and the wildcards * ? [ ]",
            field="agent_pattern",
        )
    if binding.agent_types is not None:
        if not binding.agent_types:
            raise InvalidInputError("allow at least one agent type", field="agent_types")
        for agent_type in binding.agent_types:
            check_agent_id(agent_type, "agent_type")
    elif not binding.any_agent:
        raise InvalidInputError(
            "only an operator key may declare any agent type", field="agent_types"
        )
    return binding
