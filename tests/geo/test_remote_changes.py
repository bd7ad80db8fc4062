"""A changed remote object is noticed on rerun (issue 14).

A run over several URLs keeps a manifest whose fingerprint of each remote scene holds the
object's size, ETag and Last-Modified (one HEAD request through GDAL). After the served file
of one scene is replaced by new bytes, the same command redoes that scene and skips the others;
a server that sends no ETag/Last-Modified gets a note that a rerun trusts the URL.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_runner import run_cli_captured as run
from geotiff import blocky_scene as write_scene
from remote_server import RangeServer

from crossearth.geo.remote import object_identity

FAST = ("--precision", "fp32", "--device", "cpu", "--no-overlay", "--no-preview")


@pytest.fixture(scope="module")
def model_file(varied_model_file):
    return varied_model_file


def processed(text: str) -> list[str]:
    return sorted(Path(m).name for m in re.findall(r"(\S+\.tif) -> ", text))


def test_identity_changes_with_the_object_and_is_none_when_missing(tmp_path):
    scene = write_scene(tmp_path / "a.tif", seed=0)
    with RangeServer(tmp_path) as server:
        first = object_identity(server.url("a.tif"))
        again = object_identity(server.url("a.tif?sig=other"))  # a new signature, same object
        write_scene(scene, seed=1)
        changed = object_identity(server.url("a.tif"))
        missing = object_identity(server.url("nothing.tif"))
    assert first is not None and {"etag", "last-modified", "size"} <= first.keys()
    assert first["size"] == str((tmp_path / "a.tif").stat().st_size)
    assert again == first
    assert changed is not None and changed["etag"] != first["etag"]
    assert missing is None


def test_rerun_redoes_the_changed_remote_scene_only(monkeypatch, capsys, tmp_path, model_file):
    served = tmp_path / "served"
    served.mkdir()
    for i in range(3):
        write_scene(served / f"s{i}.tif", seed=i)
    out = tmp_path / "out"
    with RangeServer(served) as server:
        urls = [server.url(f"s{i}.tif") for i in range(3)]
        args = ("predict", *urls, "-m", model_file, "-o", out, *FAST)
        code, text = run(monkeypatch, capsys, *args)
        assert code == 0, text
        assert processed(text) == ["s0.tif", "s1.tif", "s2.tif"]
        before = (out / "s1_classes.tif").read_bytes()
        code, text = run(monkeypatch, capsys, *args)
        assert code == 0 and processed(text) == [], text
        assert "3 scenes completed by an earlier run skipped" in text
        write_scene(served / "s1.tif", seed=7)  # new bytes, ETag and Last-Modified
        code, text = run(monkeypatch, capsys, *args)
        assert code == 0, text
        assert processed(text) == ["s1.tif"]
        assert "2 scenes completed by an earlier run skipped" in text
    assert "note:" not in text
    # the redone class map is the new object's: equal to a run on the new file itself
    local = tmp_path / "local.tif"
    assert run(monkeypatch, capsys, "predict", served / "s1.tif", "-m", model_file, "-o",
               local, *FAST)[0] == 0  # fmt: skip
    assert (out / "s1_classes.tif").read_bytes() == local.read_bytes() != before


def test_a_server_without_versions_gets_a_note(monkeypatch, capsys, tmp_path, model_file):
    for i in range(2):
        write_scene(tmp_path / f"s{i}.tif", seed=i)
    out = tmp_path / "out"
    with RangeServer(tmp_path, versions=False) as server:
        urls = [server.url(f"s{i}.tif?token=s3cr3t") for i in range(2)]
        code, text = run(monkeypatch, capsys, "predict", *urls, "-m", model_file, "-o", out, *FAST)
    assert code == 0, text
    notes = [line for line in text.splitlines() if line.startswith("note:")]
    assert len(notes) == 2 and "/s0.tif?***" in notes[0] and "ETag" in notes[0], text
    assert "s3cr3t" not in text


def test_archive_and_collection_inputs_are_identified_by_their_files(tmp_path):
    import os
    import zipfile

    from crossearth.predict.manifest import input_identity

    archive = tmp_path / "tiles.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.tif", b"first")
    items = tmp_path / "items.json"
    items.write_text('{"type": "FeatureCollection", "features": []}')
    inputs = [f"/vsizip/{archive}/a.tif", f"/vsizip/{{{archive}}}/a.tif", Path(f"{items}#S2A_1")]
    before = [input_identity(item) for item in inputs]
    assert all(known for _, known in before)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.tif", b"second!")
    items.write_text('{"type": "FeatureCollection", "features": [1]}')
    for path in (archive, items):  # a later modification time, whatever the clock's resolution
        os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    after = [input_identity(item) for item in inputs]
    assert all(b[0] != a[0] for b, a in zip(before, after, strict=True))
