"""Weights registry, cache and downloads, against a local HTTP server (never the internet)."""

from __future__ import annotations

import hashlib
import http.server
import logging
import re
import threading
from dataclasses import replace
from pathlib import Path

import pytest

import main
import pose.weights as weights
from pose.config import list_config_names
from pose.weights import (
    REGISTRY,
    WeightsEntry,
    WeightsHashError,
    WeightsUnavailableError,
    apply_mirror,
    resolve_weights,
)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, several read chunks' worth of progress
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
FILE_PATH = "/mmpose/v1/fake/hrnet_fake-abcdef12_20220909.pth"


class _Server:
    """A local HTTP server in a thread; records every request path."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.truncate_to: int | None = None  # send a full Content-Length but only this many bytes
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                server.requests.append(self.path)
                if not self.path.endswith(".pth"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                body = PAYLOAD if server.truncate_to is None else PAYLOAD[: server.truncate_to]
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    with _Server() as running:
        yield running


def _entry(url: str, sha256_prefix: str | None = PAYLOAD_SHA[:8]) -> WeightsEntry:
    return WeightsEntry(
        name="fake_model", config="coco/w32_256x192", url=url, sha256_prefix=sha256_prefix,
        file_name="hrnet_fake.pth", format=weights.FORMAT_MMPOSE1, description="test file", coco_ap=0.5,
    )


def _registry(entry: WeightsEntry) -> dict[str, WeightsEntry]:
    return {entry.name: entry}


# ------------------------------------------------------------------ registry


def test_registry_has_the_coco_models_with_consistent_tags():
    for name in ("hrnet_w32_coco_256x192", "hrnet_w32_coco_384x288", "hrnet_w48_coco_256x192", "hrnet_w48_coco_384x288"):
        entry = REGISTRY[name]
        assert entry.format == weights.FORMAT_MMPOSE1 and "/mmpose/v1/" in entry.url
        assert REGISTRY[name + "_mmpose0x"].format == weights.FORMAT_MMPOSE0
        assert REGISTRY[name + "_official"].url is None
    configs = set(list_config_names())
    for entry in REGISTRY.values():
        assert entry.config in configs
        size = re.search(r"(\d+x\d+)", entry.config).group(1)
        assert size in entry.name and entry.config.split("/")[0] in entry.name
        if entry.url:
            assert entry.url.startswith("https://download.openmmlab.com/") and entry.url.endswith("/" + entry.file_name)
            assert re.fullmatch(r"[0-9a-f]{8}", entry.sha256_prefix)
            assert f"-{entry.sha256_prefix}_" in entry.file_name
        else:
            assert entry.file_name.startswith("pose_hrnet_") and "drive.google.com" in entry.manual_source
    assert weights.DEFAULT_WEIGHTS in REGISTRY


def test_mirror_keeps_the_path():
    url = "https://download.openmmlab.com/mmpose/v1/a/b.pth"
    assert apply_mirror(url, "http://127.0.0.1:9/") == "http://127.0.0.1:9/mmpose/v1/a/b.pth"
    assert apply_mirror(url, "https://mirror.example.org/openmmlab") == "https://mirror.example.org/openmmlab/mmpose/v1/a/b.pth"
    assert apply_mirror(url, None) == url
    with pytest.raises(ValueError, match="base URL"):
        apply_mirror(url, "mirror.example.org")


# ------------------------------------------------------------------ paths and names


def test_local_path_is_returned_as_is(tmp_path):
    path = tmp_path / "mine.pth"
    path.write_bytes(b"x")
    assert resolve_weights(path) == path
    assert resolve_weights(str(path)) == path


def test_missing_path_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        resolve_weights(tmp_path / "absent.pth")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(FileNotFoundError, match="hrnet_w32_coco_256x192"):
        resolve_weights("hrnet_w99")


def test_cached_file_is_used_offline(tmp_path):
    registry = _registry(_entry("http://unreachable.invalid" + FILE_PATH))
    (tmp_path / "hrnet_fake.pth").write_bytes(PAYLOAD)
    assert resolve_weights("fake_model", offline=True, cache_dir=tmp_path, registry=registry) == \
        tmp_path / "hrnet_fake.pth"


def test_a_cached_file_cut_short_is_reported_with_what_to_do(tmp_path, server, monkeypatch, caplog, capsys):
    registry = _registry(_entry(server.base + FILE_PATH))
    path = resolve_weights("fake_model", offline=False, cache_dir=tmp_path, registry=registry, progress=False)
    hashed = []
    monkeypatch.setattr(weights, "_file_sha256", lambda file: hashed.append(file) or PAYLOAD_SHA)
    assert resolve_weights("fake_model", offline=True, cache_dir=tmp_path, registry=registry) == path
    assert hashed == []  # checked at the download; unchanged since: not read again
    monkeypatch.undo()
    path.write_bytes(PAYLOAD[: len(PAYLOAD) // 2])  # cut in half (its size and time change)
    with pytest.raises(WeightsHashError, match=r"damaged.*weights download fake_model --force"):
        resolve_weights("fake_model", offline=True, cache_dir=tmp_path, registry=registry)
    monkeypatch.setattr(weights, "REGISTRY", registry)
    monkeypatch.delenv("HRTRACK_OFFLINE", raising=False)
    argv = ["--cache-dir", str(tmp_path)]
    assert main.main(["weights", "list", *argv]) == 0
    assert "DAMAGED (weights download fake_model --force)" in capsys.readouterr().out
    with caplog.at_level(logging.ERROR):
        assert main.main(["weights", "download", "fake_model", *argv, "--no-progress"]) == 1
    assert "damaged" in caplog.text  # without --force the damaged file is named, not used
    assert main.main(["weights", "download", "fake_model", *argv, "--no-progress", "--force"]) == 0
    assert path.read_bytes() == PAYLOAD
    assert resolve_weights("fake_model", offline=True, cache_dir=tmp_path, registry=registry) == path


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HRTRACK_CACHE", str(tmp_path / "env_cache"))
    assert weights.get_cache_dir() == tmp_path / "env_cache"
    monkeypatch.delenv("HRTRACK_CACHE")
    assert weights.get_cache_dir() == Path("~/.cache/hrtrack").expanduser()


# ------------------------------------------------------------------ offline and manual-only


def test_offline_error_says_what_to_get_and_where(tmp_path):
    entry = REGISTRY["hrnet_w48_coco_384x288"]
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights(entry.name, offline=True, cache_dir=tmp_path)
    message = str(info.value)
    assert entry.url in message and str(tmp_path / entry.file_name) in message and "offline" in message
    assert isinstance(info.value, FileNotFoundError)


def test_offline_environment_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("HRTRACK_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="HRTRACK_OFFLINE"):
        resolve_weights("hrnet_w32_coco_256x192", cache_dir=tmp_path)


def test_offline_error_uses_the_mirror_url(tmp_path, monkeypatch):
    monkeypatch.setenv("HRTRACK_MIRROR", "https://mirror.example.org")
    entry = REGISTRY["hrnet_w32_coco_256x192"]
    with pytest.raises(WeightsUnavailableError, match=re.escape("https://mirror.example.org/mmpose/v1/")):
        resolve_weights(entry.name, offline=True, cache_dir=tmp_path)


def test_official_checkpoints_must_be_placed_by_hand(tmp_path):
    entry = REGISTRY["hrnet_w32_coco_256x192_official"]
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights(entry.name, offline=False, cache_dir=tmp_path)
    message = str(info.value)
    assert "pose_hrnet_w32_256x192.pth" in message and "drive.google.com" in message
    assert str(tmp_path / "pose_hrnet_w32_256x192.pth") in message
    (tmp_path / "pose_hrnet_w32_256x192.pth").write_bytes(b"placed by hand")
    assert resolve_weights(entry.name, cache_dir=tmp_path) == tmp_path / "pose_hrnet_w32_256x192.pth"


# ------------------------------------------------------------------ downloads


def test_download_checks_hash_and_second_call_is_cached(tmp_path, server):
    registry = _registry(_entry(server.base + FILE_PATH))
    path = resolve_weights("fake_model", offline=False, cache_dir=tmp_path, registry=registry, progress=False)
    assert path == tmp_path / "hrnet_fake.pth" and path.read_bytes() == PAYLOAD
    assert not (tmp_path / "hrnet_fake.pth.part").exists()
    assert server.requests == [FILE_PATH]
    assert resolve_weights("fake_model", offline=False, cache_dir=tmp_path, registry=registry) == path
    assert server.requests == [FILE_PATH]  # no second request


def test_hash_mismatch_deletes_the_partial_file(tmp_path, server):
    url = server.base + FILE_PATH
    registry = _registry(_entry(url, sha256_prefix="00000000"))
    with pytest.raises(WeightsHashError) as info:
        resolve_weights("fake_model", offline=False, cache_dir=tmp_path, registry=registry, progress=False)
    message = str(info.value)
    assert url in message and "00000000" in message and PAYLOAD_SHA in message
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_leaves_no_file(tmp_path, server):
    server.truncate_to = len(PAYLOAD) // 3
    registry = _registry(_entry(server.base + FILE_PATH))
    with pytest.raises(WeightsUnavailableError, match="download failed") as info:
        resolve_weights("fake_model", offline=False, cache_dir=tmp_path, registry=registry, progress=False)
    assert str(tmp_path / "hrnet_fake.pth") in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_mirror_argument_and_environment_replace_the_host(tmp_path, server, monkeypatch):
    # The registered host does not exist; only the mirror can serve the file.
    registry = _registry(_entry("http://unreachable.invalid" + FILE_PATH))
    path = resolve_weights("fake_model", offline=False, cache_dir=tmp_path / "a", mirror=server.base,
                           registry=registry, progress=False)
    assert path.read_bytes() == PAYLOAD
    monkeypatch.setenv("HRTRACK_MIRROR", server.base)
    path = resolve_weights("fake_model", offline=False, cache_dir=tmp_path / "b", registry=registry, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.requests == [FILE_PATH, FILE_PATH]


def test_network_failure_gives_the_helpful_message(tmp_path, server):
    url = server.base + "/missing/file-abcdef12_1.bin"  # the server answers 404
    registry = _registry(_entry(url))
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights("fake_model", offline=False, cache_dir=tmp_path, registry=registry, progress=False)
    message = str(info.value)
    assert "download failed" in message and url in message and str(tmp_path / "hrnet_fake.pth") in message
    assert not (tmp_path / "hrnet_fake.pth").exists()


# ------------------------------------------------------------------ command line


def test_cli_list_shows_names_sizes_and_cache_state(tmp_path, capsys):
    entry = REGISTRY["hrnet_w48_coco_384x288"]
    (tmp_path / entry.file_name).write_bytes(b"cached")
    assert main.main(["weights", "list", "--cache-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(REGISTRY)
    # Not the published file (its SHA-256 prefix differs): listed as damaged, with the command that mends it.
    assert re.search(r"384x288\s+0\.767\s+DAMAGED \(weights download hrnet_w48_coco_384x288 --force\)\s+"
                     + re.escape(str(tmp_path / entry.file_name)), rows[entry.name])
    assert re.search(r"256x192\s+0\.749\s+no\s", rows["hrnet_w32_coco_256x192"])
    assert "no (manual)" in rows["hrnet_w32_mpii_256x256_official"]


def test_cli_download_and_path(tmp_path, server, monkeypatch, capsys, caplog):
    monkeypatch.setattr(weights, "REGISTRY", _registry(_entry("http://unreachable.invalid" + FILE_PATH)))
    monkeypatch.delenv("HRTRACK_OFFLINE", raising=False)
    target = tmp_path / "hrnet_fake.pth"
    with caplog.at_level(logging.ERROR):
        assert main.main(["weights", "path", "fake_model", "--cache-dir", str(tmp_path)]) == 1
    assert "weights download fake_model" in caplog.text
    argv = ["weights", "download", "fake_model", "--cache-dir", str(tmp_path), "--mirror", server.base, "--no-progress"]
    assert main.main(argv) == 0
    assert capsys.readouterr().out.strip() == str(target) and target.read_bytes() == PAYLOAD
    assert main.main(["weights", "path", "fake_model", "--cache-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(target)


def test_cli_download_offline_and_hash_errors(tmp_path, server, monkeypatch, caplog):
    monkeypatch.setenv("HRTRACK_OFFLINE", "1")
    with caplog.at_level(logging.ERROR):
        assert main.main(["weights", "download", "hrnet_w32_coco_256x192", "--cache-dir", str(tmp_path)]) == 1
    assert "td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth" in caplog.text
    assert str(tmp_path) in caplog.text
    caplog.clear()
    # Through the mirror the real registry entry reaches the local server, whose bytes fail the hash.
    monkeypatch.delenv("HRTRACK_OFFLINE")
    argv = ["weights", "download", "hrnet_w32_coco_256x192", "--cache-dir", str(tmp_path), "--mirror", server.base, "--no-progress"]
    with caplog.at_level(logging.ERROR):
        assert main.main(argv) == 1
    assert server.requests == ["/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/" + REGISTRY["hrnet_w32_coco_256x192"].file_name]
    assert "expected SHA-256 starting with 81c58e40" in caplog.text
    assert list(tmp_path.iterdir()) == []
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main.main(["weights", "path", "no_such_model"]) == 2
    assert "unknown weights name 'no_such_model'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main.main(["weights", "download", "hrnet_w32_coco_256x192", "--cache-dir", str(tmp_path),
                          "--mirror", "garbage"]) == 2
    assert "mirror 'garbage' must be a base URL" in caplog.text


def test_progress_bar_is_shown_on_download(tmp_path, server, capsys):
    registry = _registry(_entry(server.base + FILE_PATH))
    resolve_weights("fake_model", offline=False, cache_dir=tmp_path, registry=registry, progress=True)
    assert "hrnet_fake.pth" in capsys.readouterr().err  # tqdm writes to stderr


def test_replace_keeps_entries_frozen():
    entry = REGISTRY["hrnet_w32_coco_256x192"]
    with pytest.raises(AttributeError):
        entry.url = "x"  # type: ignore[misc]
    assert replace(entry, url="x").url == "x" and entry.url != "x"
