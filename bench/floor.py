"""The floor: a bare FastMCP server with one no-op tool, served the way ours is.

Same FastMCP, same streamable HTTP app factory, same uvicorn settings (see
``shared_context_server.mcp.run`` and ``mcp.http``), so the difference between the two is
what our server does per call, not how it is hosted.

    python -m bench.floor --port 8123      # streamable HTTP on 127.0.0.1:8123/mcp
    python -m bench.floor --workers 2      # the same, in two uvicorn worker processes
    python -m bench.floor --stdio          # stdio
"""

from __future__ import annotations

import argparse
import os

import anyio
import uvicorn
from fastmcp import FastMCP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def build_floor() -> FastMCP:
    mcp = FastMCP("floor", mask_error_details=True)

    @mcp.tool
    async def noop() -> str:
        """Does nothing."""
        return "ok"

    @mcp.custom_route("/health", methods=["GET"])
    async def health(_: Request) -> Response:
        # The worker's pid: the benchmark waits until every worker has answered.
        return JSONResponse({"status": "ok", "pid": os.getpid()})

    return mcp


def floor_app() -> Starlette:
    return build_floor().http_app(path="/mcp", host_origin_protection=True)


async def serve(host: str, port: int, stdio: bool) -> None:
    if stdio:
        await build_floor().run_stdio_async(show_banner=False)
        return
    config = uvicorn.Config(floor_app(), host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--stdio", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="HTTP worker processes")
    args = parser.parse_args()
    if args.workers > 1:  # uvicorn's supervisor, as ``scs serve --workers`` uses
        uvicorn.run(
            "bench.floor:floor_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
        )
        return
    anyio.run(serve, args.host, args.port, args.stdio)


if __name__ == "__main__":
    main()
