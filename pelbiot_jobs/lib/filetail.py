"""Following a log file across rotation: find the rotated file by its inode."""

from __future__ import annotations

import os
from pathlib import Path


def find_by_inode(directory: Path, inode: int) -> Path | None:
    """The file in ``directory`` with inode ``inode`` (a log renamed by logrotate), or None."""
    try:
        candidates = list(directory.iterdir())
    except OSError:
        return None
    for candidate in candidates:
        try:
            st = os.stat(candidate, follow_symlinks=False)
        except OSError:
            continue
        if st.st_ino == inode and candidate.is_file():
            return candidate
    return None
