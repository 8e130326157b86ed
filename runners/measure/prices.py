"""What a device-hour costs: the user's `--price-per-hour`, else a small table of cloud list prices. Estimates only.

The table holds AWS EC2 on-demand list prices, Linux, us-east-1: the price of the smallest instance with that GPU,
divided by its GPU count, only where a dated source was checked (today one GPU; the rest take `--price-per-hour`).
Real bills differ (region, reserved or spot capacity, other clouds, the instance's CPUs and disk), and list
prices change: give `--price-per-hour` for your own. A CPU has no entry (its price depends on the whole machine), so
a CPU run has device-hours and no money unless a price is given.
"""
from __future__ import annotations

PRICES_AS_OF = "June 2026"
PRICES_SOURCE = f"AWS EC2 on-demand list price, us-east-1, per GPU ({PRICES_AS_OF}; an estimate)"
# A substring of torch's CUDA device name -> (USD per GPU-hour, the instance it was read from, where it was read).
# Only prices this lab could check against a dated source are here; any other GPU takes --price-per-hour.
GPU_PRICES: dict[str, tuple[float, str]] = {
    "A10G": (1.006, "g5.xlarge, 1 x A10G (https://aws.amazon.com/ec2/pricing/on-demand/, as quoted for June 2026)"),
}


def price_per_hour(device: dict, given: float | None = None) -> tuple[float | None, str | None]:
    """USD per device-hour for a run's device (`runners.measure.environment.device_info`) and where that price comes
    from: `given` (the user's) if any, else the list price of a CUDA device the table names, else (None, None)."""
    if given is not None:
        return float(given), "--price-per-hour"
    if device.get("type") != "cuda":
        return None, None
    name = str(device.get("name", ""))
    for key, (price, instance) in GPU_PRICES.items():
        if key in name:
            return price, f"{PRICES_SOURCE}: {instance}"
    return None, None
