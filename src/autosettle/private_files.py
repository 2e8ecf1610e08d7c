"""Files only their owner can read: every file autosettle writes is 0600, in 0700 folders.

The embedded database, the issuer simulator's database and key, the payout files (clear
account numbers and holder names), the demo API keys and the terminal simulator's TMKs all
hold card, account or key data, so nothing autosettle writes is left to the process umask.
Every writer goes through this module (docs/configuration.md#files-and-permissions):

- :func:`private_dir` creates missing folders 0700 and tightens an existing one;
- :func:`open_private` opens (creating) a file 0600 and tightens a file an older version
  left readable by others;
- :func:`create_once` writes a file once, atomically, and returns what it holds.

SQLite creates a database's ``-wal`` and ``-shm`` files with the permissions of the
database file itself, so a database file created here (0600) gets private WAL and SHM
files whatever the umask (store/engine.py). This module imports nothing from autosettle,
so every layer may use it.
"""

from __future__ import annotations

import os
import secrets
import stat
from io import BufferedWriter, TextIOWrapper
from pathlib import Path
from typing import Final

FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
_OTHERS: Final = 0o077
"""Group and other permission bits: none of them on anything autosettle writes."""
WRITE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def _is_ours(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid()


def tighten_dir(path: Path) -> None:
    """Make the folder ``path`` 0700 if it is ours and others may enter it.

    A folder of someone else, or a shared sticky folder such as ``/tmp``, is left alone.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode) and _is_ours(st) and mode & _OTHERS \
            and not mode & stat.S_ISVTX:
        os.chmod(path, mode & ~_OTHERS)


def private_dir(path: Path, *, tighten: bool = True) -> Path:
    """Create the folder ``path`` and its missing parents 0700; return ``path``.

    With ``tighten`` (the default), an existing ``path`` that others may enter is made
    0700 (see :func:`tighten_dir`); existing parents are never changed.
    """
    missing: list[Path] = []
    current = path
    while not os.path.lexists(current) and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process
        os.chmod(folder, DIR_MODE)  # a umask such as 0o277 would have taken owner bits
    if tighten:
        tighten_dir(path)
    return path


def tighten_fd(fd: int) -> None:
    """Make the open file ``fd`` 0600 if it is ours and not 0600 already (others may read
    it, or a strict umask took the owner's write bit)."""
    st = os.fstat(fd)
    if _is_ours(st) and stat.S_IMODE(st.st_mode) != FILE_MODE:
        os.fchmod(fd, FILE_MODE)


def tighten_file(path: Path) -> None:
    """Make the file ``path`` 0600 if it exists, is ours and others may read it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) and _is_ours(st) and stat.S_IMODE(st.st_mode) & _OTHERS:
        os.chmod(path, FILE_MODE)


def open_private(path: Path, flags: int = WRITE_FLAGS) -> int:
    """``os.open`` of ``path`` creating it 0600 (``O_CREAT`` is added); an existing file
    that others may read is made 0600 first. Returns the descriptor."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        tighten_fd(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private_text(path: Path, *, newline: str | None = None) -> TextIOWrapper:
    """``path`` opened for writing text (UTF-8), truncated, mode 0600."""
    return os.fdopen(open_private(path), "w", encoding="utf-8", newline=newline)


def open_private_binary(path: Path) -> BufferedWriter:
    """``path`` opened for writing bytes, truncated, mode 0600."""
    return os.fdopen(open_private(path), "wb")


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists; tighten it if it does."""
    os.close(open_private(path, os.O_RDWR))


def create_once(path: Path, content: bytes) -> bytes:
    """Write ``content`` to ``path`` (0600) unless it exists; return what ``path`` holds.

    Atomic: the content goes to a temporary file first and is linked into place, so two
    processes doing this at once both get the one content that won, never a partial file.
    """
    try:
        tighten_file(path)
        return path.read_bytes()
    except FileNotFoundError:
        pass
    private_dir(path.parent, tighten=False)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = open_private(temporary, os.O_WRONLY | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_bytes()
        return content
    finally:
        temporary.unlink(missing_ok=True)
