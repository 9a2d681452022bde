"""Input limits (DESIGN.md §6): over a limit is refused, never truncated."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shared_context_server.domain.limits import (
    Limits,
    check_agent_id,
    check_content,
    check_json,
    check_key,
    check_message_type,
    check_metadata,
    check_page,
)
from shared_context_server.errors import InvalidInputError, LimitExceededError

LIMITS = Limits()


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


@pytest.mark.parametrize(
    "agent_id", ["a", "claude-1", "Agent_2.sub:task@host", "x" * 100, "0", "a-b.c_d:e@f"]
)
def test_valid_agent_ids_are_accepted(agent_id: str) -> None:
    assert check_agent_id(agent_id) == agent_id


@pytest.mark.parametrize(
    "agent_id",
    ["", "x" * 101, "has space", "slash/y", "tab\t", "new\nline", "ünï", "semi;colon", "a*"],
)
def test_invalid_agent_ids_are_refused(agent_id: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        check_agent_id(agent_id, "sender")
    assert raised.value.details == {"field": "sender"}


def test_content_up_to_the_limit_is_accepted_and_beyond_refused() -> None:
    limits = Limits(content_chars=10)
    assert check_content(limits, "x" * 10) == "x" * 10
    with pytest.raises(LimitExceededError) as raised:
        check_content(limits, "x" * 11)
    assert raised.value.details["limit"] == 10


def test_the_default_content_limit_is_a_hundred_thousand_characters() -> None:
    assert check_content(LIMITS, "é" * 100_000)
    with pytest.raises(LimitExceededError):
        check_content(LIMITS, "é" * 100_001)


@pytest.mark.parametrize("content", ["", "   ", "\n\t"])
def test_blank_content_is_refused(content: str) -> None:
    with pytest.raises(InvalidInputError):
        check_content(LIMITS, content)


def test_missing_metadata_is_an_empty_object() -> None:
    assert check_metadata(LIMITS, None) == {}


@pytest.mark.parametrize("metadata", [[1, 2], "text", 3])
def test_metadata_must_be_an_object(metadata: Any) -> None:
    with pytest.raises(InvalidInputError):
        check_metadata(LIMITS, metadata)


def test_metadata_is_measured_in_encoded_bytes() -> None:
    limits = Limits(metadata_bytes=20)
    # {"k": ""} is 9 bytes encoded, and each é adds two: 17 bytes with four, 21 with six.
    assert check_metadata(limits, {"k": "é" * 4}) == {"k": "éééé"}
    with pytest.raises(LimitExceededError) as raised:
        check_metadata(limits, {"k": "é" * 6})
    assert raised.value.details["field"] == "metadata"


def test_the_default_metadata_limit_is_64_kib() -> None:
    overhead = len('{"k": ""}')
    check_metadata(LIMITS, {"k": "x" * (64 * 1024 - overhead)})
    with pytest.raises(LimitExceededError):
        check_metadata(LIMITS, {"k": "x" * (64 * 1024 - overhead + 1)})


def test_metadata_may_nest_sixteen_levels_and_no_deeper() -> None:
    assert check_metadata(LIMITS, _nested(16))
    with pytest.raises(LimitExceededError):
        check_metadata(LIMITS, _nested(17))
    with pytest.raises(LimitExceededError):
        check_metadata(LIMITS, {"l": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]})


@pytest.mark.parametrize("value", [{"x": math.nan}, {"x": {1, 2}}, {"x": object()}])
def test_values_that_are_not_json_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInputError):
        check_json(value, field="value", max_bytes=1_000, max_depth=16)


@pytest.mark.parametrize("key", ["k", "task.notes", "a/b:c", "x" * 255, "ключ"])
def test_valid_keys_are_accepted(key: str) -> None:
    assert check_key(LIMITS, key) == key


@pytest.mark.parametrize("key", ["", "has space", "tab\tkey", "line\nkey", " lead"])
def test_empty_keys_and_keys_with_whitespace_are_refused(key: str) -> None:
    with pytest.raises(InvalidInputError):
        check_key(LIMITS, key)


def test_keys_longer_than_255_characters_are_refused() -> None:
    with pytest.raises(LimitExceededError):
        check_key(LIMITS, "x" * 256)


@pytest.mark.parametrize("message_type", ["message", "finding", "test.result", "a:b-c_d", "x" * 64])
def test_valid_message_types_are_accepted(message_type: str) -> None:
    assert check_message_type(message_type) == message_type


@pytest.mark.parametrize("message_type", ["", "x" * 65, "with space", "semi;colon", "ü"])
def test_invalid_message_types_are_refused(message_type: str) -> None:
    with pytest.raises(InvalidInputError):
        check_message_type(message_type)


def test_page_sizes_run_from_one_to_the_limit_or_cap() -> None:
    check_page(LIMITS, 1)
    check_page(LIMITS, 1_000)
    for bad in (0, 1_001):
        with pytest.raises(LimitExceededError):
            check_page(LIMITS, bad)
    check_page(LIMITS, 200, cap=200)
    with pytest.raises(LimitExceededError):
        check_page(LIMITS, 201, cap=200)


def test_a_negative_offset_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        check_page(LIMITS, 10, -1)
