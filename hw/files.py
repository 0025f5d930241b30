"""Output files replaced only when complete: every writer of spikeloop (Verilog, memory images, reports, plots,
training runs, NIR) writes through :func:`write_atomic`, so a full disk or an interrupted command leaves the old
file or none — never a truncated or 0-byte one. The lowest floor (``hw``) so every package can use it."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def umask() -> int:
    """The process's file-mode creation mask (read by setting it and setting it back)."""
    m = os.umask(0o022)
    os.umask(m)
    return m


def write_atomic(path: str | Path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path`` (same folder, same suffix: numpy and
    matplotlib pick the format by it), then ``os.replace`` it into place with the mode a plain ``open()``
    would have given it (``0o666 & ~umask``; ``mkstemp`` makes it 0600). On any failure the temporary file is
    removed and ``path`` is untouched. A ``path`` that exists and is not a regular file (a device such as
    ``/dev/null``, or a symbolic link to one) cannot be replaced: it is written directly."""
    path = Path(path)
    if path.exists() and not path.is_file():
        write(path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """``Path(path).write_text(text)`` through :func:`write_atomic`."""
    return write_atomic(path, lambda p: p.write_text(text))


class WriteFailed(Exception):
    """Writing an output failed for a reason of the machine, not of the command line (a full disk, a quota, an
    I/O error): :func:`tune.errors.explain` gives it exit code 1 and its one line — a wrong path given by the
    user (a directory where a file goes, no permission) stays a ConfigError, exit 2."""


#: errno values of a failed write that are the machine's problem (exit 1), not a wrong path (exit 2)
MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})
