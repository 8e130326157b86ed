"""The docs' promises that can be checked without training: every `python -m runners.…` line in a fenced block of
README.md, docs/*.md and results/README.md is a command its own parser takes (a comparison's inputs also pass
`runners.compare.check`, which reads no file and loads nothing), every relative link points at a file (and a heading
where it names one), and the README stays within three screens."""
from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import re
import shlex
import sys
from pathlib import Path

import pytest

from methods import registry
from runners import compare
from runners.cli import dash_values

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "results" / "README.md"]
PREFIX = "python -m runners."
README_LINES = 300  # three screens
SHELL = {">", ">>", "<", "|", "||", "&&", ";", "&", "2>", "2>&1"}  # where a shell line's command ends


def fenced_commands(page: Path) -> list[tuple[int, str]]:
    """(line number, command) of each `python -m runners.` line in a ``` block of `page` (a `$ ` prompt dropped, a
    line ending in `\\` joined with the next)."""
    found, fenced, pending, start = [], False, "", 0
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            continue
        text = line.strip()
        if pending:
            pending += " " + text
        elif text.removeprefix("$ ").startswith(PREFIX):
            pending, start = text.removeprefix("$ "), number
        else:
            continue
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        found.append((start, pending))
        pending = ""
    return found


COMMANDS = [pytest.param(page, number, command, id=f"{page.relative_to(ROOT)}:{number}")
            for page in PAGES for number, command in fenced_commands(page)]


def test_the_pages_hold_commands():
    assert len(COMMANDS) > 20, "the fence parser found too few commands: has the docs' layout changed?"


def test_no_command_hides_in_an_indented_block():
    """An indented code block escapes the check below; the docs put every command in a fenced one."""
    for page in PAGES:
        fenced = False
        for number, line in enumerate(page.read_text().splitlines(), 1):
            fenced ^= line.lstrip().startswith("```")
            assert fenced or not re.match(rf"( {{4}}|\t)\s*(\$ )?{re.escape(PREFIX)}", line), (
                f"{page.relative_to(ROOT)}:{number}: a command in an indented block; put it in a ``` block")


@pytest.mark.parametrize("page, number, command", COMMANDS)
def test_a_documented_command_parses(page, number, command, tmp_path):
    where = f"{page.relative_to(ROOT)}:{number}: `{command}`"
    argv = shlex.split(command, comments=True)
    module = argv[2]
    argv = list(itertools.takewhile(lambda token: token not in SHELL, argv[3:]))  # the command, not its redirection
    with _registry_kept():
        argv = [_plugin_of(page, a, where, tmp_path) if prev == "--plugin" else a
                for prev, a in zip([None, *argv], argv)]
        if module == "runners.compare":
            _check_compare(argv, where)
        else:
            _parse(importlib.import_module(module), argv, where)


def _check_compare(argv: list[str], where: str) -> None:
    if "--list" in argv and "--model" not in argv:  # fast: it prints the registry
        with contextlib.redirect_stdout(io.StringIO()):
            assert compare.main(argv) == 0, f"{where}: exits non-zero"
        return
    if "--list" in argv:  # it reads the model's config, from the hub for a hub id: parsed here, run in test_any_model
        _parse(compare, dash_values(argv, compare.VALUE_FLAGS), where)
        return
    args = _parse(compare, dash_values(argv, compare.VALUE_FLAGS), where)
    if args is None:  # --help
        return
    try:
        compare.check(args)
    except Exception as e:  # UserError or SpecError: the one line the user would see
        pytest.fail(f"{where}: {type(e).__name__}: {e}")


def _parse(module, argv: list[str], where: str):
    """The parsed arguments, or None for `--help`; a refusal fails the test with argparse's message."""
    parser = module.build_parser()
    errors = []
    parser.error = lambda message: (errors.append(message), sys.exit(2))[1]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return parser.parse_args(argv)
    except SystemExit as e:
        if e.code == 0:
            return None
        pytest.fail(f"{where}: {module.__name__} refuses it: {'; '.join(errors) or f'exit {e.code}'}")


def _plugin_of(page: Path, plugin: str, where: str, folder: Path) -> str:
    """A `--plugin FILE.py` that exists only on the page, as its ```python example registering `@register("FILE")`:
    written where the command can import it, so that the command is checked against the example it shows."""
    if not plugin.endswith(".py") or Path(plugin).expanduser().exists():
        return plugin
    name = Path(plugin).stem
    blocks = [b for b in re.findall(r"```python\n(.*?)```", page.read_text(), re.S) if f'@register("{name}")' in b]
    assert blocks, f"{where}: --plugin {plugin} is neither a file nor an example on the page"
    path = folder / f"{name}.py"
    path.write_text(blocks[0])
    return str(path)


@contextlib.contextmanager
def _registry_kept():
    """What a command's plugin registers leaves with the test."""
    registry.METHODS.discover()  # first: the methods' own entries stay after the test
    before = dict(registry.METHODS.entries)
    modules = set(sys.modules)
    try:
        yield
    finally:
        registry.METHODS.entries.clear()
        registry.METHODS.entries.update(before)
        for name in set(sys.modules) - modules:
            if name.startswith("peft_lab_plugin_"):
                del sys.modules[name]


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code is not a link
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target} (no heading #{anchor} in {file.relative_to(ROOT)})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {', '.join(broken)}"


def test_the_readme_fits_three_screens():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_LINES, f"README.md has {lines} lines; at most {README_LINES}: move detail to docs/"
