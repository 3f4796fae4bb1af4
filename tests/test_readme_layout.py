"""The README's Layout table and `make bench` list hold to the tree and the Makefile (issue 21: both had drifted)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README.md lost its '{title}' section"
    return match.group(1)


def _layout_paths() -> set[str]:
    rows = re.findall(r"^\| (.+?) \|", _section("Layout"), re.M)
    return {path for row in rows for path in re.findall(r"`([^`]+)`", row)}


def _tracked_files() -> list[str]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except OSError as error:
        pytest.skip(f"git is not available: {error}")
    if listed.returncode != 0:
        pytest.skip("not a git checkout (an installed copy)")
    return listed.stdout.splitlines()


def test_every_path_in_the_layout_table_exists():
    # Paths in either column (the second names sub-folders and files too: `tests/data/README.md`).
    named = set(re.findall(r"`([\w./-]+/[\w./-]*|[\w-]+\.(?:py|md))`", _section("Layout")))
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"README Layout names paths that do not exist: {missing}"


def test_every_top_level_folder_and_subpackage_is_in_the_layout_table():
    files = _tracked_files()
    folders = {file.split("/")[0] + "/" for file in files if "/" in file}
    # Packages one level down that are layers of their own (an __init__.py and modules beside it).
    subpackages = {file.rsplit("/", 1)[0] + "/" for file in files
                   if file.count("/") == 2 and file.endswith("/__init__.py") and not file.startswith("tests/")}
    listed = _layout_paths()
    missing = sorted((folders | subpackages | {"main.py"}) - listed)
    assert not missing, f"README Layout lacks: {missing}"


def test_the_readme_make_bench_list_is_the_makefiles():
    recipe = re.search(r"^bench:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    assert recipe, "Makefile lost its bench target"
    in_makefile = re.findall(r"benchmarks/\w+\.py", recipe.group(1))
    paragraph = re.search(r"`make bench` runs them all:(.*?)Also,", _section("Benchmarks"), re.S)
    assert paragraph, "README Benchmarks lost its `make bench` paragraph"
    in_readme = re.findall(r"benchmarks/\w+\.py", paragraph.group(1))
    assert sorted(in_readme) == sorted(in_makefile)
