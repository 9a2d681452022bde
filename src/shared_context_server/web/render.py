"""Messages as the dashboard shows them: Markdown made safe, threads, folded long ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup

from shared_context_server.domain.models import Message

# CommonMark with raw HTML off: a message's "<script>" is text. Images are off too, so a
# message cannot make the viewer's browser fetch a URL of the sender's choosing.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).disable("image")
# Longer messages are folded behind their first lines.
FOLD_CHARS = 1_200
PREVIEW_CHARS = 280


def markdown(text: str) -> Markup:
    return Markup(_MARKDOWN.render(text))  # noqa: S704 (the renderer escapes all HTML)


def pretty_json(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@dataclass
class Entry:
    """A message in the timeline, with the replies to it that the page shows."""

    message: Message
    replies: list[Entry] = field(default_factory=list)
    # Its parent is not on the page (older, or not visible to the viewer).
    orphan_reply: bool = False

    @property
    def folded(self) -> bool:
        return len(self.message.content) > FOLD_CHARS

    @property
    def preview(self) -> str:
        return self.message.content[:PREVIEW_CHARS].rstrip() + "…"


def threads(messages: list[Message]) -> list[Entry]:
    """Top-level entries oldest first, each reply under its parent when the parent is on
    the page; a reply whose parent is not stays in the timeline, marked."""
    entries = {m.id: Entry(m) for m in messages}
    roots: list[Entry] = []
    for message in messages:
        entry = entries[message.id]
        parent = entries.get(message.parent_message_id or 0)
        if parent is not None:
            parent.replies.append(entry)
        else:
            entry.orphan_reply = message.parent_message_id is not None
            roots.append(entry)
    return roots
