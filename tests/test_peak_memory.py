"""A run's CPU peak memory is its own, not inherited from the large process that started it."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from runners.measure.environment import MiB, peak_rss_bytes

CHILD = "from runners.measure.environment import peak_rss_bytes; print(peak_rss_bytes())"


def test_a_child_of_a_large_parent_reports_its_own_peak():
    ballast = np.ones(1 << 28)  # 2 GiB, touched: the parent's high-water mark is at least that
    assert peak_rss_bytes() >= ballast.nbytes
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
    child = int(out)
    # ru_maxrss would report the parent's 2 GiB here (kept across fork and exec); the child imports torch only
    assert 0 < child < ballast.nbytes / 2, f"{child / MiB:.0f} MiB"
    del ballast
