"""What every record names beside its results: the package versions, the git commit the code ran from, and when."""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata

from runners.core.files import PROJECT_ROOT

PACKAGES = ("torch", "transformers", "datasets", "accelerate", "numpy", "pandas", "scikit-learn")  # the runner's


def versions() -> dict[str, str | None]:
    """Python's version and each package's: the runner's own, then those the registered methods name (`packages`)."""
    from methods import registered

    found = {"python": platform.python_version()}
    for name in dict.fromkeys([*PACKAGES, *sorted({p for cls in registered().values() for p in cls.packages})]):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_state() -> dict:
    """The commit the code ran from and whether its code had uncommitted changes (None outside git).

    Changes under results/ do not count: records and tables are outputs, not code.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    try:
        changes = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results")
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changes)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")
