"""`<results>/<dataset>/index.html`: one self-contained page per results folder, made from the same experiment view
and summary frames as the tables, that opens from disk with nothing fetched (plotly.js is embedded in it)."""
from __future__ import annotations

import json
import re
from html import escape
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from runners.analysis.columns import columns
from runners.analysis.page.html import comparison_table, experiments_list
from runners.analysis.page.payload import OKABE_ITO, payload
from runners.core.files import write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

    from runners.analysis.experiment import Experiment

STATIC = resources.files(__package__)


def write_page(path: Path, dataset: str, exps: list[Experiment], frames: dict[str, pd.DataFrame]) -> Path:
    """Write the page of one results folder: `exps` as runners.analysis.experiment.experiments gives them, `frames`
    each experiment's summary frame (runners.analysis.section.render's, with its verdict) by id."""
    write_text_atomic(path, page(dataset, exps, frames))
    return path


def page(dataset: str, exps: list[Experiment], frames: dict[str, pd.DataFrame]) -> str:
    from plotly.offline import get_plotlyjs  # imported here: only a page needs it (4.8 MB of JavaScript)

    shown = [e for e in exps if e.id in frames]
    cols = {e.id: columns(e) for e in shown}  # the columns summarize gave each frame
    data = json.dumps(payload(exps, frames, cols, dataset), ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).replace("<", "\\u003c")  # nothing in it can end or fool its script element
    options = "".join(f'<option value="{i}">{escape(e.id)} ({escape(e.config.budget)})</option>'
                      for i, e in enumerate(shown))
    budgets = "".join(f"<option>{escape(b)}</option>" for b in dict.fromkeys(e.config.budget for e in shown))
    statuses = sorted({r.status.value for e in shown for r in e.records} - {"ok"})
    status = "".join(f'<option value="{s}">some seed {s}</option>' for s in statuses)
    labels = "".join(f"<option value=\"{escape(label)}\">" for label in dict.fromkeys(
        label for e in shown for label in e.rows))
    records = sum(len(e.records) + len(e.trials) for e in exps)
    fill = {"dataset": escape(dataset), "records": f"{records:,}", "experiments": experiments_list(exps, frames),
            "comparison": comparison_table(exps, frames, cols), "options": options, "budgets": budgets,
            "statuses": status, "labels": labels, "swatches": _swatches(), "css": _static("page.css"),
            "data": data, "table": _static("table.js"), "plotly": get_plotlyjs(), "plots": _static("plots.js")}
    # one pass over the template's own text: a value filled in is never searched for placeholders
    return re.sub(r"\{\{(\w+)\}\}", lambda m: fill[m.group(1)], _static("page.html"))


def _static(name: str) -> str:
    return STATIC.joinpath(name).read_text(encoding="utf-8")


def _swatches() -> str:
    return "".join(f'<span class="swatch" style="background:{c}" title="{c}"></span>' for c in OKABE_ITO)
