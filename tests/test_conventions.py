"""House rules a reader relies on, checked over the whole source tree.

- One logger style: `logger = logging.getLogger(__name__)`, so `-v`, log
  filters and `caplog.at_level(logger="pose.config")` can name any module by
  its import path (scripts run as __main__ are fine with __name__ too).
- `--help` is instant: no command loads torch (seconds) or Qt to print its
  options; they are imported when a command runs.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import main

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {".venv", "build", "dist", "node_modules", "__pycache__"}


def _sources() -> list[Path]:
    found = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in parts[:-1]):
            continue
        found.append(path)
    return sorted(found)


def _is_get_logger(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    function = node.func
    return (isinstance(function, ast.Attribute) and function.attr == "getLogger") or \
        (isinstance(function, ast.Name) and function.id == "getLogger")


def logger_problems(source: str, where: str) -> list[str]:
    """Every getLogger call that is not `logger = logging.getLogger(__name__)`."""
    tree = ast.parse(source, filename=where)
    assigned_well = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _is_get_logger(node.value):
            targets = [target.id for target in node.targets if isinstance(target, ast.Name)]
            if targets == ["logger"]:
                assigned_well.add(id(node.value))
    problems = []
    for node in ast.walk(tree):
        if not _is_get_logger(node):
            continue
        arguments = node.args
        by_name = len(arguments) == 1 and not node.keywords and isinstance(arguments[0], ast.Name) \
            and arguments[0].id == "__name__"
        if not by_name:
            problems.append(f"{where}:{node.lineno}: getLogger({ast.unparse(arguments) if arguments else ''}) "
                            "instead of getLogger(__name__)")
        elif id(node) not in assigned_well:
            problems.append(f"{where}:{node.lineno}: a getLogger(__name__) not assigned to the name `logger`")
    return problems


def test_every_module_names_its_logger_after_itself():
    problems = []
    for path in _sources():
        problems += logger_problems(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert problems == [], "\n".join(problems)


def test_the_logger_check_catches_other_styles():
    assert logger_problems("import logging\nlogger = logging.getLogger(__name__)\n", "ok.py") == []
    assert len(logger_problems('import logging\nlogger = logging.getLogger("pose.weights")\n', "a.py")) == 1
    assert len(logger_problems("import logging\nLOG = logging.getLogger(__name__)\n", "b.py")) == 1
    assert len(logger_problems('import logging\ndef f():\n    logging.getLogger("main").error("x")\n', "c.py")) == 1
    assert len(logger_problems("from logging import getLogger\nlogger = getLogger()\n", "d.py")) == 1


# Run as the user does (`python main.py ...`), then list what got imported.
_HELP_PROBE = """
import json, runpy, sys
sys.argv = ["main.py", *json.loads(sys.argv[1]), "--help"]
try:
    runpy.run_path("main.py", run_name="__main__")
except SystemExit:
    pass
heavy = ("torch", "torchvision", "PyQt6.QtCore", "onnxruntime", "ray")
sys.stderr.write("IMPORTED " + json.dumps([name for name in heavy if name in sys.modules]) + "\\n")
"""


@pytest.mark.parametrize("command", [[], *([name] for name in main.COMMANDS)], ids=lambda c: " ".join(c) or "main")
def test_help_loads_no_torch_and_no_qt(command):
    environment = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-c", _HELP_PROBE, json.dumps(command)], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=120)
    assert "usage:" in result.stdout, result.stderr
    imported = json.loads(result.stderr.rsplit("IMPORTED ", 1)[1])
    assert imported == [], f"`main.py {' '.join(command)} --help` imported {imported}"


PACKAGES = ("core", "detector", "pose", "tracker", "pipeline", "evaluation", "cli", "app")


def local_imports_without_reason(source: str, where: str) -> list[str]:
    """Function-local imports whose line gives no reason (a comment with words after any noqa code).

    Imports belong at the top; one inside a function is there to keep something
    heavy (torch, Qt, supervision, ...) off the import path, and says so.
    """
    lines = source.splitlines()
    problems = []
    for function in ast.walk(ast.parse(source, filename=where)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                comment = lines[node.lineno - 1].partition("#")[2]
                reason = comment.split("noqa", 1)[-1].lstrip(":").strip()
                words = [word for word in reason.replace("-", " ").replace("(", " ").split() if not word.isupper()]
                if not words:
                    problems.append(f"{where}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return sorted(set(problems))


def test_function_local_imports_say_why():
    sources = [ROOT / "main.py", *(path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py")))]
    problems = []
    for path in sources:
        problems += local_imports_without_reason(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert problems == [], "function-local imports without a reason (move light ones to the top):\n" + "\n".join(problems)


def test_the_local_import_check_wants_a_reason():
    bare = "def f():\n    import torch  # noqa: PLC0415\n"
    plain = "def f():\n    import json\n"
    given = "def f():\n    import torch  # noqa: PLC0415 - seconds to import, only for the network\n"
    top = "import json\n"
    assert len(local_imports_without_reason(bare, "a.py")) == 1
    assert len(local_imports_without_reason(plain, "b.py")) == 1
    assert local_imports_without_reason(given, "c.py") == []
    assert local_imports_without_reason(top, "d.py") == []
