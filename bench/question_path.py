"""The path of one question through the code: which of citeqa's files `POST /v1/ask` passes
through, in order, as measured by tracing the calls (not as drawn).

    python -m bench.question_path [--data-dir DIR]

A *stop* is a call from a file that directs the question (a route, the application layer, the
pipeline: `ORCHESTRATION`) into another of citeqa's files; what the stages do inside is not
counted. A *return* is a stop in a file the path had already left. Libraries are skipped; the
count of `prepare_question` calls is printed too. Needs a data folder holding
the sample articles (`make ingest-samples` writes ./data); the question is asked once to warm
up, then traced. Run on two commits to compare their paths.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("index", "qa", "citeqa", "server")
QUESTION = {"question": "Who co-leads the lab?"}
# The files that direct a question from stage to stage (server/services.py before the
# application layer existed).
ORCHESTRATION = ("server/routes/", "server/deps.py", "server/services.py", "citeqa/",
                 "qa/pipeline.py")


def _ours(filename: str) -> str | None:
    try:
        relative = Path(filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    return str(relative) if relative.parts[0] in PACKAGES else None


class PathTracer:
    """Records the files of every cross-file call, on every thread started after it is
    installed, while `recording` is set."""

    def __init__(self) -> None:
        self.stops: list[str] = []
        self.prepared = 0
        self.recording = False

    def __enter__(self) -> PathTracer:
        # Threads started from now on (the server's portal and worker threads) are traced.
        threading.setprofile(self._profile)
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or not self.recording:
            return
        callee = _ours(frame.f_code.co_filename)
        caller = _ours(frame.f_back.f_code.co_filename) if frame.f_back else None
        if callee == "qa/question.py" and frame.f_code.co_name == "prepare_question":
            self.prepared += 1
        if (callee is not None and caller is not None and callee != caller
                and caller.startswith(ORCHESTRATION)
                and (not self.stops or self.stops[-1] != callee)):
            if not self.stops:
                self.stops.append(caller)
            self.stops.append(callee)


def main() -> None:
    """Print the traced path of one question and its counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    arguments = parser.parse_args()
    from fastapi.testclient import TestClient

    try:
        from core.settings import Settings
    except ImportError:  # a commit from before core/ existed
        from index.settings import Settings  # type: ignore[no-redef]
    from server.app import create_app

    with PathTracer() as tracer, \
            TestClient(create_app(Settings(data_dir=arguments.data_dir))) as client:
        assert client.post("/v1/ask", json=QUESTION).status_code == 200
        tracer.recording = True
        client.post("/v1/ask", json=QUESTION)
        tracer.recording = False
    stops = tracer.stops
    returns = sum(1 for n, stop in enumerate(stops) if stop in stops[:n])
    for stop in stops:
        print(" ", stop)
    directing = sorted({stop for stop in stops if stop.startswith(ORCHESTRATION)})
    print(f"{len(stops)} stops in {len(set(stops))} files, {returns} returns to a file "
          f"already left; prepare_question ran {tracer.prepared} times")
    print(f"{len(directing)} files direct the question: {', '.join(directing)}")


if __name__ == "__main__":
    main()
