"""The bench's tables as markdown: each measure with its own number format, `never` for a break-even that never comes,
`–` where a row has no value."""
from __future__ import annotations

import pandas as pd
from tabulate import tabulate

FORMATS = {"samples/s": "{:.3g}", "real tokens/s": "{:,.0f}", "MFU %": "{:.1f}", "HFU %": "{:.1f}",
           "MFU % datasheet": "{:.1f}", "peak MiB": "{:,.0f}",
           "batch": "{:.0f}", "compile s": "{:.1f}", "break-even samples": "{:,.0f}"}


def markdown(df: pd.DataFrame) -> str:
    shown = df.astype(object)
    for col in shown:
        fmt = FORMATS.get(col, "{:.2f}" if col.startswith("×") else None)
        if fmt:
            shown[col] = [("never" if v == float("inf") else fmt.format(v)) if pd.notna(v) else "–" for v in df[col]]
    return tabulate(shown.fillna("–"), headers="keys", tablefmt="github", showindex=False, disable_numparse=True)
