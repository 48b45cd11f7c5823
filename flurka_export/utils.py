"""Output files and directories: checked before the work starts, written atomically, never clobbering.

Rules every writing command follows:
- a path that exists is refused unless the caller passes ``overwrite=True`` (the CLI's ``--overwrite``),
  and even then only the paths the command itself writes are replaced (never a whole directory);
- nothing is visible at the target until the write succeeded; a failure, SIGINT or SIGTERM leaves no
  partial or hidden temporary file (the CLI turns SIGTERM into an exception so ``finally`` blocks run);
- files get the user's umask (``tempfile`` creates 0600 files and 0700 directories).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path


class OutputError(ValueError):
    """An output path that cannot or must not be written (printed as one line by the CLI)."""


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give `path` (and everything under it) the modes a plain open()/mkdir() would have given."""
    mask = _umask()
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        if p.is_symlink():
            continue
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def _existing_ancestor(path: Path) -> Path:
    p = path.absolute().parent
    while not p.exists():
        p = p.parent
    return p


def _check_parent(path: Path) -> None:
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise OutputError(f"cannot write {path}: {ancestor} is a file, not a directory")
    try:  # the real test: some read-only mounts pass os.access for root
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as e:
        raise OutputError(f"cannot write {path}: {ancestor} is not writable ({e.strerror})") from None


def check_output_file(path: str | os.PathLike, *, overwrite: bool = False, what: str = "output file") -> Path:
    """Refuse, before any work, an output file path that cannot or must not be written."""
    path = Path(path)
    if str(path) == "" or path.is_dir():
        raise OutputError(f"{str(path)!r} is a directory; the {what} must be a file path")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists; pass --overwrite to replace it")
    _check_parent(path)
    return path


def check_output_dir(path: str | os.PathLike, *, overwrite: bool = False, writes: Iterable[str] = (),
                     what: str = "output directory") -> Path:
    """Refuse, before any work, an output directory that must not be written.

    An existing empty directory is fine. A non-empty one needs `overwrite`, and then only the entries in
    `writes` are replaced; everything else in it is kept.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} is a file; the {what} must be a directory")
    if path.is_dir():
        if path.resolve() == Path.cwd().resolve() or path.resolve() == Path.home().resolve():
            raise OutputError(f"refusing to write into {path} itself: name a new directory for the {what}")
        if any(path.iterdir()) and not overwrite:
            listed = ", ".join(writes) if writes else "its files"
            raise OutputError(f"{path} already exists and is not empty; pass --overwrite to replace {listed} "
                              f"in it (other files are kept)")
        _check_parent(path / "x")
    else:
        _check_parent(path)
    return path


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the duration of the block; they are delivered right after it.

    Python-level handlers that only record the signal, not a signal mask: a process-directed signal goes to
    any thread that does not block it (torch and ONNX Runtime start worker threads), and Python then raises
    in the main thread whatever that thread's mask says."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old = {sig: signal.signal(sig, lambda signum, _frame: pending.append(signum))
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        for sig in dict.fromkeys(pending):
            signal.raise_signal(sig)  # through the restored handler: KeyboardInterrupt, the CLI's SIGTERM, ...


@contextlib.contextmanager
def _created_parents(path: Path) -> Iterator[None]:
    """Create the missing parents of `path`; remove the ones created here if the block fails."""
    missing = []
    p = path.absolute().parent
    while not p.exists():
        missing.append(p)
        p = p.parent
    try:
        for d in reversed(missing):
            d.mkdir()
            apply_umask(d)
        yield
    except BaseException:
        for d in missing:
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, is_dir: bool = False, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    Files: the temporary file replaces `path` atomically. Directories: if `path` does not exist (or is
    empty) the temporary directory is renamed into place; otherwise each entry written in the block
    replaces the same name in `path` and every other entry of `path` is kept. With `overwrite=False`
    an existing file or non-empty directory is refused. Errors name `path`, never the temporary file.
    """
    path = Path(path)
    if is_dir:
        check_output_dir(path, overwrite=overwrite)
    else:
        check_output_file(path, overwrite=overwrite)
    with _created_parents(path), temporary_directory(f".{path.name}.", path.absolute().parent) as tmp:
        target = tmp / path.name
        if is_dir:
            target.mkdir()
        try:
            yield target
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        apply_umask(target)
        _move_into_place(target, path, is_dir)


@contextlib.contextmanager
def temporary_directory(prefix: str, parent: str | os.PathLike | None = None) -> Iterator[Path]:
    """A new directory, removed with its contents when the block ends, however it ends.

    SIGINT and SIGTERM are held back while it is made and delivered inside the cleanup's `try`: a signal
    at that moment would otherwise leave the directory behind."""
    tmp = None
    try:
        with _signals_deferred():
            tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        yield tmp
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(target: Path, path: Path, is_dir: bool) -> None:
    try:
        if not is_dir or not path.exists():
            os.replace(target, path)
        elif not any(path.iterdir()):
            path.rmdir()
            os.replace(target, path)
        else:
            for entry in sorted(target.iterdir()):
                dest = path / entry.name
                if dest.is_dir() and not dest.is_symlink():
                    if entry.is_dir():
                        _move_into_place(entry, dest, True)
                        continue
                    raise OutputError(f"cannot write {dest}: it is a directory")
                os.replace(entry, dest)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
