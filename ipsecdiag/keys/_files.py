"""Writing files that hold secrets or decrypted data: private, and all or nothing.

Key files are 0600 and new directories 0700 whatever the umask. Every file is first written
under a temporary name beside its destination and then renamed over it (``replacing``), so a
failure half-way never leaves a truncated file, and an earlier file of the same name (perhaps an
input of the same command) is intact until the new one is complete. The command line's output
guard (``ipsecdiag.outputs``) builds on this; it lives here because ``keys/`` may import nothing
above ``wire/``.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def replacing(path: str | Path, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write instead of ``path``; it replaces ``path`` on success.

    The temporary file is created beside the final file (same file system, so the rename is
    atomic) with mode 0600 reduced by the umask, or exactly ``mode`` when given. When the block
    raises, the temporary file is removed and ``path`` is untouched. A symbolic link is followed
    (its target is replaced, the link stays); a device or FIFO (``/dev/stdout``, a pipe) is
    yielded as it is, since it cannot be replaced and writing it destroys nothing.
    """
    target = Path(os.path.realpath(path))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "Is a directory", str(path))
    if st is not None and not stat.S_ISREG(st.st_mode):
        yield Path(path)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        os.close(fd)
        fd = -1
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with suppress(OSError):
            os.unlink(tmp)
        raise


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600), whatever the umask."""
    with replacing(path, mode=0o600) as tmp:
        tmp.write_text(text, encoding="utf-8")


def make_private_dir(path: Path) -> None:
    """Create ``path`` (0700) if missing; an existing directory is left as it is."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        os.chmod(path, 0o700)
