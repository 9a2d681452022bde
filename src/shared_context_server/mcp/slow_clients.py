"""Deadlines for slow clients, as a uvicorn HTTP protocol and the configuration that carries them.

uvicorn's h11 protocol arms a timer only between requests (``timeout_keep_alive``) and
cancels it on the first byte that arrives, so a client that connects and sends nothing,
or sends a request head a byte at a time, or never finishes its body, keeps its socket
for as long as it likes. Here each connection has one deadline for its current phase:

- the request head must be complete within ``header_timeout`` of the connection being
  made, or of the first byte of a later request (408, then the socket is closed);
- the request body within ``body_timeout`` of the head (the socket is closed; the
  application sees the client disconnect).

The deadline of a phase is not moved by data arriving. While the response is being sent
(an SSE stream included) no deadline applies.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class BoundedConfig(uvicorn.Config):
    """uvicorn's configuration with the deadlines below; they travel with it to each
    worker process (``--workers``), which a protocol class made at run time could not."""

    def __init__(
        self, app: Any, *, header_timeout: float, body_timeout: float, **options: Any
    ) -> None:
        super().__init__(app, http=BoundedH11Protocol, **options)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout


class BoundedH11Protocol(H11Protocol):
    config: BoundedConfig

    _phase: str | None = None
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._set(None)
        super().connection_lost(exc)

    def _watch(self) -> None:
        if self.transport is None or self.transport.is_closing():
            self._set(None)
            return
        state = self.conn.their_state
        if state is h11.IDLE and self.timeout_keep_alive_task is None:
            self._set("head")  # a new connection, or a request head under way
        elif state is h11.SEND_BODY:
            self._set("body")
        else:
            self._set(None)  # between requests (keep-alive timer) or responding

    def _set(self, phase: str | None) -> None:
        if phase == self._phase:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = phase
        if phase is not None:
            bounds = self.config
            seconds = bounds.header_timeout if phase == "head" else bounds.body_timeout
            self._deadline = self.loop.call_later(seconds, self._expired, phase)

    def _expired(self, phase: str) -> None:
        self._deadline = None
        if self._phase != phase or self.transport.is_closing():
            return
        logger.debug("closing a connection whose request %s was too slow: %s", phase, self.client)
        if phase == "head" and self.conn.our_state is h11.IDLE:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()
