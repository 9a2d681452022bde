"""docs/tools.md against the tools themselves: every argument a tool takes appears in its
documented signature, and every row of a table renders inside it."""

from __future__ import annotations

import re
from pathlib import Path

from shared_context_server.app import App
from tests.mcp.conftest import connect_client

TOOLS_MD = Path(__file__).parents[2] / "docs" / "tools.md"
# Every tool takes it; the page says so once, at the top.
IMPLIED = {"auth_token"}


def _signatures(text: str) -> dict[str, str]:
    """Each documented tool's signature, ``name(arguments)``, as the table row gives it."""
    found = {}
    for match in re.finditer(r"^\| `(\w+)\((.*?)\)` \|", text, re.MULTILINE):
        found.setdefault(match.group(1), match.group(2))
    return found


async def test_every_argument_of_every_tool_is_documented(app: App) -> None:
    signatures = _signatures(TOOLS_MD.read_text())
    async with connect_client(app) as client:
        tools = (await client.list_tools()).tools
    missing = {}
    for tool in tools:
        assert tool.name in signatures, f"{tool.name} has no row in docs/tools.md"
        documented = set(re.findall(r"\w+", signatures[tool.name]))
        arguments = set(tool.input_schema["properties"])
        if tool.name != "refresh_token":
            arguments -= IMPLIED
        if arguments - documented:
            missing[tool.name] = sorted(arguments - documented)
    assert missing == {}


def test_every_table_row_is_inside_its_table() -> None:
    """A row after a paragraph or a blank line renders as text, outside the table."""
    lines = TOOLS_MD.read_text().splitlines()
    stray = []
    for i, line in enumerate(lines):
        if not line.startswith("|") or (i and lines[i - 1].startswith("|")):
            continue
        separator = lines[i + 1] if i + 1 < len(lines) else ""
        if not re.match(r"^\|( *:?-+:? *\|)+$", separator):
            stray.append(f"line {i + 1}: {line[:60]}")
    assert stray == []
