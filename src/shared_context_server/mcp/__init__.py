"""The MCP adapter: tools, resources and live notifications over FastMCP's server."""
