"""autosettle.private_files: 0600 files in 0700 folders, whatever the umask (issue 9)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from autosettle.private_files import (
    create_once,
    create_private_file,
    open_private_binary,
    open_private_text,
    private_dir,
    tighten_dir,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o000, 0o277])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    yield int(request.param)
    os.umask(previous)


def test_folders_and_files_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    folder = private_dir(tmp_path / "a" / "b")
    assert (mode(tmp_path / "a"), mode(folder)) == (0o700, 0o700)
    with open_private_text(folder / "t.csv", newline="") as handle:
        handle.write("x\r\n")
    with open_private_binary(folder / "t.txt") as handle:
        handle.write(b"y")
    create_private_file(folder / "t.db")
    assert [mode(folder / n) for n in ("t.csv", "t.txt", "t.db")] == [0o600] * 3
    assert (folder / "t.csv").read_bytes() == b"x\r\n"


def test_existing_loose_files_and_folders_are_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "var"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    for name in ("a.csv", "a.db", "a.txt"):
        (folder / name).write_bytes(b"old")
        os.chmod(folder / name, 0o644)
    private_dir(folder)
    with open_private_text(folder / "a.csv") as handle:   # rewritten
        handle.write("new")
    create_private_file(folder / "a.db")                  # kept
    assert mode(folder) == 0o700
    assert (mode(folder / "a.csv"), mode(folder / "a.db")) == (0o600, 0o600)
    assert (folder / "a.db").read_bytes() == b"old"
    assert mode(folder / "a.txt") == 0o644                # not written: not touched


def test_parents_and_shared_folders_are_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)                              # like /tmp
    tighten_dir(shared)
    private_dir(shared / "ours")
    assert mode(shared) == 0o1777 and mode(shared / "ours") == 0o700
    parent = tmp_path / "parent"
    parent.mkdir()
    os.chmod(parent, 0o755)
    private_dir(parent / "child")
    assert mode(parent) == 0o755                          # existing parents: unchanged
    private_dir(parent, tighten=False)
    assert mode(parent) == 0o755


def test_create_once_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "secret.key"
    results: list[bytes] = []
    start = threading.Barrier(8)

    def make(n: int) -> None:
        start.wait()
        results.append(create_once(path, f"{n:064d}".encode()))

    threads = [threading.Thread(target=make, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and results[0] == path.read_bytes()
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret.key"]  # no leftovers
    os.chmod(path, 0o644)
    assert create_once(path, b"other") == results[0] and mode(path) == 0o600
