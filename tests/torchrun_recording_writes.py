"""`main.py` under torchrun, recording every file this rank gives its final name.

    python -m torch.distributed.run --nproc_per_node 2 tests/torchrun_recording_writes.py RECORD_DIR train CONFIG ...

Every output of the trainer is written under a `.part` name and renamed with
`os.replace` (core.io), so wrapping `os.replace` sees each finished file: this
rank appends the destination of each rename to RECORD_DIR/rank<RANK>.txt.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    record = Path(sys.argv[1]) / f"rank{os.environ.get('RANK', '0')}.txt"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("", encoding="utf-8")
    original = os.replace

    def recording_replace(source, destination, *args, **kwargs):
        original(source, destination, *args, **kwargs)
        with open(record, "a", encoding="utf-8") as stream:
            stream.write(f"{destination}\n")

    os.replace = recording_replace
    import main as entry  # noqa: PLC0415 -- after the patch, like any module the command imports

    return entry.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
