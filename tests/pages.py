"""Results folders for the page's tests and its measurements (runners.analysis.page), made from the committed records'
real shapes, and Debian's chromium driven by Playwright to open them.

    python -m tests.pages large DIR               # 16 methods x 3 seeds x 4 budgets, 4 rates searched each
    python -m tests.pages measure PAGE.html [N]   # size, and N loads' times in the browser (median)
    python -m tests.pages screenshots PAGE.html docs/img   # docs/img/page-*.png, each view of the page
"""
from __future__ import annotations

import dataclasses
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np

from runners.analysis.selection import choose
from runners.settings.config import stable_hash
from runners.store.records import load_records, run_id, runs_dir
from runners.store.schema import Record, Status

RESULTS = Path(__file__).resolve().parent.parent / "results"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless, and quiet: without the background-networking flags chromium reaches for the network on its own
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# From results/tweets: a family of two budgets with searched rates (4e11flops, 1.6e12flops), and one with baselines
SMALL = ("99b4b05d6d68", "83f9599985be", "eb0a7f5f2d92")
TEMPLATE = "4b3e7b2ba00b"  # searched rates, with the serve stage and its cost: every column the tables have
METHODS = ("adalora", "bitfit", "dora", "fourierft", "full", "head", "ia3", "lastk", "lntuning", "lora", "loraplus",
           "prefix", "prompt", "ptuning", "qlora", "vera")


def write(records: list[Record], results: Path, dataset: str = "tweets") -> Path:
    folder = runs_dir(results, dataset)
    folder.mkdir(parents=True, exist_ok=True)
    for r in records:
        (folder / f"{r.run_id}.json").write_text(r.to_json())
    return results


def not_ok(record: Record, status: Status, error: str) -> Record:
    """The record of the same run had it ended `status`: no metrics, no measurements, no curve."""
    return record.model_copy(update={"status": status, "error": error, "metrics": None, "measurements": None,
                                     "curve": [], "predictions": None, "serving": None, "cost": None})


def small_folder(results: Path) -> Path:
    """Three committed experiments of results/tweets (two budgets of one tuned comparison, one with baselines), with
    one seed of a row failed, every seed of another cancelled, and one seed out of memory."""
    records = [r for r in load_records(RESULTS, "tweets") if r.experiment_id in SMALL]
    tuned = [r for r in records if r.experiment_id == SMALL[0] and not r.config.search]
    labels = list(dict.fromkeys(r.label for r in tuned))
    changed = {}
    for r in tuned:
        if r.label == labels[-1]:  # every seed cancelled: a row with nothing to show but why
            changed[r.run_id] = not_ok(r, Status.CANCELLED, "interrupted (SIGINT) | while training")
        elif r.label == labels[-2] and r.seed == 2:
            changed[r.run_id] = not_ok(r, Status.FAILED,  # markup in a message is text, on the page as anywhere
                                       "RuntimeError: the loss went nowhere | see </script><!-- <b>the traceback</b>")
        elif r.label == labels[0] and r.seed == 1:
            changed[r.run_id] = not_ok(r, Status.OOM, "CUDA out of memory at micro-batch 32")
    return write([changed.get(r.run_id, r) for r in records], results)


def large_folder(results: Path, budgets=("1e11flops", "2e11flops", "4e11flops", "8e11flops"), seeds=(0, 1, 2),
                 rates=(1e-4, 4.64e-4, 2.15e-3, 1e-2)) -> Path:
    """A comparison of the size the page must stay usable at: 16 methods x 3 seeds x 4 budgets, each method's rate
    searched over 4 rates at each budget (448 records), made by varying the committed records of one tuned
    experiment: every field a real record has, values drawn at random (seeded). One method loses a seed to memory at
    every budget; another is cancelled at the largest."""
    committed = [r for r in load_records(RESULTS, "tweets") if r.experiment_id == TEMPLATE]
    run = next(r for r in committed if not r.config.search and r.label == "lora")
    trial = next(r for r in committed if r.config.search and r.label == "lora")
    rng = np.random.default_rng(0)
    quality = dict(zip(METHODS, rng.uniform(0.42, 0.62, len(METHODS))))
    cost = dict(zip(METHODS, rng.uniform(0.5, 2.0, len(METHODS))))
    labels = np.array([int(c) for c in run.predictions.labels])
    out = []
    for b, budget in enumerate(budgets):
        stamp = f"2026-01-0{b + 1}T00:00:00+00:00"
        for method in METHODS:
            best = rates[int(rng.integers(len(rates)))]
            for lr in rates:  # the search: its score falls off away from the method's best rate
                score = quality[method] + 0.02 * b - 0.03 * abs(np.log10(lr / best)) + rng.normal(0, 0.01)
                out.append(_varied(trial, method, 1000, budget, lr, score, cost[method] * 2 ** b, stamp, rng))
            chosen = choose(method, [t for t in out if t.config.budget == budget and t.label == method], "accuracy")
            for seed in seeds:
                acc = float(np.clip(quality[method] + 0.02 * b + rng.normal(0, 0.02), 0.05, 0.95))
                r = _varied(run, method, seed, budget, chosen.lr, acc, cost[method] * 2 ** b, stamp, rng, labels)
                if method == "prefix" and seed == 2:
                    r = not_ok(r, Status.OOM, "CUDA out of memory at micro-batch 32")
                elif method == "lastk" and b == len(budgets) - 1:
                    r = not_ok(r, Status.CANCELLED, "interrupted (SIGTERM)")
                out.append(r)
    return write(out, results)


def _varied(base: Record, method: str, seed: int, budget: str, lr: float, accuracy: float, scale: float, stamp: str,
            rng: np.random.Generator, labels: np.ndarray | None = None) -> Record:
    """`base` as the run of `method` on `seed` at `budget` and `lr` that scored `accuracy` (test accuracy for a
    reported run, its final validation accuracy for a search trial) at `scale` times base's costs."""
    cfg = dataclasses.replace(base.config, method=method, seed=seed, budget=budget, lr=lr)
    eid = stable_hash({**cfg.experiment(), "base": base.experiment_id})
    grow = np.linspace(0.6, 1.0, len(base.curve))
    curve = [p.model_copy(update={"val_accuracy": float(np.clip(accuracy * g + rng.normal(0, 0.01), 0, 1)),
                                  "flops": p.flops * scale, "seconds": p.seconds * scale})
             for p, g in zip(base.curve, grow)]
    m = base.measurements
    update = {"config": cfg, "run_id": run_id(method, seed, stable_hash(cfg.key())), "experiment_id": eid,
              "timestamp": stamp, "method": base.method.model_copy(update={"label": method, "name": method}),
              "curve": curve, "measurements": m.model_copy(update={
                  "peak_memory_mib": m.peak_memory_mib * scale * rng.uniform(0.95, 1.05),
                  "train_seconds": m.train_seconds * scale * rng.uniform(0.9, 1.1), "flops": m.flops * scale})}
    if labels is not None:  # a reported run: its test predictions agree with its accuracy
        predicted = labels.copy()
        wrong = rng.choice(len(labels), int(round((1 - accuracy) * len(labels))), replace=False)
        predicted[wrong] = (predicted[wrong] + 1) % 3
        update["predictions"] = base.predictions.model_copy(update={
            "predicted": "".join(map(str, predicted)), "proba": None})
        update["metrics"] = base.metrics.model_copy(update={
            "accuracy": float((predicted == labels).mean()), "macro_f1": accuracy * 0.97,
            "weighted_f1": accuracy * 0.98, "auc_macro": min(accuracy + 0.2, 0.99),
            "ece": float(rng.uniform(0.02, 0.1))})
        update["serving"] = base.serving.model_copy(update={"latency_ms": base.serving.latency_ms * rng.uniform(0.5, 2),
                                                            "artifact_bytes": int(base.serving.artifact_bytes * scale)})
        update["cost"] = base.cost.model_copy(update={"device_hours": base.cost.device_hours * scale})
    return base.model_copy(update=update)


def browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)


READ_TIMES = """() => {
  const nav = performance.getEntriesByType("navigation")[0], at = (n) => performance.getEntriesByName(n)[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return {painted: paint.startTime, plotly: at("page-script").startTime, ready: at("page-ready").startTime,
          load: nav.loadEventEnd};
}"""


def load_times(page_file: Path, times: int = 7) -> list[dict[str, float]]:
    """Open the page `times` times, each in a fresh tab: when its text first painted, when plotly.js had run, when
    its table and the first experiment's plots were ready, and the load event's end (ms from navigation)."""
    from playwright.sync_api import sync_playwright

    found = []
    with sync_playwright() as p:
        b = browser(p)
        for _ in range(times):
            tab = b.new_page(viewport={"width": 1400, "height": 1000})
            tab.goto(Path(page_file).resolve().as_uri())
            tab.wait_for_selector("body[data-ready]", timeout=60_000)
            found.append(tab.evaluate(READ_TIMES))
            tab.close()
        b.close()
    return found


VIEWS = {  # docs/img/page-<name>.png: what each shows, by its element on the page
    "experiments": "#experiments", "table": "#table", "pareto": "section:has(> #pareto)",
    "curves": "section:has(> #curves)", "search": "section:has(> #search)", "budgets": "#families .family",
    "details": "#details"}


# Where the trade-off plot draws its first row's point, in the window's pixels (plotly's own axes convert)
POINT = """() => {
  const gd = document.getElementById("pareto"), t = gd.data.find((d) => d.mode === "markers");
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  return {x: box.left + xa._offset + xa.l2p(xa.d2l(t.x[0])), y: box.top + ya._offset + ya.l2p(ya.d2l(t.y[0])),
          label: t.meta};
}"""


def screenshots(page_file: Path, out: Path) -> list[Path]:
    """A picture of each view of the page (docs/page.md shows them), taken in the browser the tests use."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with sync_playwright() as p:
        b = browser(p)
        tab = b.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        tab.goto(Path(page_file).resolve().as_uri())
        tab.wait_for_selector("body[data-ready]")
        for name, selector in VIEWS.items():
            if name == "budgets":
                tab.locator(selector).first.scroll_into_view_if_needed()
                tab.wait_for_selector("#families .plot[data-drawn]")
            if name == "details":
                tab.locator("#comparison tbody tr:not([hidden])").first.press("Enter")
                tab.wait_for_selector("#details[open]")
            if name == "pareto":  # with a point's tooltip
                tab.locator("#pareto").scroll_into_view_if_needed()
                point = tab.evaluate(POINT)
                tab.mouse.move(point["x"], point["y"])
                tab.wait_for_selector("#pareto .hoverlayer .hovertext")
            path = out / f"page-{name}.png"
            tab.locator(selector).first.screenshot(path=path)
            paths.append(path)
        b.close()
    return paths


def main(argv: list[str]) -> None:
    if argv[0] == "large":
        from runners import report

        large_folder(Path(argv[1]))
        report.main(["--results", argv[1], "--html"])
    elif argv[0] == "screenshots":
        print("\n".join(map(str, screenshots(Path(argv[1]), Path(argv[2])))))
    elif argv[0] == "measure":
        page = Path(argv[1])
        found = load_times(page, int(argv[2]) if len(argv) > 2 else 7)
        print(f"{page}: {page.stat().st_size / 2**20:.2f} MiB, {len(found)} loads")
        for key in found[0]:
            values = [f[key] for f in found]
            print(f"  {key:8} median {statistics.median(values):6.0f} ms  (all: "
                  f"{', '.join(f'{v:.0f}' for v in values)})")


if __name__ == "__main__":
    main(sys.argv[1:])
