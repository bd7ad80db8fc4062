"""Hub round trips: `hf-hub:` sources from a cache laid out like the Hub's, offline; `push` with
a stub of the upload calls that checks the files and the generated model card."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import crossearth
from crossearth.errors import CheckpointError, WeightsUnavailableError
from crossearth.weights.card import model_card
from crossearth.weights.hub import parse_hub_source
from crossearth.weights.push import push_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_hub_cache(root: Path, repo: str, files: dict[str, bytes], revision: str = "main") -> Path:
    """The Hugging Face cache layout: models--owner--name/{refs/<rev>, snapshots/<commit>/...}."""
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / revision).write_text(COMMIT)
    snapshot = repo_dir / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    return root


@pytest.fixture
def small_file(tmp_path):
    torch.manual_seed(1)
    net = crossearth.create_model("vit-tiny-256", num_classes=3)
    net.config = dataclasses.replace(
        net.config, class_names=("a", "b", "c"), palette=((1, 2, 3), (4, 5, 6), (7, 8, 9))
    )
    path = crossearth.save_model(net, tmp_path / "model.safetensors")
    return net, path


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_parse_hub_sources():
    assert parse_hub_source("hf-hub:me/roads").filename == "model.safetensors"
    src = parse_hub_source("hf-hub:me/roads/runs/best.safetensors@v1")
    assert (src.repo_id, src.filename, src.revision) == ("me/roads", "runs/best.safetensors", "v1")
    for bad in ("hf-hub:roads", "hf-hub:/x", "hf-hub:me/roads@"):
        with pytest.raises(CheckpointError):
            parse_hub_source(bad)


def test_load_from_the_cache_offline(small_file, offline_cache):
    net, path = small_file
    fake_hub_cache(offline_cache, "me/tiny", {"model.safetensors": path.read_bytes()})
    loaded = crossearth.load_model("hf-hub:me/tiny")
    assert loaded.config.class_names == ("a", "b", "c")
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    # another repository with the same file name is another cache entry: not found, not mixed up
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE"):
        crossearth.load_model("hf-hub:someone-else/tiny")


def test_offline_cli_error_is_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty")}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(crossearth.__file__).parents[1]), env.get("PYTHONPATH")])
    )
    proc = subprocess.run(
        [sys.executable, "-m", "crossearth", "export", "hf-hub:me/absent", "-o", str(tmp_path / "m.onnx")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "hf-hub:me/absent" in line and "HF_HUB_OFFLINE" in line
    assert not (tmp_path / "m.onnx").exists()


class FakeApi:
    """Stands in for `huggingface_hub.HfApi`: records the repository and the committed files."""

    def __init__(self) -> None:
        self.repos: list[tuple[str, bool | None]] = []
        self.files: dict[str, bytes] = {}
        self.message = ""

    def create_repo(self, repo_id, *, private=None, exist_ok=False):
        self.repos.append((repo_id, private))
        return f"https://huggingface.co/{repo_id}"

    def create_commit(self, repo_id, *, operations, commit_message):
        self.message = commit_message
        for op in operations:
            src = op.path_or_fileobj
            data = Path(src).read_bytes() if isinstance(src, str) else bytes(src)
            self.files[op.path_in_repo] = data


def test_push_uploads_the_file_and_a_card_that_loads_back(small_file, offline_cache):
    net, path = small_file
    api = FakeApi()
    push_model(net, "me/tiny", weights_file=path, api=api, extra={"source_domain": "SynthEarth"})
    assert api.repos == [("me/tiny", None)]
    assert sorted(api.files) == ["README.md", "model.safetensors"]
    assert api.files["model.safetensors"] == path.read_bytes()  # our file, uploaded as is
    card = api.files["README.md"].decode()
    assert card.startswith("---\nlicense: mit\n")
    for needle in ("| 0 | a | `#010203` |", "| 2 | c | `#070809` |", "**RGB**", "SynthEarth",
                   "crossearth predict scene.tif --model hf-hub:me/tiny",
                   'crossearth.load_model("hf-hub:me/tiny")', "crossearth export hf-hub:me/tiny",
                   "Deepness", "Apache-2.0", "crop 256x256 pixels, stride 171"):  # fmt: skip
        assert needle in card, needle
    # what was pushed loads back through the Hub cache
    fake_hub_cache(offline_cache, "me/tiny", api.files)
    assert crossearth.load_model("hf-hub:me/tiny").config.class_names == ("a", "b", "c")


def test_push_converts_other_checkpoints(small_file, tmp_path):
    net, _ = small_file
    api = FakeApi()
    push_model(net, "me/tiny", weights_file=None, api=api, private=True)
    assert api.repos == [("me/tiny", True)]
    saved = tmp_path / "pushed.safetensors"
    saved.write_bytes(api.files["model.safetensors"])
    assert crossearth.load_model(saved).config.class_names == ("a", "b", "c")
    with pytest.raises(CheckpointError, match="owner/name"):
        push_model(net, "not a repo", api=api)


def test_push_failure_is_one_clear_error(small_file):
    from crossearth.weights.hub import HubError

    class Refusing(FakeApi):
        def create_commit(self, *args, **kwargs):
            raise PermissionError("401 Client Error: Unauthorized\nmore detail")

    net, path = small_file
    with pytest.raises(HubError, match="401 Client Error: Unauthorized\\); log in"):
        push_model(net, "me/tiny", weights_file=path, api=Refusing())


def test_card_takes_fields_a_config_may_gain():
    """Fine-tuning runs add fields to the config; the card shows them without code changes."""

    class RunConfig:
        def to_dict(self):
            data = crossearth.get_preset("vitl-512", 2).to_dict()
            data.update(
                class_names=["background", "building"], palette=[[0, 0, 0], [255, 0, 0]],
                bands="IRRG", gsd_m=0.09, band_indices=[4, 1, 2], scaling="p2,p98",
                training_config={"setting": "P(i)2V", "iterations": 40000},
                metrics={"mIoU": 0.612}, source_data="ISPRS Potsdam IRRG",
            )  # fmt: skip
            return data

    card = model_card(RunConfig(), "me/buildings")
    assert "DINOv2 ViT-L/16 (24 blocks)" in card
    assert "near-infrared, red, green" in card and "0.09 m" in card and "9 cm" in card
    sections = {s.split("\n", 1)[0]: s for s in card.split("\n## ")}
    assert '"mIoU": 0.612' in sections["Metrics"]
    assert '"iterations": 40000' in sections["Training"]
    assert "ISPRS Potsdam IRRG" in sections["Source data"]
    assert "band_indices" in sections["Other settings"] and "p2,p98" in sections["Other settings"]


# --- no network: one line within seconds, never huggingface_hub's retries ----------------------


@pytest.fixture
def closed_port():
    """A local port that refuses connections (bound, never listening): a Hub with no network."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def silent_port():
    """A local port that accepts connections and never answers: a Hub behind a dead link."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def online_hub(tmp_path, monkeypatch):
    """huggingface_hub online, with an empty cache; returns a setter for the Hub's address (a
    local port: `HF_ENDPOINT` as huggingface_hub read it at import, URL template included)."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("CROSSEARTH_HOME", str(tmp_path / "home"))

    def at(port: int) -> str:
        address = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("HF_ENDPOINT", address)
        monkeypatch.setattr(constants, "ENDPOINT", address)
        template = address + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        return address

    return at


def test_unreachable_hub_fails_at_once_without_retries(online_hub, closed_port, caplog):
    import time

    address = online_hub(closed_port)
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as err:
        crossearth.load_model("hf-hub:me/absent")
    assert time.monotonic() - start < 5  # huggingface_hub's own backoff takes about 30 s
    message = str(err.value)
    assert "\n" not in message
    assert f"cannot reach the Hugging Face Hub at {address}" in message
    assert "hf-hub:me/absent" in message and "network" in message
    assert "refused" in message  # the request went to the closed local port, nowhere else
    assert not [r for r in caplog.records if r.levelno >= 30 and "Retry" in r.getMessage()]


def test_hub_that_does_not_answer_times_out_after_the_etag_timeout(
    online_hub, silent_port, monkeypatch
):
    import time

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 1)
    online_hub(silent_port)
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match=r"cannot reach.*Timeout"):
        crossearth.load_model("hf-hub:me/absent@v2")
    assert time.monotonic() - start < 5


def test_zoo_download_without_network_says_where_to_put_the_file(online_hub, closed_port):
    from crossearth.weights.zoo import ZOO, hf_url, locate

    online_hub(closed_port)
    entry = ZOO["vaihingen"]
    with pytest.raises(WeightsUnavailableError) as err:
        locate(entry.filename, download=True)
    message = str(err.value)
    assert "cannot reach the Hugging Face Hub" in message and "\n" not in message
    assert "refused" in message
    assert hf_url(entry.filename) in message and "put it at" in message


def test_cli_without_network_prints_one_error_line(tmp_path, closed_port):
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env |= {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port}", "HF_HOME": str(tmp_path / "hf")}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(crossearth.__file__).parents[1]), env.get("PYTHONPATH")])
    )
    out = tmp_path / "m.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "crossearth", "export", "hf-hub:me/absent", "-o", str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr  # no retry warnings, no traceback
    assert lines[0].startswith("error: cannot reach the Hugging Face Hub at http://127.0.0.1:")
    assert not out.exists()


def test_push_without_network_names_the_network_not_the_login(small_file, closed_port, online_hub):
    from huggingface_hub import HfApi

    from crossearth.weights.hub import HubError

    online_hub(closed_port)
    net, path = small_file
    api = HfApi(endpoint=f"http://127.0.0.1:{closed_port}", token="hf_not_a_real_token")
    with pytest.raises(HubError) as err:
        push_model(net, "me/tiny", weights_file=path, api=api)
    message = str(err.value)
    assert f"cannot reach the Hugging Face Hub at http://127.0.0.1:{closed_port}" in message
    assert "network" in message and "nothing was uploaded" in message and "refused" in message
    assert "log in" not in message and "\n" not in message


def test_push_with_hf_hub_offline_says_so(small_file, closed_port, online_hub, monkeypatch):
    from huggingface_hub import HfApi, constants

    from crossearth.weights.hub import HubError

    online_hub(closed_port)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    net, path = small_file
    api = HfApi(endpoint=f"http://127.0.0.1:{closed_port}", token="hf_not_a_real_token")
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set") as err:
        push_model(net, "me/tiny", weights_file=path, api=api)
    assert "log in" not in str(err.value) and "nothing was uploaded" in str(err.value)
