"""The lock agrees with pyproject.toml: every dependency pinned once, inside its range, on torch's CPU build."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "cpu.lock"


def pins() -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)$", LOCK.read_text(), flags=re.M)
    assert len({canonicalize_name(n) for n, _ in found}) == len(found), "a package pinned twice"
    return {canonicalize_name(n): v for n, v in found}


def test_every_dependency_is_pinned_inside_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = pins()
    extras = [line for group in project.get("optional-dependencies", {}).values() for line in group]
    for line in project["dependencies"] + extras:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in locked, f"{name} is not in {LOCK.name}: run .ci/lock"
        assert req.specifier.contains(locked[name], prereleases=True), f"{name}=={locked[name]} is outside {req}"


def test_the_lock_is_for_the_cpu_build_of_torch():
    locked = pins()
    assert "+" not in locked["torch"], "pin torch by its public version, which its CPU build (X+cpu) satisfies"
    assert not [n for n in locked if n.startswith("nvidia-")], "CUDA packages in the CPU lock"


def test_ci_and_the_readme_install_through_the_lock():
    assert '-c "$lock" -e ".[dev,baselines]"' in (ROOT / ".ci" / "run").read_text()
    assert 'pip install -c requirements/cpu.lock -e ".[dev,baselines]"' in (ROOT / "README.md").read_text()
