"""The background build of `--backend auto`: `python -m pose.backends.build SPEC.json` (started by pose.backends.auto).

Rebuilds the network from the spec's config and state dict, builds and checks
the candidates in order (`pose.backends.auto.measure_candidates`), and writes
the decision record where the spec says. Progress goes to stdout as
`progress: ...` lines, which the parent relays to its log. Ended by SIGTERM
when the parent stops first: what was built whole stays in the cache.
"""

from __future__ import annotations

import json
import signal
import sys

import numpy as np


def _stop(signum, frame):
    raise SystemExit(128 + signum)  # unwinds, so half-written artifacts are removed by their writers


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop)
    spec = json.loads(open(argv[0], encoding="utf-8").read())

    import torch  # noqa: PLC0415  (after the signal handler: importing torch takes seconds)

    import pose  # noqa: PLC0415  (as above)
    from core.io import write_json_atomic  # noqa: PLC0415  (as above)
    from pose.backends.agreement import ReferencePeople  # noqa: PLC0415  (as above)
    from pose.backends.auto import measure_candidates  # noqa: PLC0415  (as above)

    def progress(text: str) -> None:
        print(f"progress: {text}", flush=True)

    model = pose.build_model(pose.load_config(spec["config"]))
    model.load_state_dict(torch.load(spec["weights"], map_location="cpu", weights_only=True))
    model.eval()
    arrays = np.load(spec["people"])
    labeled = arrays["labeled"]
    people = ReferencePeople(np.load(spec["people_crops"]), arrays["px_per_input_px"], arrays["areas"],
                             labeled if labeled.size else None, spec["people_source"])
    calibration = spec["calibration"]
    if isinstance(calibration, str):
        calibration = np.load(calibration)
    record = measure_candidates(model, candidates=spec["candidates"], device=spec["device"],
                                max_batch=spec["max_batch"], input_size=tuple(spec["input_size"]),
                                weights_id=spec["weights_id"], cache_dir=spec["cache_dir"],
                                calibration=calibration, people=people, progress=progress,
                                on_choice=lambda choice: print(f"choice: {json.dumps(choice)}", flush=True))
    write_json_atomic(spec["decision"], record, indent=1)
    progress(f"chose {record['backend']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
