"""Stopping `citeqa serve`: requests in flight finish before the process exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from index.store import Store
from tests.conftest import _free_port, wait_until_up


def _wait_for_collection(base: str, name: str) -> None:
    """Return once the server lists collection `name` (at most 120 s)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = httpx.get(f"{base}/v1/collections", timeout=30).json()["collections"]
        if any(collection["name"] == name for collection in listed):
            return
        time.sleep(0.02)
    raise AssertionError(f"collection {name!r} never appeared")


def _long_article() -> bytes:
    paragraphs = [
        f"# Harbour Survey Notes\n\nThe survey team logged mooring number {n} on pier "
        f"{n % 17}. Its chain was measured at {n * 3 % 97} metres and painted in colour "
        f"code {n % 11}. Inspectors recorded the weather as calm on day {n % 28 + 1}."
        for n in range(1200)
    ]
    return "\n\n".join(paragraphs).encode()


@pytest.mark.slow
def test_sigterm_lets_an_upload_in_flight_finish(settings: Settings, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from server.cli import main; main()", "--data-dir",
             str(settings.data_dir), "serve", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
            # The grace (default 30 s) bounds the wait for requests in flight; on a loaded
            # machine this upload took longer, and uvicorn rightly cut it. What is tested here
            # is that the wait happens, so the grace is made longer than any upload's time.
            env={**os.environ, "HF_HUB_OFFLINE": "1", "CITEQA_SHUTDOWN_GRACE": "600"})
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(process, f"{base}/readyz", what="citeqa serve", log=log)
            outcome: dict[str, httpx.Response] = {}
            article = _long_article()
            upload = threading.Thread(target=lambda: outcome.update(response=httpx.post(
                f"{base}/v1/documents", timeout=300,
                files={"file": ("harbour-survey.md", article, "text/markdown")})))
            upload.start()
            # Stop the server while it works on the upload: once ingestion has created the
            # collection, embedding 1,200 paragraphs takes seconds more. (A fixed sleep sent
            # the signal before a loaded machine had even sent the request; a request not yet
            # received is rightly dropped.)
            _wait_for_collection(base, "articles")
            process.send_signal(signal.SIGTERM)
            upload.join(timeout=300)
            # uvicorn exits through the signal it was sent, once the work is done.
            assert process.wait(timeout=120) in (0, -signal.SIGTERM), log.read_text()
            assert "Waiting for connections to close" in log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
    response = outcome["response"]
    assert response.status_code == 200, response.text
    assert response.json()["added"] == ["harbour-survey.md"]
    stored = Store(settings.data_dir).collection("articles").document("harbour-survey.md")
    assert stored.chunks > 1
    # Once stopping, it takes no new requests.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", timeout=5)
