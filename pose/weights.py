"""Named pretrained HRNet weights: registry, cache, download with hash check.

`resolve_weights(name_or_path)` turns a local path or a registry name into a
local file:

- a path is returned as is (FileNotFoundError naming it if it is missing);
- a registry name returns ``<cache>/<file_name>`` if present, else downloads it
  into ``<cache>/<file_name>.part``, checks the SHA-256 prefix from the
  OpenMMLab file name, and renames it into place (a partial download never
  looks complete);
- a cached file is hashed again on its first use after the download and
  whenever its size or modification time changed (``<file_name>.checked``
  records the last check), so a file cut short or overwritten in the cache is
  reported with what to do (`weights download NAME --force`) instead of
  failing deep inside the checkpoint loader; an unchanged file is not re-read.

Environment: ``HRTRACK_CACHE`` (cache folder, default ``~/.cache/hrtrack``),
``HRTRACK_OFFLINE=1`` (never download), ``HRTRACK_MIRROR`` (a base URL that
replaces the scheme and host of every download URL; the path is kept).

The official leoxiaobin checkpoints are only on Google Drive / OneDrive
folders, which cannot be downloaded by a script; their entries have no URL and
resolve only once the file has been placed in the cache (the error says where).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from tqdm import tqdm

from core.environment import OFFLINE_ENV, is_offline
from core.io import AtomicTextFile

logger = logging.getLogger(__name__)

CACHE_ENV = "HRTRACK_CACHE"
MIRROR_ENV = "HRTRACK_MIRROR"
DEFAULT_CACHE_DIR = Path("~/.cache/hrtrack")
DOWNLOAD_TIMEOUT_S = 30.0
_CHUNK_BYTES = 1 << 20

OFFICIAL_MODEL_ZOO = (
    "https://drive.google.com/drive/folders/1hOTihvbyIxsm5ygDpbUuJ7O_tzv4oXjC "
    "(or OneDrive https://1drv.ms/f/s!AhIXJn_J-blW231MH2krnmLq5kkQ)"
)

FORMAT_OFFICIAL = "official"
FORMAT_MMPOSE0 = "mmpose0x"
FORMAT_MMPOSE1 = "mmpose1x"


@dataclass(frozen=True)
class WeightsEntry:
    """One named checkpoint.

    config: registry name of the matching experiment (`pose.load_config`).
    url: direct download URL, or None where no script can download the file.
    sha256_prefix: leading hex digits of the file's SHA-256 (the OpenMMLab
        file-name tag), or None where unknown.
    file_name: name of the file in the cache folder.
    format: key layout (FORMAT_OFFICIAL / FORMAT_MMPOSE0 / FORMAT_MMPOSE1);
        `pose.load_weights` reads all of them.
    coco_ap: COCO val2017 AP reported by the publisher (person detector with
        human AP 56.4, flip test), None for MPII models.
    manual_source: where to get the file by hand when `url` is None.
    """

    name: str
    config: str
    url: str | None
    sha256_prefix: str | None
    file_name: str
    format: str
    description: str
    coco_ap: float | None = None
    manual_source: str | None = None


_MMPOSE0 = "https://download.openmmlab.com/mmpose/top_down/hrnet/"
_MMPOSE1 = "https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/"


def _mmpose(name: str, config: str, base: str, file_name: str, fmt: str, ap: float, description: str) -> WeightsEntry:
    # OpenMMLab names end in "-<sha256 prefix>_<date>.pth".
    tag = file_name.rsplit("-", 1)[1].split("_", 1)[0]
    return WeightsEntry(name, config, base + file_name, tag, file_name, fmt, description, ap)


def _official(name: str, config: str, file_name: str, ap: float | None, description: str) -> WeightsEntry:
    return WeightsEntry(name, config, None, None, file_name, FORMAT_OFFICIAL, description, ap, OFFICIAL_MODEL_ZOO)


_ENTRIES = (
    _mmpose("hrnet_w32_coco_256x192", "coco/w32_256x192", _MMPOSE1,
            "td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth", FORMAT_MMPOSE1, 0.749,
            "HRNet-W32 COCO 256x192, MMPose 1.x training"),
    _mmpose("hrnet_w32_coco_384x288", "coco/w32_384x288", _MMPOSE1,
            "td-hm_hrnet-w32_8xb64-210e_coco-384x288-ca5956af_20220909.pth", FORMAT_MMPOSE1, 0.761,
            "HRNet-W32 COCO 384x288, MMPose 1.x training"),
    _mmpose("hrnet_w48_coco_256x192", "coco/w48_256x192", _MMPOSE1,
            "td-hm_hrnet-w48_8xb32-210e_coco-256x192-0e67c616_20220913.pth", FORMAT_MMPOSE1, 0.756,
            "HRNet-W48 COCO 256x192, MMPose 1.x training"),
    _mmpose("hrnet_w48_coco_384x288", "coco/w48_384x288", _MMPOSE1,
            "td-hm_hrnet-w48_8xb32-210e_coco-384x288-c161b7de_20220915.pth", FORMAT_MMPOSE1, 0.767,
            "HRNet-W48 COCO 384x288, MMPose 1.x training"),
    _mmpose("hrnet_w32_coco_256x192_mmpose0x", "coco/w32_256x192", _MMPOSE0,
            "hrnet_w32_coco_256x192-c78dce93_20200708.pth", FORMAT_MMPOSE0, 0.746,
            "HRNet-W32 COCO 256x192, MMPose 0.x training"),
    _mmpose("hrnet_w32_coco_384x288_mmpose0x", "coco/w32_384x288", _MMPOSE0,
            "hrnet_w32_coco_384x288-d9f0d786_20200708.pth", FORMAT_MMPOSE0, 0.760,
            "HRNet-W32 COCO 384x288, MMPose 0.x training"),
    _mmpose("hrnet_w48_coco_256x192_mmpose0x", "coco/w48_256x192", _MMPOSE0,
            "hrnet_w48_coco_256x192-b9e0b3ab_20200708.pth", FORMAT_MMPOSE0, 0.756,
            "HRNet-W48 COCO 256x192, MMPose 0.x training"),
    _mmpose("hrnet_w48_coco_384x288_mmpose0x", "coco/w48_384x288", _MMPOSE0,
            "hrnet_w48_coco_384x288-314c8528_20200708.pth", FORMAT_MMPOSE0, 0.767,
            "HRNet-W48 COCO 384x288, MMPose 0.x training"),
    _official("hrnet_w32_coco_256x192_official", "coco/w32_256x192", "pose_hrnet_w32_256x192.pth", 0.744,
              "HRNet-W32 COCO 256x192, official release (manual download)"),
    _official("hrnet_w32_coco_384x288_official", "coco/w32_384x288", "pose_hrnet_w32_384x288.pth", 0.758,
              "HRNet-W32 COCO 384x288, official release (manual download)"),
    _official("hrnet_w48_coco_256x192_official", "coco/w48_256x192", "pose_hrnet_w48_256x192.pth", 0.751,
              "HRNet-W48 COCO 256x192, official release (manual download)"),
    _official("hrnet_w48_coco_384x288_official", "coco/w48_384x288", "pose_hrnet_w48_384x288.pth", 0.763,
              "HRNet-W48 COCO 384x288, official release (manual download)"),
    _official("hrnet_w32_mpii_256x256_official", "mpii/w32_256x256", "pose_hrnet_w32_256x256.pth", None,
              "HRNet-W32 MPII 256x256, official release (manual download; PCKh@0.5 90.3)"),
    _official("hrnet_w48_mpii_256x256_official", "mpii/w48_256x256", "pose_hrnet_w48_256x256.pth", None,
              "HRNet-W48 MPII 256x256, official release (manual download)"),
)

REGISTRY: Mapping[str, WeightsEntry] = MappingProxyType({entry.name: entry for entry in _ENTRIES})
DEFAULT_WEIGHTS = "hrnet_w32_coco_256x192"


class WeightsUnavailableError(FileNotFoundError):
    """A named checkpoint is not cached and cannot be downloaded now (offline,
    network failure, or no direct URL). The message says what to get from where
    and the exact path to put it."""


class WeightsHashError(ValueError):
    """A downloaded or cached file does not match its registered SHA-256 prefix."""


def get_cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The weights cache folder: `override`, else $HRTRACK_CACHE, else ~/.cache/hrtrack."""
    chosen = override if override is not None else os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR
    return Path(chosen).expanduser()


def apply_mirror(url: str, mirror: str | None) -> str:
    """Replace the scheme and host of `url` by `mirror` (which may carry a path prefix)."""
    if not mirror:
        return url
    parts = urllib.parse.urlsplit(url)
    base = mirror.rstrip("/")
    if "://" not in base:
        raise ValueError(f"mirror {mirror!r} must be a base URL such as https://mirror.example.org")
    return base + parts.path + (f"?{parts.query}" if parts.query else "")


def get_entry(name: str, registry: Mapping[str, WeightsEntry] | None = None) -> WeightsEntry:
    registry = REGISTRY if registry is None else registry
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown weights name {name!r}; known names: {', '.join(registry)}") from None


def cached_path(entry: WeightsEntry, cache: str | os.PathLike | None = None) -> Path:
    """Where `entry` lives in the cache (it may not exist yet)."""
    return get_cache_dir(cache) / entry.file_name


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith((".pth", ".pt", ".ckpt", ".bin"))


def _unavailable_message(entry: WeightsEntry, url: str | None, target: Path, reason: str) -> str:
    if url is None:
        where = f"download {entry.file_name} by hand from the official model zoo {entry.manual_source}"
    else:
        where = f"download {url}"
    return (
        f"weights {entry.name!r} are not available: {reason}. To use them, {where} and put the file at "
        f"{target} (or pass any local checkpoint path instead of a name)."
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _check_record(path: Path) -> Path:
    return path.with_name(path.name + ".checked")


def _stat_key(path: Path, sha256_prefix: str) -> str:
    """What a check of `path` is valid for: its size, modification time and the prefix checked."""
    status = path.stat()
    return f"{status.st_size} {status.st_mtime_ns} {sha256_prefix}"


def _record_check(path: Path, sha256_prefix: str) -> None:
    try:
        _check_record(path).write_text(_stat_key(path, sha256_prefix) + "\n", encoding="utf-8")
    except OSError as error:  # a read-only cache: the file is hashed again next time, nothing worse
        logger.debug("cannot record the hash check of %s: %s", path, error)


def check_cached(entry: WeightsEntry, path: Path) -> None:
    """WeightsHashError, saying what to do, when the cached `path` of `entry` is not the published file.

    Hashes the file only when it changed (size or modification time) since its
    last good check; entries without a known hash are not checked.
    """
    prefix = entry.sha256_prefix
    if not prefix:
        return
    try:
        if _check_record(path).read_text(encoding="utf-8").strip() == _stat_key(path, prefix):
            return
    except OSError:
        pass
    actual = _file_sha256(path)
    if not actual.startswith(prefix.lower()):
        raise WeightsHashError(
            f"the cached weights {path} are damaged (cut short or changed: SHA-256 starts with {actual[:8]}, "
            f"expected {prefix}); download them again with `main.py weights download {entry.name} --force` "
            f"(or delete the file)"
        )
    _record_check(path, prefix)


def _download(url: str, target: Path, sha256_prefix: str | None, progress: bool) -> None:
    """Stream `url` into `target`.part through the atomic writer, check the hash, then rename into place."""
    sink = AtomicTextFile(target, binary=True)
    digest = hashlib.sha256()
    received = 0
    completed = False
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=target.name, disable=not progress) as bar:
                while chunk := response.read(_CHUNK_BYTES):
                    sink.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise urllib.error.ContentTooShortError(f"received {received} of {total} bytes", None)
        actual = digest.hexdigest()
        if sha256_prefix and not actual.startswith(sha256_prefix.lower()):
            raise WeightsHashError(
                f"download from {url} is corrupt: expected SHA-256 starting with {sha256_prefix}, "
                f"got {actual}; the partial file was deleted, try again (or use --mirror)"
            )
        sink.commit()
        completed = True
        if sha256_prefix:
            _record_check(target, sha256_prefix)
    finally:
        if not completed:
            sink.abandon(keep=False)


def resolve_weights(
    name_or_path: str | os.PathLike,
    offline: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    mirror: str | None = None,
    progress: bool = True,
    registry: Mapping[str, WeightsEntry] | None = None,
    force: bool = False,
) -> Path:
    """Local file for a checkpoint path or a registry name (see module docstring).

    offline: None reads $HRTRACK_OFFLINE; True forbids downloads.
    mirror: None reads $HRTRACK_MIRROR.
    registry: defaults to `REGISTRY` (tests pass their own).
    force: download a named file even when it is cached (the cached file is
        replaced only once the new one is whole and checked).

    Raises FileNotFoundError for a missing path or unknown name,
    WeightsUnavailableError (a FileNotFoundError) when a named file is not cached
    and cannot be downloaded, WeightsHashError when a download or the cached file is corrupt.
    """
    registry = REGISTRY if registry is None else registry
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if text not in registry:
        if isinstance(name_or_path, os.PathLike) or _looks_like_path(text):
            raise FileNotFoundError(f"weights file {text!r} does not exist")
        raise FileNotFoundError(
            f"{text!r} is neither an existing weights file nor a known weights name; "
            f"known names: {', '.join(registry)}"
        )
    entry = registry[text]
    target = get_cache_dir(cache_dir) / entry.file_name
    if target.is_file() and not force:
        check_cached(entry, target)
        return target
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    url = apply_mirror(entry.url, mirror) if entry.url else None
    if url is None:
        raise WeightsUnavailableError(_unavailable_message(entry, None, target, "they cannot be downloaded automatically"))
    if is_offline(offline):
        raise WeightsUnavailableError(
            _unavailable_message(entry, url, target, f"offline mode ({OFFLINE_ENV}=1 or --offline) forbids downloads")
        )
    logger.info("downloading %s from %s to %s", entry.name, url, target)
    try:
        _download(url, target, entry.sha256_prefix, progress)
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", None) or error
        raise WeightsUnavailableError(_unavailable_message(entry, url, target, f"the download failed ({reason})")) from error
    return target
