"""How long `citeqa serve` takes to start: until /healthz answers, and until a first answer.

    python -m bench.startup --rounds 3

Ingests the bundled samples into a temporary data folder, then starts `citeqa serve` on it
`--rounds` times in turn, each a new process. The first start on a folder exports the embedding
model to ONNX (PyTorch needed); later starts open the recorded export without importing
PyTorch. Prints the seconds of each start and writes nothing but the temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.perf_procs import bench_env, free_port, spawn, stop, wait_http
from bench.run_info import commit, loadavg

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "articles"
CITEQA = [sys.executable, "-c", "from server.cli import main; main()"]


def start_once(data_dir: Path) -> dict[str, float]:
    """Start a server on the folder; seconds until it is healthy and until its first answer."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = data_dir.parent / "serve.log"
    started = time.perf_counter()
    process = spawn([*CITEQA, "--data-dir", str(data_dir), "serve", "--port", str(port)],
                    env=bench_env(), log=log)
    try:
        # Polled often: the start is what is timed.
        wait_http(f"{base}/healthz", process, log, timeout=300, interval=0.05)
        healthy = time.perf_counter() - started
        answer = httpx.post(f"{base}/v1/ask", json={"question": "Who co-leads the lab?"},
                            timeout=300)
        answer.raise_for_status()
        answered = time.perf_counter() - started
    finally:
        stop(process)
    return {"healthy_s": round(healthy, 2), "first_answer_s": round(answered, 2)}


def main() -> None:
    """Measure and print the starts as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="Starts in turn [3].")
    args = parser.parse_args()
    record: dict[str, Any] = {"command": "python -m bench.startup " + " ".join(sys.argv[1:]),
                              "commit": commit(), "load_before": loadavg()}
    with tempfile.TemporaryDirectory(prefix="citeqa-startup-") as folder:
        data_dir = Path(folder) / "data"
        subprocess.run([*CITEQA, "--data-dir", str(data_dir),
                        "ingest", str(SAMPLES), "--collection", "articles"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The ingest above exported the model: put the folder back as a first start finds it.
        for file in (data_dir / "models").iterdir():
            file.unlink()
        record["starts"] = [start_once(data_dir) for _ in range(args.rounds)]
    record["load_after"] = loadavg()
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
