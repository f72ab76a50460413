"""All-or-nothing outputs: everything a command writes appears whole, or not at all.

`Outputs` is the one way a command writes: each target folder is reserved up front (an
O_EXCL lock file beside it holding the run's pid and, while the run lives, its fcntl.flock: a
lock no live run holds — killed run, reused pid, empty or garbled file — is reported and taken over), filled in a fresh temporary
folder beside it, and only when every file is written are all files and folders fsynced
and each temporary folder renamed onto its target (one atomic rename per target, with
SIGINT/SIGTERM held back between the renames). Any error, SIGINT or SIGTERM removes the
temporary folders and reservations. A temporary folder or reservation a killed run left
is never reused: it is ignored, and `Outputs.notes` says so.

Test hook: LM_ROUTING_FAULT_AT="N:SIGNAL" (e.g. "7:SIGKILL") sends SIGNAL to this process
at the Nth write step (file written, fsync or rename), to prove the above under kills.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import threading
import time
from pathlib import Path

from lm_routing.data import RoutingInputError
from lm_routing.errors import Note
from lm_routing.reading.harness import timestamp

FAULT_ENV = "LM_ROUTING_FAULT_AT"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
_steps = 0  # write steps taken by this process (for the fault hook)


class TargetTaken(RoutingInputError):
    """The target exists, or another live run has reserved it."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: the command stops and its temporary folders are removed."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def fault_point() -> None:
    """One write step; under LM_ROUTING_FAULT_AT="N:SIGNAL" the Nth step sends SIGNAL to this process."""
    global _steps
    _steps += 1
    plan = os.environ.get(FAULT_ENV)
    if plan:
        step, _, name = plan.partition(":")
        if int(step) == _steps:
            os.kill(os.getpid(), getattr(signal, name or "SIGKILL"))


def write_new_file(path: Path, content: str | bytes) -> None:
    """Write a file that must not exist yet (O_EXCL): text as UTF-8, bytes as they are."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    fault_point()


def write_new_files(files: dict[Path, str | bytes]) -> None:
    """`write_new_file` for each path -> content, in order, making missing folders first."""
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_new_file(path, content)


PID_MAX = 1 << 22  # the kernel's largest pid (PID_MAX_LIMIT): a larger number names no process
FRESH_LOCK_S = 2.0  # an empty lock younger than this may be a live run's between creating and writing it


def _pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists; numbers no process can have (0, negative, over PID_MAX) are dead."""
    if not 0 < pid <= PID_MAX:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _lock_owner(lock: Path) -> int | None:
    """The pid written in a lock file; None when it is empty, unreadable or not a pid."""
    try:
        text = lock.read_text(errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and len(text) <= 12 else None


def _lock_held(lock: Path) -> bool | None:
    """Whether a live run holds `lock` (its OS lock, fcntl.flock, dies with its process: a dead run, a reused pid,
    an empty or garbled file all read as not held); None when the file is gone."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        return False  # not a lock file we can open (a link, a folder): no run holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the probe's own lock
    try:  # an empty lock just created: its run has not taken the OS lock yet
        return os.stat(lock).st_size == 0 and time.time() - os.stat(lock).st_mtime < FRESH_LOCK_S
    except FileNotFoundError:
        return None


def _describe_owner(lock: Path) -> str:
    owner = _lock_owner(lock)
    return f"pid {owner}" if owner is not None else "empty or unreadable"


def _fsync(path: Path) -> None:
    fault_point()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Outputs:
    """The folders one command writes, published together at the end of a `with` block.

    `folder(target)` reserves `target` (which must not exist) and returns the temporary folder
    to write its files into; `stamped_folder(parent, prefix)` does the same for a new
    `parent/prefix-<timestamp>` and also returns the timestamp; `file` and `stamped_file` stage one file. Leaving the block normally
    publishes every folder; an exception (or SIGINT/SIGTERM, raised as `Interrupted`) removes them.
    """

    def __init__(self):
        self.notes: list[Note] = []  # leftovers of killed runs that were ignored, for the user
        self._staged: list[tuple[Path, Path, Path]] = []  # (temporary folder, target, lock file)
        self._handlers: dict[int, object] = {}
        self._made: list[Path] = []  # parent folders this run created, deepest first
        self._lock_fds: dict[Path, int] = {}  # lock file -> open descriptor holding its OS lock while this run lives

    def folder(self, target: Path | str) -> Path:
        return self._stage(Path(target), Path.mkdir)

    def file(self, target: Path | str) -> Path:
        """The temporary path to write the new file `target` at (one file, published like a folder)."""
        return self._stage(Path(target), Path.touch)

    def _stage(self, target: Path, make) -> Path:
        lock = self._reserve(target)
        temp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            make(temp, exist_ok=False)
        except BaseException:
            lock.unlink(missing_ok=True)
            os.close(self._lock_fds.pop(lock))
            raise
        self._staged.append((temp, target, lock))
        return temp

    def stamped_folder(self, parent: Path | str, prefix: str) -> tuple[Path, str]:
        """(temporary folder, timestamp) for the new target `parent/prefix-<timestamp>`; a taken name gets a new stamp."""
        return self._stamped(Path(parent), prefix, "", self.folder)

    def stamped_file(self, path: Path | str) -> tuple[Path, Path]:
        """(temporary file, target) for the new file `<stem>-<timestamp><suffix>` beside `path` (e.g. plot-<time>.png):
        two runs given the same name never overwrite each other."""
        path = Path(path)
        temp, stamp = self._stamped(path.parent, path.stem, path.suffix, self.file)
        return temp, path.with_name(f"{path.stem}-{stamp}{path.suffix}")

    def _stamped(self, parent: Path, prefix: str, suffix: str, stage) -> tuple[Path, str]:
        for _ in range(100):
            stamp = timestamp()
            with contextlib.suppress(TargetTaken):
                return stage(parent / f"{prefix}-{stamp}{suffix}"), stamp
        raise RoutingInputError(f"{parent / f'{prefix}-{stamp}{suffix}'}: already exists; earlier results are never "
                                "overwritten, and the clock gave no new timestamp in 100 tries: run again")

    def _reserve(self, target: Path) -> Path:
        """The lock file `.<name>.lock` beside `target`, created O_EXCL (holding this pid) after refusing a taken target."""
        parent = target.parent
        if target.exists() or target.is_symlink():
            raise TargetTaken(f"{target}: already exists; earlier outputs are never overwritten, choose a new name")
        blocker = next((p for p in (parent, *parent.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise RoutingInputError(f"{blocker}: not a folder; choose another «output_path» or «save_dir» folder")
        made = [p for p in (parent, *parent.parents) if not p.exists()]
        parent.mkdir(parents=True, exist_ok=True)
        self._made.extend(made)  # removed again if nothing is published
        self._note_leftovers(parent)
        lock = parent / f".{target.name}.lock"
        for _ in range(3):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                held = _lock_held(lock)
                if held is None:  # its run just published or gave up: try again
                    continue
                if held:
                    raise TargetTaken(f"{target}: being written by another run ({_describe_owner(lock)}, lock file {lock}); "
                                      "choose a new name, or wait for it to finish") from None
                self._note(lock, _describe_owner(lock), "taken-over")
                with contextlib.suppress(FileNotFoundError):  # one run takes a dead run's lock over; the others retry
                    stale = lock.with_name(f"{lock.name}.{secrets.token_hex(4)}.stale")
                    os.rename(lock, stale)
                    stale.unlink()
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until this run ends: a killed run's lock reads as free at once
            os.write(fd, str(os.getpid()).encode())
            self._lock_fds[lock] = fd
            return lock
        raise TargetTaken(f"{target}: its reservation keeps changing hands; choose a new name")

    def _note_leftovers(self, parent: Path) -> None:
        for entry in sorted(parent.iterdir()):
            match = _LEFTOVER.match(entry.name)
            if match and not _pid_alive(int(match["pid"])):
                self._note(entry, f"pid {match['pid']}", "delete")
            elif entry.name.startswith(".") and entry.name.endswith(".lock") and _lock_held(entry) is False:
                self._note(entry, _describe_owner(entry), "delete")

    def _note(self, path: Path, owner: str, then: str) -> None:
        """Note a killed run's leftover, once per path; `then`: 'taken-over' (its reservation is now ours) or
        'delete' (the user may delete it)."""
        if not any(note.fields["path"] == str(path) for note in self.notes):
            self.notes.append(Note("killed-run-leftover", path=str(path), owner=owner, then=then))

    def __enter__(self) -> Outputs:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._handlers[signum] = signal.signal(signum, _raise_interrupted)
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None:
                self._publish()
        finally:
            self._discard()
            for signum, handler in self._handlers.items():
                signal.signal(signum, handler)

    def _publish(self) -> None:
        for temp, _, _ in self._staged:
            for path in sorted(temp.rglob("*") if temp.is_dir() else [], reverse=True):  # files before their folders
                _fsync(path)
            _fsync(temp)
        blocked = {signal.SIGINT, signal.SIGTERM}
        held = threading.current_thread() is threading.main_thread()
        global _renaming
        if held:  # no signal between two targets' renames: all are published or none
            signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        _renaming = True
        try:
            for temp, target, _ in self._staged:
                if target.exists():
                    raise RoutingInputError(f"{target}: appeared while this run was writing; nothing was published")
            for temp, target, _ in self._staged:  # back to back: the window between two targets is one syscall
                fault_point()
                os.rename(temp, target)
        finally:
            _renaming = False
            if held:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
        for _, target, _ in self._staged:
            _fsync(target.parent)
        if _held:
            raise Interrupted(_held.pop())

    def _discard(self) -> None:
        published = self._staged and not any(temp.exists() for temp, _, _ in self._staged)
        for temp, _, lock in self._staged:
            if temp.is_dir() and not temp.is_symlink():
                shutil.rmtree(temp, ignore_errors=True)
            else:
                temp.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
            fd = self._lock_fds.pop(lock, None)
            if fd is not None:
                os.close(fd)  # after the unlink: no other run can take the name over while this run still holds it
        if not published:
            for folder in self._made:
                with contextlib.suppress(OSError):  # not empty: another run's files are there now
                    folder.rmdir()
        self._staged.clear()


_held: list[int] = []  # signals that came while targets were being renamed (None: not renaming)
_renaming = False


def _raise_interrupted(signum, frame):
    if _renaming:  # another thread took the signal (the mask holds only this one): act on it after the renames
        _held.append(signum)
        return
    raise Interrupted(signum)
