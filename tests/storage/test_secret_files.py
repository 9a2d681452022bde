"""Secrets in the data directory: owner-only, created once, agreed on by racing processes."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from shared_context_server.storage.secret_files import read_or_create


def test_a_secret_is_created_owner_only_and_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "secret"
    value, created = read_or_create(path)
    assert created
    assert len(value) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_create(path) == (value, False)
    assert read_or_create(path, make="other") == (value, False)


def test_a_given_value_is_stored(tmp_path: Path) -> None:
    assert read_or_create(tmp_path / "s", make="chosen") == ("chosen", True)


def test_an_empty_secret_file_is_never_used_as_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("\n")
    with pytest.raises(RuntimeError, match="empty"):
        read_or_create(path)


def test_writers_racing_to_create_a_secret_all_get_the_same_one(tmp_path: Path) -> None:
    for round_ in range(30):
        path = tmp_path / f"secret{round_}"
        results: list[str] = []
        barrier = threading.Barrier(6)

        def race(
            barrier: threading.Barrier = barrier, path: Path = path, results: list[str] = results
        ) -> None:
            barrier.wait()
            results.append(read_or_create(path)[0])

        threads = [threading.Thread(target=race) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 6
        assert len(set(results)) == 1, results
        assert results[0]
