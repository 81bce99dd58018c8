"""What every benchmark records about its run: the commit and the machine's load."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def commit() -> str:
    """The short hash of the checked-out commit, "+uncommitted" when code differs from it
    (results and Markdown files aside), or "unknown" outside a git checkout."""
    done = subprocess.run(["git", "-C", str(_REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    head = done.stdout.strip()
    if not head:
        return "unknown"
    changed = subprocess.run(["git", "-C", str(_REPO), "status", "--porcelain",
                              "--untracked-files=no", "--", ".", ":!bench/results", ":!*.md"],
                             capture_output=True, text=True, check=False).stdout.strip()
    return f"{head}+uncommitted" if changed else head


def loadavg() -> list[float]:
    """The 1-, 5- and 15-minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]
