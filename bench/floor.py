"""The floor: a bare FastMCP server with one no-op tool, served the way ours is.

Same FastMCP, same streamable HTTP app factory, same uvicorn settings (see
``shared_context_server.mcp.run`` and ``mcp.http``), so the difference between the two is
what our server does per call, not how it is hosted.

    python -m bench.floor --port 8123      # streamable HTTP on 127.0.0.1:8123/mcp
    python -m bench.floor --stdio          # stdio
"""

from __future__ import annotations

import argparse

import anyio
import uvicorn
from fastmcp import FastMCP
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
        return JSONResponse({"status": "ok"})

    return mcp


async def serve(host: str, port: int, stdio: bool) -> None:
    mcp = build_floor()
    if stdio:
        await mcp.run_stdio_async(show_banner=False)
        return
    app = mcp.http_app(path="/mcp", host_origin_protection=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--stdio", action="store_true")
    args = parser.parse_args()
    anyio.run(serve, args.host, args.port, args.stdio)


if __name__ == "__main__":
    main()
