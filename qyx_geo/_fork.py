"""Run one step in a forked child process while the parent goes on: the audit's second core.

``qyx audit`` draws its HTML maps (CPU-bound Python: folium, JSON) while the same process
writes the GeoTIFFs and the tables. A forked child inherits the audit, its surfaces and the
network arrays as they are in memory, so nothing is serialised on the way in (no pickle), and it
writes its files itself; on the way back it sends only a small JSON value (file names, timings)
through a pipe.

Forking is used only where it is safe and useful: on Linux, with two or more usable cores, from
the main thread of a process that runs no other Python thread (a dask worker runs audits in
its thread pool, where a fork could inherit a held lock). Everywhere else the step runs inline,
with the same result.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from qyx_geo._errors import QyxGeoError

__all__ = ["Background", "Gathered", "Pending", "can_fork"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Return whether :class:`Background` would fork here (see the module doc)."""
    return (sys.platform.startswith("linux") and hasattr(os, "fork")
            and _usable_cores() >= 2
            and threading.current_thread() is threading.main_thread()
            and threading.active_count() == 1)


class Pending(Generic[T]):
    """A step started in the background: :meth:`result` waits for it, :meth:`close` stops it.

    As a context manager it is closed on leaving, so a failure elsewhere stops the step too.
    """

    @property
    def forked(self) -> bool:
        """Whether the step runs (or ran) in a child process."""
        raise NotImplementedError

    def result(self) -> T:
        """Wait for the step and return its value; re-raise its error here."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the step if it is still running; idempotent."""
        raise NotImplementedError

    def __enter__(self) -> Pending[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Background(Pending[T]):
    """Start ``fn`` now, in a forked child where possible; :meth:`result` waits for it.

    Parameters
    ----------
    fn
        The step. It must return a JSON-serialisable value (what crosses the pipe) and may
        write files; in a child, everything else it changes is lost with the child.
    finish
        Applied to ``fn``'s value in the calling process (e.g. turning names into paths and
        merging timings); default: the value itself.
    parallel
        ``None``: fork when :func:`can_fork`; ``False``: run inline now; ``True``: fork when
        :func:`can_fork`, else inline (a fork is never forced where it is unsafe).

    Notes
    -----
    Use it as a context manager, or call :meth:`close` when abandoning it: a child that is still
    running is then stopped, so a failed run leaves no process writing behind it.
    """

    def __init__(self, fn: Callable[[], Any], *, finish: Callable[[Any], T] | None = None,
                 parallel: bool | None = None) -> None:
        self._finish: Callable[[Any], Any] = finish or (lambda value: value)
        self._pid: int | None = None
        self._fd: int | None = None
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None
        if parallel is not False and can_fork():
            self._start(fn)
        else:
            try:
                self._value = fn()
            except BaseException as err:  # re-raised by result(), as from a child
                self._error = err
            self._done = True

    @property
    def forked(self) -> bool:
        """Whether the step runs (or ran) in a child process."""
        return self._pid is not None

    def _start(self, fn: Callable[[], Any]) -> None:
        read_fd, write_fd = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # or the child flushes the parent's buffers too
            stream.flush()
        pid = os.fork()
        if pid == 0:  # the child: run, report, and leave without the parent's cleanup
            code = 1
            try:
                os.close(read_fd)
                try:
                    data = json.dumps({"value": fn()}, ensure_ascii=False).encode("utf-8")
                    code = 0
                except BaseException as err:
                    payload: dict[str, Any] = {
                        "error": type(err).__name__, "module": type(err).__module__,
                        "message": str(err), "traceback": traceback.format_exc()}
                    if isinstance(err, OSError):  # rebuilt as such: the CLI explains it
                        payload["os"] = [err.errno, err.strerror, err.filename]
                    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                with os.fdopen(write_fd, "wb") as pipe:
                    pipe.write(data)
            except BaseException:  # nothing may escape into the parent's frames
                code = 1
            finally:
                with contextlib.suppress(BaseException):
                    logging.shutdown()  # flush the child's log records
                os._exit(code)
        os.close(write_fd)
        self._pid, self._fd = pid, read_fd
        log.debug("forked pid %d", pid)

    def result(self) -> T:
        """Wait for the step and return ``finish(value)``; re-raise its error here.

        Raises
        ------
        QyxGeoError
            The child ended without a result (killed, out of memory), or raised one of
            qyx_geo's errors (re-raised as the same type). An ``OSError`` is re-raised as
            such; any other error as ``RuntimeError`` with the child's traceback.
        """
        if not self._done:
            self._collect()
        if self._error is not None:
            raise self._error
        return self._finish(self._value)

    def _collect(self) -> None:
        assert self._fd is not None and self._pid is not None
        chunks = []
        with os.fdopen(self._fd, "rb") as pipe:
            self._fd = None
            while chunk := pipe.read(1 << 16):
                chunks.append(chunk)
        _, status = os.waitpid(self._pid, 0)
        self._done = True
        raw = b"".join(chunks)
        if not raw:
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exit code {os.WEXITSTATUS(status)}")
            self._error = QyxGeoError(f"后台步骤无结果退出 / the background step (maps) ended "
                                      f"without a result ({how}; signal 9 is usually the system "
                                      "running out of memory)")
            return
        payload = json.loads(raw.decode("utf-8"))
        if "value" in payload:
            self._value = payload["value"]
            return
        self._error = _rebuild(payload)

    def close(self) -> None:
        """Stop a child that is still running and reap it; idempotent."""
        if self._done or self._pid is None:
            self._done = True
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        os.waitpid(self._pid, 0)
        self._done = True
        self._error = QyxGeoError("the background step was stopped")


def _rebuild(payload: dict[str, Any]) -> BaseException:
    """Return the child's error as an exception of the same qyx_geo type where possible."""
    name, module, message = payload["error"], payload["module"], payload["message"]
    log.debug("background step failed:\n%s", payload.get("traceback", ""))
    if name == "KeyboardInterrupt":
        return KeyboardInterrupt()
    if "os" in payload:
        errno, strerror, filename = payload["os"]
        return OSError(errno, strerror, filename) if errno is not None else OSError(message)
    if module.startswith("qyx_geo"):
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            cls = None
        if isinstance(cls, type) and issubclass(cls, QyxGeoError):
            try:
                return cls(message)
            except TypeError:
                pass
    # a bug, not a user error: keep the child's traceback for the report
    return RuntimeError(f"{name}: {message}\n-- in the background step --\n"
                        f"{payload.get('traceback', '')}")


class Gathered(Pending[T]):
    """Several :class:`Background` steps as one.

    :meth:`result` waits for all, :meth:`close` stops all: e.g. the HTML maps and half of the
    print maps in one child, the other half in another.

    Parameters
    ----------
    jobs
        The started steps.
    finish
        Applied to the list of their values, in the calling process.
    """

    def __init__(self, jobs: Sequence[Pending[Any]], *,
                 finish: Callable[[list[Any]], T]) -> None:
        self._jobs = list(jobs)
        self._gather = finish

    @property
    def forked(self) -> bool:
        """Whether any of the steps runs (or ran) in a child process."""
        return any(job.forked for job in self._jobs)

    def result(self) -> T:
        """Wait for every step; re-raise the first error (the others are stopped)."""
        try:
            values = [job.result() for job in self._jobs]
        except BaseException:
            self.close()
            raise
        return self._gather(values)

    def close(self) -> None:
        """Stop the steps that are still running; idempotent."""
        for job in self._jobs:
            job.close()
