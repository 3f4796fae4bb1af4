"""The layer contract (pyproject.toml, [tool.importlinter]) holds, and would catch an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "detector", "pose", "tracker", "pipeline", "evaluation", "cli", "app")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"import-linter is a test dependency but {LINT_IMPORTS} is missing: pip install -e '.[test]'")
    environment = dict(os.environ, PYTHONPATH=str(tree))
    return subprocess.run([str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env=environment, capture_output=True, text=True, timeout=300)


def _copy_tree(destination: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", destination / "pyproject.toml")
    return destination


def test_the_tree_keeps_its_layers(tmp_path):
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("core/_upward.py", "from pipeline import Pipeline\n"),          # the ground reaching up
        ("tracker/_sideways.py", "import pose.transforms\n"),            # one stage importing another
        ("pipeline/_upward.py", "def f():\n    import evaluation.coco\n"),  # hidden inside a function
    ],
)
def test_a_wrong_import_breaks_the_contract(tmp_path, module, source):
    tree = _copy_tree(tmp_path)
    (tree / module).write_text(source)
    result = _lint(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout or "broken" in result.stdout
