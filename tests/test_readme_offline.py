"""The README's 'try it offline' command is real: it runs as written, with no network and no downloaded weights."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import main

ROOT = Path(__file__).parent.parent


def readme_try_offline_command() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- try-offline -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README.md lost its try-offline command block"
    argv = shlex.split(block.group(1).replace("\\\n", " "))
    assert argv[:2] == ["python", "main.py"]
    return argv[2:]


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
