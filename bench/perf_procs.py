"""Subprocesses for the performance benchmarks: `citeqa serve`, `chroma run`, and their memory.

Every server listens on a free port of 127.0.0.1 and is stopped by its own process id.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
import psutil

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tree(process: psutil.Process) -> list[psutil.Process]:
    """A process and all its descendants; empty once it is gone."""
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes (0 once it is gone)."""
    total = 0
    for member in _tree(process):
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process and its live descendants so far."""
    try:
        members = _tree(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for member in members:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


@dataclass
class PeakRss:
    """Samples a process tree's resident memory on a thread; `peak_mb` is the largest seen."""

    pid: int
    interval: float = 0.1
    peak: int = 0
    last: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        process = psutil.Process(self.pid)

        def sample() -> None:
            while not self._stop.is_set():
                rss = tree_rss(process)
                if rss:
                    self.last = rss
                    self.peak = max(self.peak, rss)
                    self.samples += 1
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def peak_mb(self) -> float:
        """The peak in MiB."""
        return round(self.peak / 2**20, 1)

    @property
    def last_mb(self) -> float:
        """The last sample in MiB."""
        return round(self.last / 2**20, 1)


def stop(process: subprocess.Popen[bytes], timeout: float = 45.0) -> None:
    """Stop a server we started: SIGTERM to its process group, SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def spawn(command: list[str], *, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a command in its own process group, output to a log file."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(command, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float,
              interval: float = 0.25) -> None:
    """Wait until GET `url` answers 200, asking every `interval` seconds; fail with the log's
    tail if the process dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    stop(process)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s (log: {log})")


# Settings the benchmarks choose themselves: never inherited from the caller's environment.
OWN_SETTINGS = ("DATA_DIR", "COLLECTION", "CHROMA_URL", "API_KEYS", "API_KEYS_FILE", "LLM")


def clear_own_settings() -> None:
    """Remove the settings the benchmarks choose (`OWN_SETTINGS`) from this environment."""
    for name in OWN_SETTINGS:
        os.environ.pop(f"CITEQA_{name}", None)


def bench_env(**citeqa: str) -> dict[str, str]:
    """This process's environment, offline, with `CITEQA_*` variables set as given."""
    own = {f"CITEQA_{name}" for name in OWN_SETTINGS}
    env = {k: v for k, v in os.environ.items() if k not in own}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    env.update({f"CITEQA_{key.upper()}": value for key, value in citeqa.items()})
    return env


@dataclass
class Server:
    """A running server: its base URL and process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def citeqa_server(env: Mapping[str, str], log: Path, *, workers: int = 1,
                  timeout: float = 300.0) -> Iterator[Server]:
    """A real `citeqa serve` on a free loopback port, ready (GET /readyz) when yielded.

    With several workers, each answers /readyz for itself: one ready answer is taken as the
    start of readiness, and the warm-up that follows reaches the others.
    """
    port = free_port()
    command = [str(BIN / "citeqa"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    process = spawn(command, env=env, log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/readyz", process, log, timeout)
        yield Server(url, process, log)
    finally:
        stop(process)


@contextmanager
def chroma_server(path: Path, log: Path, timeout: float = 120.0) -> Iterator[Server]:
    """A real `chroma run` persisting to `path` on a free loopback port."""
    port = free_port()
    command = [str(BIN / "chroma"), "run", "--host", "127.0.0.1", "--port", str(port),
               "--path", str(path)]
    process = spawn(command, env=bench_env(), log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/v2/heartbeat", process, log, timeout)
        yield Server(url, process, log)
    finally:
        stop(process)
