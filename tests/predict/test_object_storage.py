"""`predict -o s3://bucket/out/` (issue 24) against a real S3-compatible server (moto's) started on
127.0.0.1 by the test: the objects equal a local run's files byte for byte, the manifest lives in
the bucket (a rerun skips), a bucket that does not exist is one error line before any work, and
no message shows a credential.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli_captured as run
from geotiff import write_geotiff
from rasterio.crs import CRS
from rasterio.transform import from_origin

from crossearth.predict.store import masked, s3_options

FAST = ("--precision", "fp32", "--device", "cpu", "--tile", "96", "--stride", "64",
        "--no-overlay")  # fmt: skip
SECRET = "wJalrXUtnFEMI-test-secret-K7MDENG"


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a free port of 127.0.0.1; its endpoint URL."""
    pytest.importorskip("s3fs", reason="needs crossearth[dask] (s3fs)")
    server_module = pytest.importorskip("moto.server", reason="needs moto[server] (dev extra)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as exc:  # e.g. a missing flask: the server cannot run here
        pytest.skip(f"moto's S3 server did not start on 127.0.0.1:{port}: {exc}")
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(monkeypatch, s3_server):
    """The environment a user sets for an S3-compatible endpoint, and a client to look."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(endpoint_url=s3_server)
    fs.mkdir("results")
    yield fs
    fs.rm("results", recursive=True)
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def model_file(varied_model_file):
    return varied_model_file


@pytest.fixture
def scenes(tmp_path) -> Path:
    folder = tmp_path / "scenes"
    folder.mkdir()
    for i, (h, w) in enumerate([(100, 120), (260, 110)]):
        rng = np.random.default_rng(i)
        base = rng.integers(1, 256, (3, h // 16 + 1, w // 16 + 1))
        data = np.kron(base, np.ones((1, 16, 16), np.int64))[:, :h, :w].astype(np.uint8)
        write_geotiff(folder / f"s{i}.tif", data, crs=CRS.from_epsg(32632),
                      transform=from_origin(5e5, 5.8e6, 0.3, 0.3))  # fmt: skip
    return folder


def test_outputs_on_s3_equal_a_local_run(monkeypatch, capsys, tmp_path, s3, scenes, model_file):
    """Two scenes, the second in two parts (parts go through the bucket too): every object
    equals the local file; summaries name the objects; the manifest is in the bucket."""
    local = tmp_path / "local"
    args = (scenes, "-m", model_file, *FAST, "--confidence", "--parts", "2")
    code, text = run(monkeypatch, capsys, "predict", *args, "-o", local, "-q")
    assert code == 0, text
    code, text = run(monkeypatch, capsys, "predict", *args, "-o", "s3://results/run1/")
    assert code == 0, text
    assert "-> s3://results/run1/s1_classes.tif" in text
    keys = sorted(k.split("/", 2)[2] for k in s3.find("results/run1"))
    names = sorted(p.name for p in local.iterdir() if not p.name.startswith("."))
    assert [k for k in keys if not k.startswith(".crossearth/")] == names
    assert sorted(k for k in keys if k.startswith(".crossearth/")) == [
        ".crossearth/scenes/s0.json",
        ".crossearth/scenes/s1.json",
    ]  # fmt: skip  (parts and the write probe gone)
    for name in names:
        data = s3.cat_file(f"results/run1/{name}")
        if name.endswith("_summary.json"):
            summary = json.loads(data)
            assert (
                summary["class_map"]
                == f"s3://results/run1/{name[: -len('_summary.json')]}_classes.tif"
            )
            assert summary["classes"] == json.loads((local / name).read_text())["classes"]
        else:
            assert data == (local / name).read_bytes(), name
    capsys.readouterr()
    code, text = run(monkeypatch, capsys, "predict", *args, "-o", "s3://results/run1/")
    assert code == 0 and "2 scenes completed by an earlier run skipped" in text
    assert SECRET not in text


def test_a_bucket_that_does_not_exist_is_one_error_line(monkeypatch, capsys, tmp_path, s3,
                                                        scenes, model_file):  # fmt: skip
    code, text = run(monkeypatch, capsys, "predict", scenes, "-m", model_file, *FAST,
                     "-o", "s3://no-such-bucket/out/")  # fmt: skip
    assert code == 1 and "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot write outputs to s3://no-such-bucket/out"
    )
    assert SECRET not in text and "model loaded" not in text  # before any work


def test_an_object_storage_output_is_a_folder(monkeypatch, capsys, scenes, model_file):
    code, text = run(monkeypatch, capsys, "predict", scenes / "s0.tif", "-m", model_file, *FAST,
                     "-o", "s3://results/map.tif")  # fmt: skip
    assert code == 1
    assert text.strip() == (
        "error: an output on object storage is a folder (s3://bucket/out/), not a file: "
        "s3://results/map.tif"
    )


def test_gdal_endpoint_settings_configure_s3():
    """The names GDAL users have set already: AWS_S3_ENDPOINT, AWS_HTTPS, AWS_VIRTUAL_HOSTING."""
    env = {"AWS_S3_ENDPOINT": "minio.local:9000", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}
    assert s3_options(env) == {
        "endpoint_url": "http://minio.local:9000",
        "config_kwargs": {"s3": {"addressing_style": "path"}},
    }
    assert s3_options({"AWS_S3_ENDPOINT": "s3.example.org"}) == {
        "endpoint_url": "https://s3.example.org"
    }
    assert s3_options({"AWS_ENDPOINT_URL": "http://a:1", "AWS_S3_ENDPOINT": "b"}) == {
        "endpoint_url": "http://a:1"
    }
    assert s3_options({"AWS_NO_SIGN_REQUEST": "YES"}) == {"anon": True}


def test_messages_mask_secrets_and_url_credentials(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    text = f"denied for key {SECRET} at https://user:pw@host/b/x.tif?X-Amz-Signature=abc"
    assert masked(text) == "denied for key *** at https://***@host/b/x.tif?***"
