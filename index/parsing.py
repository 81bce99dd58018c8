"""Parse untrusted PDF, DOCX and HTML in a worker process, with a time and a memory limit.

A hostile file (a PDF whose pages share one stream that inflates to 70 MB, a .docx of millions
of empty paragraphs) can cost minutes of CPU and gigabytes of memory inside pypdf, python-docx
or lxml. In the server's process that would freeze every request; in a worker it costs one
worker, which is killed when its time runs out and cannot grow past its memory limit.

Workers are started with "spawn" (no copy of the server's threads, locks or model), kept in a
small pool and reused, so a file costs a pipe round-trip rather than a Python start-up.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from core.documents import Document, SkippedSource

# Longest one file may take to parse before its worker is killed and the file refused.
PARSE_TIMEOUT_SECONDS = 30.0
# Address space a worker may use (RLIMIT_AS); pypdf, python-docx and lxml need ~60 MB of it.
WORKER_MEMORY_BYTES = 1024**3
# Files parsed at once; more wait their turn (the machine's cores are shared with the server).
MAX_WORKERS = 2
# A worker is replaced after this many files, so memory fragmented by big files is given back.
TASKS_PER_WORKER = 200

_context = multiprocessing.get_context("spawn")
_lock = threading.Lock()
_idle: list[_Worker] = []
_slots = threading.BoundedSemaphore(MAX_WORKERS)


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self) -> None:
        self.conn, child_conn = _context.Pipe()
        self.process: BaseProcess = _context.Process(
            target=_worker_main, args=(child_conn, WORKER_MEMORY_BYTES),
            name="citeqa-parser", daemon=True)
        self.process.start()
        child_conn.close()
        self.tasks = 0

    def stop(self) -> None:
        """Kill the process (it may be stuck in C code, so no polite request) and reap it."""
        with contextlib.suppress(OSError):
            self.conn.close()
        self.process.kill()
        self.process.join(timeout=5)


def parse_isolated(kind: str, name: str, payload: bytes | str, *, doc_id: str
                   ) -> Document | SkippedSource:
    """Parse a `kind` ("pdf", "docx" or "html") file in a worker; a refusal is a `SkippedSource`.

    Blocks until the worker answers or `PARSE_TIMEOUT_SECONDS` pass; call it off the event loop.
    """
    timeout = PARSE_TIMEOUT_SECONDS
    with _slots:
        worker = _take_worker()
        healthy = False
        try:
            worker.conn.send((kind, name, payload, doc_id))
            if not worker.conn.poll(timeout):
                return SkippedSource(
                    name, f"took longer than {timeout:g} s to parse (the limit); "
                    "split the file or save a simpler copy", doc_id)
            result, retire = worker.conn.recv()
            # A worker that ran out of memory is replaced: its heap may be left in pieces.
            healthy = not retire
        except (EOFError, OSError):
            # The worker died: the kernel refused it memory inside C code, or it crashed.
            return SkippedSource(
                name, f"parsing it needed more than the {_megabytes(WORKER_MEMORY_BYTES)} "
                "memory limit (or crashed the parser); split the file or save a simpler copy",
                doc_id)
        finally:
            _give_back(worker, healthy)
    if not isinstance(result, Document | SkippedSource):
        raise TypeError(f"parser worker answered {type(result).__name__}")
    return result


def _take_worker() -> _Worker:
    with _lock:
        while _idle:
            worker = _idle.pop()
            if worker.process.is_alive():
                return worker
            worker.stop()
    return _Worker()


def _give_back(worker: _Worker, healthy: bool) -> None:
    worker.tasks += 1
    if not healthy or worker.tasks >= TASKS_PER_WORKER:
        worker.stop()
        return
    with _lock:
        _idle.append(worker)


def shutdown_workers() -> None:
    """Stop the idle workers (they are daemons, so exiting the process stops them too)."""
    with _lock:
        workers, _idle[:] = list(_idle), []
    for worker in workers:
        worker.stop()


def _megabytes(size: int) -> str:
    return f"{size / 1024**3:g} GB" if size >= 1024**3 else f"{size // 1024**2:,} MB"


def _worker_main(conn: Connection, memory_bytes: int) -> None:
    """The worker's loop: parse each file it is sent, answer a `Document` or `SkippedSource`."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Import the parsers before capping memory: the cap is for what a file makes them use.
    from index import loaders

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    while True:
        try:
            task: Any = conn.recv()
        except (EOFError, OSError):  # the parent is gone or closed our pipe
            return
        kind, name, payload, doc_id = task
        del task
        retire = False
        try:
            result: Document | SkippedSource = loaders.parse_untrusted(
                kind, name, payload, doc_id=doc_id)
        except MemoryError:
            retire = True
            result = SkippedSource(
                name, f"parsing it needed more than the {_megabytes(memory_bytes)} memory "
                "limit; split the file or save a simpler copy", doc_id)
        del payload
        try:
            conn.send((result, retire))
        except MemoryError:
            conn.send((SkippedSource(name, "its text is too large to hand back", doc_id), True))
