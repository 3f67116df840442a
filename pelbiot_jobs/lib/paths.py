"""Where things are (the schedule folder in use: configured, or the one shipped in the package),
and the folders only pelbiot-jobs may read: var/ (ops DB, broker dump, spools, outbox mails,
credentials, logs) and the reports."""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: Files this process creates are 0600, folders 0700: outbox mails, reports, the SQLite ops DB and
#: the embedded broker's dump hold what alerts and reports say about the installation.
PRIVATE_UMASK = 0o077


def private_files() -> None:
    """From now on, what this process (and what it starts) creates is readable by its user only."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path, follow: bool = False) -> Path:
    """``path`` as a folder only this user may enter: created 0700, an existing one of ours made so.
    A folder another user owns is refused (a ConfigError naming it), and so is a symbolic link
    unless ``follow`` (the configured var/ and reports folders may be links the operator made;
    nothing inside them is followed): what pelbiot-jobs writes there could otherwise be read, or
    redirected, by someone else."""
    from .errors import ConfigError

    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.stat(path) if follow else os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"{path} is a symbolic link: pelbiot-jobs writes there only into a folder of its own")
    if st.st_uid != os.geteuid():
        raise ConfigError(f"{path} belongs to another user (uid {st.st_uid}): pelbiot-jobs writes only into a "
                          "folder of its own user")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path

SHIPPED_SCHEDULES = Path(__file__).resolve().parents[1] / "schedules"


def schedules_dir(settings) -> Path:
    return settings.schedules_dir or SHIPPED_SCHEDULES
