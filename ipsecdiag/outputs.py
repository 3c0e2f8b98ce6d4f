"""Output files of the command line: never an input, never half-written, private.

Three rules hold for every file a command writes (the JSON report, the decrypted capture, the
converted key files):

* an output that is one of the command's inputs (a capture, a key file or a file of a key
  directory, a CA file) is refused before anything is read or written: the same path, a
  symbolic link to it, or another hard link to the same inode (``st_dev``/``st_ino``);
* the output is written under a temporary name beside its destination and renamed into place
  when complete, so an error, a full disk or an interrupt never leaves a truncated file;
* it is created 0600 (less if the umask is stricter): reports and decrypted captures hold what
  the encryption was protecting.

Devices and FIFOs (``/dev/stdout``, a named pipe) are written directly: they cannot be renamed
over and writing them destroys nothing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .keys._files import replacing

__all__ = ["OutputError", "refuse_inputs", "write_output", "writing"]

# A key directory (a Wireshark profile) is read file by file; more files than this in one
# directory are not a key directory, and walking them would only cost time.
_MAX_DIR_FILES = 1000


class OutputError(Exception):
    """An output path that would destroy an input; the message is one line for the user."""


@dataclass(frozen=True)
class _Input:
    shown: str  # as the user wrote it, for the message
    real: str  # symbolic links resolved
    dev_ino: tuple[int, int] | None  # regular files only


def _identify(path: Path) -> _Input | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    ident = (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None
    return _Input(str(path), os.path.realpath(path), ident)


def _inputs(paths: Iterable[Path]) -> list[_Input]:
    out: list[_Input] = []
    for p in paths:
        ident = _identify(p)
        if ident is None:
            continue
        out.append(ident)
        if os.path.isdir(p):
            try:
                with os.scandir(p) as entries:
                    for n, e in enumerate(entries):
                        if n >= _MAX_DIR_FILES:
                            break
                        inner = _identify(Path(e.path))
                        if inner is not None and inner.dev_ino is not None:
                            out.append(inner)
            except OSError:
                pass
    return out


def refuse_inputs(outputs: Iterable[tuple[str, Path]], inputs: Iterable[Path]) -> None:
    """Raise :class:`OutputError` if an output (``(option, path)``) is one of ``inputs``.

    Compares resolved paths (symbolic links, ``./x``) and, for files that exist, device and
    inode numbers (hard links). Devices and FIFOs are never considered the same file: reading
    ``/dev/stdin`` while writing ``/dev/stdout`` is fine.
    """
    known = _inputs(inputs)
    for option, out in outputs:
        real = os.path.realpath(out)
        ident = _identify(out)
        for inp in known:
            same_inode = ident is not None and ident.dev_ino is not None and ident.dev_ino == inp.dev_ino
            same_path = real == inp.real and inp.dev_ino is not None
            if same_inode or same_path:
                how = "" if out.as_posix() == inp.shown else " (the same file)"
                raise OutputError(
                    f"{option} {out}: is the input {inp.shown}{how}; refusing to overwrite an input"
                )


# ``with writing(path) as tmp:`` gives a temporary path (0600 minus the umask) that becomes
# ``path`` when the block ends normally; on an exception it is removed and ``path`` is untouched.
writing = replacing


def write_output(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` under the rules above (atomic, 0600 minus the umask)."""
    with writing(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
