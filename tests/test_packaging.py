"""`pip install .` (not only `-e`): the wheel holds the code and the configs, and `hrtrack` runs from anywhere.

The wheel is built from a copy of the checkout (so the build leaves nothing in the tree)
and installed into a fresh virtual environment that sees none of the checkout: the
console script is run from a folder outside the repository with no PYTHONPATH. The
environment borrows the third-party libraries (torch, numpy, ...) of the interpreter
running the tests through a `.pth` line, added only after the install so that pip
sees an empty environment; plain path lines in a `.pth` file do not run the `.pth`
files of that folder, so an editable hrtrack installed there stays inert.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

import main
from tests.sample_data import DATA, TINY_CONFIG, TINY_WEIGHTS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# What a build must not see or leave behind (the tests and their data are not shipped).
NOT_SOURCES = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "tests",
               "out", "demo_out", "try_out")


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert completed.returncode == 0, f"{command} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
    return completed


def _packages() -> list[str]:
    """The project's import packages, as the layer contract names them."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]


def _source_files() -> set[str]:
    """Every module of every package, main.py and every config file, as wheel paths (forward slashes)."""
    files = {"main.py"}
    for package in _packages():
        files.update(path.relative_to(ROOT).as_posix() for path in (ROOT / package).rglob("*.py")
                     if "__pycache__" not in path.parts)
    files.update(path.relative_to(ROOT).as_posix() for path in (ROOT / "configs").rglob("*.yaml"))
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source") / "hrtrack"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: the build uses this environment's setuptools (a test dependency) and needs no index.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(out), str(source)])
    (built,) = out.glob("hrtrack-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its bin/ folder."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    venv_site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    borrowed = [*site.getsitepackages(), sysconfig.get_path("purelib")]
    (venv_site / "borrowed_libraries.pth").write_text("\n".join(dict.fromkeys(borrowed)) + "\n")
    return venv / "bin"


@pytest.fixture
def outside(tmp_path) -> dict:
    """Keyword arguments for a run from a folder outside the checkout, with nothing of it on the path."""
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    environment["HRTRACK_CACHE"] = str(tmp_path / "cache")
    return {"cwd": tmp_path, "env": environment}


def test_the_wheel_holds_every_package_main_and_the_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = _source_files() - names
    assert not missing, f"not in {wheel.name}: {sorted(missing)}"
    assert "configs/coco/hrnet/w32_256x192_adam_lr1e-3.yaml" in names
    assert {"pose/backends/reference/people.json", "pose/backends/reference/vtest_frame250.jpg"} <= names
    assert not [name for name in names if name.startswith("tests/")]
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "hrtrack = main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_code_and_configs_come_from_the_wheel_not_the_checkout(installed, outside):
    probe = "import main, pose.config as c; print(main.__file__); print(c.CONFIGS_DIR)"
    lines = _run([str(installed / "python"), "-c", probe], **outside).stdout.split()
    environment = installed.parent.resolve()
    for line in lines:
        assert Path(line).resolve().is_relative_to(environment), lines
    assert "coco/w32_256x192" in _run([str(installed / "python"), "-c",
                                       "from pose.config import list_config_names; print(list_config_names())"],
                                      **outside).stdout


def test_hrtrack_help_names_itself_and_every_command(installed, outside):
    help_text = _run([str(installed / "hrtrack"), "--help"], **outside).stdout
    assert help_text.startswith("usage: hrtrack")
    for command in main.COMMANDS:
        assert command in help_text
    from_checkout = _run([sys.executable, "main.py", "--help"], cwd=ROOT).stdout
    assert help_text == from_checkout.replace("usage: main.py", "usage: hrtrack")


def test_hrtrack_weights_list_reads_the_bundled_configs(installed, outside):
    table = _run([str(installed / "hrtrack"), "weights", "list"], **outside).stdout
    # The input size column comes from each entry's experiment YAML in the installed configs/.
    row = next(line for line in table.splitlines() if line.startswith("hrnet_w32_coco_256x192 "))
    assert "256x192" in row.split()
    assert str(outside["cwd"] / "cache") in row


def test_hrtrack_pose_runs_the_network_like_main_py(installed, outside):
    image = DATA / "posetrack18_mini" / "images" / "val" / "012834_mpii_test" / "000000.jpg"
    drawn = outside["cwd"] / "drawn.jpg"
    completed = _run([str(installed / "hrtrack"), "pose", str(image), "--boxes", "100,100,300,400",
                      "--out", str(drawn), "--pose-config", str(TINY_CONFIG), "--pose-weights", str(TINY_WEIGHTS),
                      "--device", "cpu", "--no-flip"], **outside)
    people = json.loads(completed.stdout)["people"]
    assert len(people) == 1 and len(people[0]["keypoints"]) == 17
    assert drawn.is_file() and drawn.stat().st_size > 0
