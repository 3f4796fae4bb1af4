"""The README's 'try it offline' command is real: it runs as written, with no network and no downloaded weights.

It is the command that works right after `make` (the environment's Python,
not whichever `python` is on the PATH), and `make try` runs the same.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import main

ROOT = Path(__file__).parent.parent


def readme_try_offline_command() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- try-offline -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README.md lost its try-offline command block"
    argv = shlex.split(block.group(1).replace("\\\n", " "))
    assert argv[:2] == [".venv/bin/python", "main.py"]  # what `make` installed, whatever the PATH's python is
    return argv[2:]


def _make(*arguments: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # Under `make test` the outer make's variables would make this one a sub-make, which prints
    # "make[1]: Entering directory" lines around its output.
    env = {key: value for key, value in (os.environ if env is None else env).items()
           if key not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(["make", "--no-print-directory", *arguments], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_make_try_runs_the_readme_command():
    listed = _make("-n", "try").stdout.strip().splitlines()[-1]
    assert shlex.split(listed) == [".venv/bin/python", "main.py", *readme_try_offline_command()]


@pytest.mark.slow  # `make demo` up to the weights check: a Python with torch starting, about 4 CPU-seconds
def test_make_demo_offline_lists_every_missing_weights_file_and_the_offline_command(tmp_path):
    if (ROOT / "demo_out").exists():
        pytest.skip("demo_out/ exists here already (a real demo run): cannot tell a leftover")
    # A stand-in environment: this Python behind the path `make` expects, marked installed.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".installed").touch()
    env = dict(os.environ, HRTRACK_OFFLINE="1", HRTRACK_CACHE=str(tmp_path / "cache"),
               TORCH_HOME=str(tmp_path / "torch"), PYTHONPATH=str(ROOT))
    completed = _make("demo", f"VENV={venv}", env=env, timeout=300)
    printed = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert "2 weights file(s) this run needs are missing" in printed  # the pose and the detector weights, at once
    assert "td-hm_hrnet-w32_8xb64-210e_coco-256x192" in printed and "ssdlite320_mobilenet_v3_large" in printed
    assert "make try" in printed and "--pose-weights tests/data/hrnet_reference/dev_tiny_state_dict.pt" in printed
    assert not (ROOT / "demo_out").exists()


def test_the_readme_try_offline_command_runs(tmp_path, monkeypatch, capsys):
    argv = readme_try_offline_command()
    argv = [str(ROOT / arg) if (ROOT / arg).exists() and not arg.startswith("-") else arg for arg in argv]
    out = argv.index("--out") + 1
    argv[out] = str(tmp_path / argv[out])
    monkeypatch.chdir(tmp_path)
    assert main.main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"done\s+000001_mpiinew_test: 5 frames in [\d.]+ s \([\d.]+ fps\)", printed)
    written = Path(argv[out])
    document = json.loads((written / "000001_mpiinew_test.json").read_text())
    assert document["complete"] is True and [len(f["people"]) for f in document["frames"]] == [3] * 5
    assert {p.name for p in written.iterdir()} == {"000001_mpiinew_test.json", "000001_mpiinew_test.csv",
                                                   "000001_mpiinew_test.mp4"}
