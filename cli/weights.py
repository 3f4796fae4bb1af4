"""`main.py weights`: list, download and locate the pretrained HRNet weights.

    python main.py weights list
    python main.py weights download hrnet_w32_coco_256x192 [--mirror URL] [--cache-dir DIR] [--force]
    python main.py weights path hrnet_w32_coco_256x192

Exit status: 0 done, 1 the weights are not cached or could not be downloaded
(offline, network, hash mismatch), 2 bad arguments (unknown name, malformed --mirror).
"""

from __future__ import annotations

import argparse
import logging

from pose.config import load_config
from pose import weights as named_weights  # REGISTRY read at call time (tests replace it)
from pose.weights import WeightsHashError, cached_path, check_cached, get_entry, resolve_weights

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--cache-dir", default=None, metavar="DIR",
                       help="weights cache folder (default: $HRTRACK_CACHE or ~/.cache/hrtrack)")
        return p

    common(sub.add_parser("list", help="table of the named weights: input size, COCO AP, cached or not "
                          "(a cached file that changed since its last check is hashed again)"))
    download = common(sub.add_parser("download", help="download a named checkpoint into the cache (hash-checked)"))
    download.add_argument("name", help="registry name, e.g. hrnet_w32_coco_256x192 (see `weights list`)")
    download.add_argument("--mirror", default=None, metavar="URL",
                          help="base URL replacing the download host (default: $HRTRACK_MIRROR)")
    download.add_argument("--offline", action="store_true", default=None,
                          help="never download (also $HRTRACK_OFFLINE=1)")
    download.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    download.add_argument("--force", action="store_true",
                          help="download even when cached (replaces a damaged file once the new one is checked)")
    path = common(sub.add_parser("path", help="print the local path of a cached checkpoint"))
    path.add_argument("name", help="registry name")


def _input_size(config_name: str) -> str:
    width, height = load_config(config_name).model.image_size
    return f"{height}x{width}"


def _list(args: argparse.Namespace) -> int:
    rows = [("name", "input (HxW)", "COCO AP", "cached", "path")]
    for entry in named_weights.REGISTRY.values():
        target = cached_path(entry, args.cache_dir)
        rows.append((
            entry.name,
            _input_size(entry.config),
            f"{entry.coco_ap:.3f}" if entry.coco_ap is not None else "-",
            _cached_state(entry, target),
            str(target),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _cached_state(entry, target) -> str:
    if not target.is_file():
        return "no" if entry.url else "no (manual)"
    try:
        check_cached(entry, target)
    except WeightsHashError:
        return f"DAMAGED (weights download {entry.name} --force)"
    return "yes"


def _download(args: argparse.Namespace) -> int:
    get_entry(args.name)  # unknown names fail with the list of known ones
    path = resolve_weights(args.name, offline=args.offline, cache_dir=args.cache_dir,
                           mirror=args.mirror, progress=args.progress, force=args.force)
    print(path)
    return 0


def _path(args: argparse.Namespace) -> int:
    entry = get_entry(args.name)
    target = cached_path(entry, args.cache_dir)
    if not target.is_file():
        how = f"run `python main.py weights download {entry.name}`" if entry.url else (
            f"download {entry.file_name} by hand from {entry.manual_source}")
        logger.error("%s is not cached; %s (it goes to %s)", entry.name, how, target)
        return 1
    print(target)
    return 0


def run(args: argparse.Namespace) -> int:
    action = {"list": _list, "download": _download, "path": _path}[args.weights_command]
    try:
        return action(args)
    except KeyError as error:  # an unknown weights name: a bad argument
        logger.error("%s", error.args[0])
        return 2
    except (FileNotFoundError, WeightsHashError) as error:  # not cached, offline, download failed or corrupt
        logger.error("%s", error)
        return 1
    except ValueError as error:  # a malformed --mirror
        logger.error("%s", error)
        return 2
