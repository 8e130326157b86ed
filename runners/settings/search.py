"""What the learning-rate search settings resolve to for one spec: the range searched and who set it, and the
grid's rounding. The search itself is runners.planning.search; its selection rule runners.analysis.selection."""
from __future__ import annotations

from runners.settings.config import RunConfig

EXTEND_LIMIT = 2  # steps past each end of the range searched, at most
RANGE_SOURCES = ("method", "spec", "--lr-range", "default")  # who set the range searched (Record.method)


def rounded(x: float) -> float:
    """A rate to three significant digits, as the grid holds it."""
    return float(f"{x:.3g}")


def lr_range(label: str, cfg: RunConfig) -> tuple[float, float]:
    """The range searched for a spec: its own `:lr_range=`, else `--lr-range`, else what the method declares."""
    from methods import parse_spec

    return searched_range(label, parse_spec(label).method, cfg)[:2]


def searched_range(label: str, method, cfg: RunConfig) -> tuple[float, float, str]:
    """(lo, hi, who set it: one of RANGE_SOURCES) for a spec's method, before its rate is set for a run. A method
    that declares no range searches a decade either side of its default rate ("default", flagged in the table)."""
    given = any(pair.partition("=")[0] == "lr_range" for pair in label.split(":")[1:])
    if cfg.lr_range is not None and not given:
        return float(cfg.lr_range[0]), float(cfg.lr_range[1]), "--lr-range"
    lo, hi = method.lr_range()
    declared = method.params.lr_range is not None
    return lo, hi, ("spec" if given else "method") if declared else "default"


