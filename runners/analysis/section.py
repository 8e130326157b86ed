"""One experiment's section of `comparison.md`: what its numbers came from (the header), the verdict in words, the
table, and the notes that say how to read it."""
from __future__ import annotations

import pandas as pd

from runners.analysis.columns import OPTIONAL, TO_TARGET
from runners.analysis.experiment import Experiment
from runners.analysis.headers import header, mixed_resources
from runners.analysis.selection import search_note
from runners.analysis.stats import LOG_CI, LOGIT_CI
from runners.analysis.tables import EARLIER_RULE, summarize, to_markdown
from runners.analysis.verdict import sentences
from runners.measure.scores import AUC_NOTE, ECE_NOTE
from runners.store.schema import Record


def render(exp: Experiment) -> tuple[str, pd.DataFrame]:
    """The experiment's markdown section, and its summary frame (with the verdict in `attrs["verdict"]`)."""
    group, target, records, cfg = exp.group, exp.target, exp.records, exp.config
    df, cols = summarize(exp)
    verdict = " ".join(sentences(exp))
    df.attrs["verdict"] = verdict  # for a caller's own view of the frame (runners.analysis.terminal)
    notes = [f"- **Cells:** mean ± sd [{LOGIT_CI}] over seeds; time, memory, samples/s, serving and cost: geometric "
             f"mean [{LOG_CI}]; one value where there is one seed",
             f"- {group.footer}" if group.best or group.reference else
             "- Top group: none (fewer than two fine-tuning rows ended ok: nothing to test)"]
    if any(n in cols for n in OPTIONAL):
        notes.append(f"- **Scores from probabilities:** {AUC_NOTE}; {ECE_NOTE}")
    if target is not None:
        notes.append(f"- **Checkpoints:** accuracy at that share of the budget (– where the budget's steps were too "
                     f"few to evaluate it apart from a later checkpoint); *{TO_TARGET}* is the interval of "
                     f"{exp.unit} (last checkpoint below, first at or above) in which validation accuracy first "
                     f"reached {target:.3f} (95% of the best final one unless `--target-accuracy` is given), over "
                     f"the seeds that reached it")
    notes += serving_notes(records)
    resources = mixed_resources(records)
    if resources:
        notes.append(f"- **{resources}**")
    if cfg.tune_lr is not None:
        earlier = "lr rule" in df and (df["lr rule"] == EARLIER_RULE).any()
        notes.append(f"- **Tuned lr:** {search_note(cfg)}; ⚠ marks a rate at the low or high end of those tried "
                     f"(the best may lie beyond), one outside the range searched, and a range that is the default "
                     f"(the method declares none)" + ("; rates marked † were chosen by the rule before the tie rule "
                     "(the highest mean score, ties to the lower rate), as their trials were recorded before it"
                     if earlier else "") +
                     ". *Search cost*: trials × this budget, with the seconds (training, "
                     "evaluation, compilation) and training FLOPs they measured")
    fmt = {"flops": "{:.3g}", "seconds": "{:.1f}"}.get(exp.unit, "{:,.0f}")
    majority = group.reference.name if group.reference else "always predicting the majority class"
    table = to_markdown(df, cols, cfg.batch_size, fmt, majority)
    text = f"{header(records)}\n\n**Verdict:** {verdict}\n\n{table}\n\n" + "\n".join(notes) + "\n"
    return text, df


def serving_notes(records: list[Record]) -> list[str]:
    """How the serve stage's columns were measured, on which devices; and what the whole comparison cost."""
    ok = [r for r in records if r.ok]
    notes = []
    served = [r.serving for r in ok if r.serving is not None]
    if served:
        devices = ", ".join(dict.fromkeys(f"{s.device_name} ({s.compute_dtype})" for s in served))
        s = served[0]
        notes.append(f"- **Serving** (after the test, the serve stage), on {devices}: *artifact* is what is kept "
                     f"(a whole model, the trained tensors of a frozen base, or a peft adapter), its size on disk; "
                     f"*mergeable*: the merged model's logits on the first test texts stay within tolerance of the "
                     f"unmerged ones (Δ the largest difference; n/a: nothing to merge); latency: one text per "
                     f"request, median of {s.latency_requests} after warm-up; throughput: batches of "
                     f"{s.throughput_batch}, median of {s.throughput_repeats}; both of the form deployed (merged "
                     f"where mergeable); *extra tokens*: positions each request gains (virtual tokens)")
    costs = [r.cost for r in ok if r.cost is not None]
    if costs:
        hours = sum(c.device_hours for c in costs)
        priced = [c for c in costs if c.money is not None]
        sources = "; ".join(dict.fromkeys(c.price_source for c in priced))
        money = (f", {sum(c.money for c in priced):.3g} USD at {sources}"
                 + ("" if len(priced) == len(costs) else f" ({len(priced)} of {len(costs)} runs priced)")
                 if priced else "; no price per device-hour known for this device (--price-per-hour)")
        notes.append(f"- **Training cost:** device-hours are the training, compilation and evaluation seconds on one "
                     f"device; this comparison's {len(costs)} runs: {hours:.3g} device-hours{money}. Prices are "
                     f"estimates (runners.measure.prices)")
    return notes


