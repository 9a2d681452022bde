from tests.mcp.conftest import tokens

__all__ = ["tokens"]
