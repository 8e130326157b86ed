"""Budget parsing and accounting, and the learning-rate schedule over the share of budget spent."""
from __future__ import annotations

import pytest

from runners.core.errors import UserError
from runners.job.loop import lr_factor
from runners.settings.budget import Budget, Spent


@pytest.mark.parametrize("text, amount, unit", [
    ("1epoch", 1, "epochs"), ("2.5epochs", 2.5, "epochs"), ("500steps", 500, "steps"),
    ("20000samples", 20000, "samples"), ("2e4 samples", 20000, "samples"), ("1Step", 1, "steps"),
    ("90s", 90, "seconds"), ("5m", 300, "seconds"), ("1.5h", 5400, "seconds"), ("2min", 120, "seconds"),
    ("2Mtokens", 2_000_000, "tokens"), ("500ktokens", 500_000, "tokens"), ("1e15flops", 1e15, "flops"),
    ("3.5PFLOP", 3.5e15, "flops"), ("5e12flops", 5e12, "flops"), ("2 TFLOPs", 2e12, "flops"),
])
def test_parse(text, amount, unit):
    b = Budget.parse(text)
    assert (b.amount, b.unit) == (amount, unit)


@pytest.mark.parametrize("text", ["", "epochs", "10", "5 parsecs", "0steps", "-1epoch", "1.5steps", "3sample s",
                                  "2ksteps", "1.5tokens", "0s"])
def test_bad_budgets(text):
    with pytest.raises(UserError, match="bad budget"):
        Budget.parse(text)


def test_accounting():
    assert Budget.parse("1epoch").total_samples(1000) == 1000
    assert Budget.parse("1epoch").total_steps(1000, 32) == 32  # 31 full batches and one of 8
    assert Budget.parse("2epochs").total_steps(1000, 32) == 64
    assert Budget.parse("1.5epochs").total_steps(1000, 32) == 48  # 32 + ceil(500 / 32)
    assert Budget.parse("3000samples").total_steps(10_000, 32) == 94
    assert Budget.parse("50steps").total_steps(10_000, 32) == 50
    assert Budget.parse("50steps").fraction(Spent(steps=25, samples=800), 10_000) == 0.5
    assert Budget.parse("0.5epochs").fraction(Spent(steps=1, samples=250), 1000) == 0.5
    assert Budget.parse("1m").fraction(Spent(seconds=15.0), 1000) == 0.25
    assert Budget.parse("1Mtokens").fraction(Spent(tokens=100_000), 1000) == pytest.approx(0.1)
    assert Budget.parse("2e9flops").fraction(Spent(flops=1e9), 1000) == 0.5
    assert Budget.parse("90s").total_steps(1000, 32) is None and Budget.parse("90s").needs_clock
    assert not Budget.parse("1epoch").needs_clock


def test_schedule_warms_up_then_decays_to_zero():
    assert lr_factor(0.0, 0.1) < 1e-6
    assert lr_factor(0.05, 0.1) == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor(0.55, 0.1) == pytest.approx(0.5)
    assert lr_factor(1.0, 0.1) == 0.0
    assert lr_factor(0.5, 0.0) == pytest.approx(0.5)
