"""Writing outputs: checked before the long work, written atomically, with the
permissions any other tool would give them (the umask's)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from torch_grouped_conv.errors import InputError


def check_output_path(path: Path | None) -> None:
    """Fail before any work when the output cannot be written: its folder is
    missing, it names a folder, or the folder refuses a new file (read-only,
    /proc, no permission: probed by creating and removing a temporary file,
    which is what `write_atomically` will do)."""
    if path is None:
        return
    folder = path.resolve().parent
    if not folder.is_dir():
        raise InputError(f"output folder {str(folder)!r} does not exist; create it or choose another path")
    if path.is_dir():
        raise InputError(f"output {str(path)!r} is a folder; give a file path (e.g. {str(path / 'model.mlir')!r})")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".probe")
    except OSError as e:
        raise InputError(f"cannot write to output folder {str(folder)!r} ({e.strerror}); "
                         "choose a writable path") from None
    os.close(fd)
    os.unlink(probe)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write via a temporary file in the same folder and rename: never half-written.
    The file gets mode 0666 less the umask, as `open()` would give it."""
    check_output_path(path)
    path = path.resolve()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
