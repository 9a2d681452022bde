"""Slow clients cannot hold sockets: a request head or body that does not arrive in time
ends its connection, while other clients are served as usual. Raw sockets on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import anyio
import httpx2
import pytest

from shared_context_server.config import Settings
from tests.security.inprocess import Served, serving

TIMEOUT = 0.5
SLOW = 40  # sockets per kind of slowness


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    async with serving(
        settings, header_timeout_seconds=TIMEOUT, body_timeout_seconds=TIMEOUT
    ) as running:
        yield running


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _connect(served: Served, first: bytes) -> Stream:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    if first:
        writer.write(first)
        await writer.drain()
    return reader, writer


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sent before closing; fails if it does not close in time."""
    received = b""
    with anyio.fail_after(seconds):
        try:
            while chunk := await reader.read(4096):
                received += chunk
        except ConnectionResetError:  # closed with our unread bytes in its buffer
            pass
    return received


async def _healthy(served: Served) -> None:
    async with httpx2.AsyncClient(timeout=5) as http:
        assert (await http.get(served.base + "/health")).status_code == 200


async def test_connections_that_never_finish_their_request_head_are_closed(
    served: Served,
) -> None:
    head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    silent = [await _connect(served, b"") for _ in range(SLOW)]
    partial = [await _connect(served, head) for _ in range(SLOW)]
    started = time.monotonic()
    await _healthy(served)  # others are served meanwhile
    for reader, writer in silent + partial:
        received = await _closed_within(reader, TIMEOUT + 5)
        assert received == b"" or received.startswith(b"HTTP/1.1 408")
        writer.close()
    assert time.monotonic() - started < TIMEOUT + 5
    await _healthy(served)


async def test_a_head_sent_a_byte_at_a_time_does_not_reset_the_deadline(
    served: Served,
) -> None:
    reader, writer = await _connect(served, b"G")
    started = time.monotonic()
    closed = False
    for byte in b"ET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200:
        if writer.is_closing() or reader.at_eof():
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        await anyio.sleep(0.02)
        if time.monotonic() - started > TIMEOUT + 3:
            break
    if not closed:
        received = await _closed_within(reader, TIMEOUT + 3)
        assert received == b"" or received.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < TIMEOUT + 3
    writer.close()


async def test_a_body_that_never_arrives_ends_its_connection(served: Served) -> None:
    head = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{"
    )
    slow = [await _connect(served, head) for _ in range(SLOW)]
    await _healthy(served)
    for reader, writer in slow:
        await _closed_within(reader, TIMEOUT + 5)
        writer.close()
    await _healthy(served)


async def test_a_keep_alive_connection_is_bounded_between_requests_too(served: Served) -> None:
    reader, writer = await _connect(served, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    with anyio.fail_after(5):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
    assert head.startswith(b"HTTP/1.1 200")
    writer.write(b"GET /health HTTP/1.1\r\n")  # the next head, never finished
    await writer.drain()
    received = await _closed_within(reader, TIMEOUT + 5)
    assert received == b"" or received.startswith(b"HTTP/1.1 408")
    writer.close()
