"""What every benchmark records about its run: the commit and the machine's load."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def commit() -> str:
    """The short hash of the checked-out commit, or "unknown" outside a git checkout."""
    done = subprocess.run(["git", "-C", str(_REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def loadavg() -> list[float]:
    """The 1-, 5- and 15-minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]
