"""The propagation benchmark's quick mode runs end to end and prints its tables."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "propagation.py"
QUICK_LEVELS = ("50", "200")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_run_completes_and_prints_the_table(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=230,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout
    for heading in ("Fan-out: start of a put", "Server cost", "Targets"):
        assert heading in out, out
    for column in ("service p50", "floor p50", "ratio p50", "svc µs/dlv", "svc KiB/stream"):
        assert column in out, out
    for n in QUICK_LEVELS:
        row = re.search(rf"^\|\s+{n} \|\s+{n} \|.*\|\s+0 \|$", out, re.MULTILINE)
        assert row, f"no complete row for N = {n} (every put delivered):\n{out}"
    written = results.read_text()
    assert "bench/propagation.py --quick" in written
    assert "## Targets (issue 3)" in written
