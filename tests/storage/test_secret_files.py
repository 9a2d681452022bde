"""Secrets in the data directory: owner-only, created once, agreed on by racing processes."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from shared_context_server.storage.secret_files import read_or_create, restrict, restrict_data_dir


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


def test_reading_a_secret_takes_group_and_others_access_away(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("s" * 40 + "\n")
    path.chmod(0o644)
    assert read_or_create(path) == ("s" * 40, False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_restricting_keeps_the_owners_bits_and_leaves_shared_directories_alone(
    tmp_path: Path,
) -> None:
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert restrict(script)
    assert stat.S_IMODE(script.stat().st_mode) == 0o700
    assert not restrict(script)  # already owner-only
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    assert not restrict(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert not restrict(tmp_path / "missing")


def test_a_data_directory_and_its_files_become_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "audit_key").write_text("k")
    (data / "audit_key").chmod(0o644)
    restrict_data_dir(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "audit_key").stat().st_mode) == 0o600
