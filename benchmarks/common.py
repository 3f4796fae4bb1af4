"""What several benchmarks share: the machine's convolution ceiling and a random HRNet with a trained network's scale.

Imported by the benchmark scripts, which put this folder on `sys.path`.
"""

from __future__ import annotations

import time

REFERENCE_GFLOPS = 510.0  # the conv ceiling of the machine the issues' fps targets were set on


def conv_ceiling_gflops(repeats: int = 5) -> float:
    """GFLOP/s of a 3x3, 64->64 channel convolution on a (8, 64, 64, 48) channels_last batch (HRNet's staple)."""
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).eval().to(memory_format=torch.channels_last)
    batch = torch.randn(8, 64, 64, 48).contiguous(memory_format=torch.channels_last)
    flops = 2 * 8 * 64 * 48 * 64 * 64 * 9
    times = []
    with torch.inference_mode():
        conv(batch)
        for _ in range(repeats):
            started = time.perf_counter()
            conv(batch)
            times.append(time.perf_counter() - started)
    return flops / min(times) / 1e9


def set_batch_norm_statistics(model, batch) -> None:
    """Running mean/var of every BatchNorm := the statistics of one forward pass of `batch` (N, 3, H, W) tensor."""
    import torch  # noqa: PLC0415

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: after one batch, exactly its statistics
        norm.train()
    with torch.no_grad():
        model(batch)
    model.eval()


def realistic_model(config):
    """(experiment, seeded random HRNet of `config` with BatchNorm statistics from the reference crops, the crops)."""
    import torch  # noqa: PLC0415

    import pose  # noqa: PLC0415
    from pose.backends.agreement import reference_crops  # noqa: PLC0415

    experiment = pose.load_config(config)
    torch.manual_seed(0)
    model = pose.build_model(experiment).eval()
    crops = reference_crops(tuple(experiment.model.image_size))
    set_batch_norm_statistics(model, torch.from_numpy(crops))
    return experiment, model, crops
