"""The documentation names every tool, error code and setting the server has."""

from pathlib import Path

from shared_context_server.config import Limits, Settings
from shared_context_server.errors import ALL_ERRORS
from tests.mcp.test_catalogue import TOOLS

DOCS = Path(__file__).parents[2] / "docs"


def test_every_tool_is_documented() -> None:
    text = (DOCS / "tools.md").read_text()
    assert [tool for tool in sorted(TOOLS) if f"`{tool}(" not in text] == []


def test_every_error_code_is_documented() -> None:
    text = (DOCS / "errors.md").read_text()
    assert [e.code for e in ALL_ERRORS if f"| `{e.code}` |" not in text] == []


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    settings = [f"SCS_{name.upper()}" for name in Settings.model_fields if name != "limits"]
    limits = [f"SCS_LIMIT_{name.upper()}" for name in Limits.model_fields]
    assert [name for name in settings + limits if f"`{name}`" not in text] == []
