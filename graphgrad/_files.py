"""Writing files so that a crash never leaves half of one: every file graphgrad writes (saved
tensors, checkpoints, pictures, histories, tables) goes through :func:`atomic_write`."""

from __future__ import annotations

import contextlib
import os
import uuid


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", **open_kwargs):
    """Open a temporary file beside ``path``; when the block ends without error, make it durable
    and rename it over ``path``, else remove it. Readers see the old file or the whole new one.

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "note.txt")
    >>> with atomic_write(target, "w") as out:
    ...     _ = out.write("done")
    >>> open(target).read()
    'done'
    """
    folder, base = os.path.split(os.path.abspath(os.fspath(path)))
    temporary = os.path.join(folder, f".{base}.{uuid.uuid4().hex[:12]}.tmp")
    # os.open applies the umask to 0o666 as open() would; tempfile.mkstemp would give 0o600.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(descriptor, mode, **open_kwargs) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
