"""The documentation names every tool, error code and setting the server has."""

from pathlib import Path

from pydantic_settings import BaseSettings

from shared_context_server.config import Settings
from shared_context_server.errors import ALL_ERRORS
from tests.mcp.test_catalogue import TOOLS

DOCS = Path(__file__).parents[2] / "docs"


def test_every_tool_is_documented() -> None:
    text = (DOCS / "tools.md").read_text()
    assert [tool for tool in sorted(TOOLS) if f"`{tool}(" not in text] == []


def test_every_error_code_is_documented() -> None:
    text = (DOCS / "errors.md").read_text()
    assert [e.code for e in ALL_ERRORS if f"| `{e.code}` |" not in text] == []


def _names(model: type[BaseSettings]) -> list[str]:
    """Every environment name of a settings class; groups (limits, quotas...) by their own
    prefix."""
    prefix = str(model.model_config.get("env_prefix", "")).upper()
    names = []
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseSettings):
            names += _names(kind)
        else:
            names.append(prefix + name.upper())
    return names


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    assert "SCS_LIMIT_CONTENT_CHARS" in _names(Settings)
    assert [name for name in _names(Settings) if f"`{name}`" not in text] == []
