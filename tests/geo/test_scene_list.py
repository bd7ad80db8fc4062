"""Scene lists (issue 14): `crossearth predict scenes.txt` reads its inputs from a text file.

One input per line (local paths relative to the list's folder, absolute paths, URLs, GDAL
/vsi paths), blank lines and `#` comments skipped; the outputs are those of the same inputs
given on the command line. A missing or empty list, or a bad line, is one `error:` line
naming the file (and the line number) with nothing written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_runner import run_cli_captured as run
from geotiff import blocky_scene as write_scene
from remote_server import RangeServer

from crossearth.geo.scenelist import read_scene_list

FAST = ("--precision", "fp32", "--device", "cpu", "--no-overlay", "--no-preview", "-q")


@pytest.fixture(scope="module")
def model_file(varied_model_file):
    return varied_model_file


def class_maps(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*_classes.tif"))}


def test_a_list_runs_like_its_inputs_on_the_command_line(monkeypatch, capsys, tmp_path, model_file):
    lists = tmp_path / "lists"
    near = write_scene(lists / "tiles" / "near.tif", seed=0)
    far = write_scene(tmp_path / "elsewhere" / "far.tif", seed=1)
    served = tmp_path / "served"
    write_scene(served / "web.tif", seed=2)
    write_scene(served / "vsi.tif", seed=3)
    listed, direct = tmp_path / "listed", tmp_path / "direct"
    with RangeServer(served) as server:
        web, vsi = server.url("web.tif"), f"/vsicurl/{server.url('vsi.tif')}"
        scenes = lists / "scenes.txt"
        scenes.write_text(
            "# scenes of the survey\n\n"
            "tiles/near.tif\n"  # relative to the list's folder, not to the working folder
            f"   {far}   \n"
            "  # an indented comment\n"
            f"{web}\r\n{vsi}\n"
            "tiles/near.tif\n"  # named twice: taken once
        )
        monkeypatch.chdir(tmp_path)
        code, text = run(monkeypatch, capsys, "predict", scenes, "-m", model_file, "-o", listed,
                         *FAST)  # fmt: skip
        assert code == 0, text
        code, text = run(monkeypatch, capsys, "predict", near, far, web, vsi, "-m", model_file,
                         "-o", direct, *FAST)  # fmt: skip
        assert code == 0, text
    maps = class_maps(listed)
    assert sorted(maps) == [f"{n}_classes.tif" for n in ("far", "near", "vsi", "web")]
    assert maps == class_maps(direct)


def test_entries_keep_urls_and_item_fragments(tmp_path):
    items = tmp_path / "items.json"
    items.write_text("{}")
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("items.json#S2A_1\nhttps://h.example/a.tif?sig=x#y\n/vsis3/bucket/b.tif\n")
    assert read_scene_list(scenes) == [
        (1, tmp_path / "items.json#S2A_1"),
        (2, "https://h.example/a.tif?sig=x#y"),
        (3, "/vsis3/bucket/b.tif"),
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "scene list not found: {list}"),
        ("# nothing here\n\n   \n", "scene list {list} names no scenes"),
        ("a.tif\n\n# c\nmissing.tif\n", "{list}:4: missing.tif not found"),
        ("a.tif\nftp://h/b.tif\n", "{list}:2: unsupported URL scheme ftp://"),
        ("other.txt\n", "{list}:1: a scene list cannot name another list"),
        ("https://h.example/more.txt?sig=x\n", "{list}:1: a scene list cannot name another list"),
        ("empty/\n", "{list}:1: folder"),
    ],
    ids=["missing", "empty", "missing-file", "bad-scheme", "nested", "nested-url", "empty-folder"],
)
def test_bad_lists_are_one_error_line_naming_file_and_line(
    monkeypatch, capsys, tmp_path, model_file, content, expected
):
    write_scene(tmp_path / "a.tif", seed=0)
    (tmp_path / "empty").mkdir()
    scenes = tmp_path / "scenes.txt"
    if content is not None:
        scenes.write_text(content)
    out = tmp_path / "out"
    code, text = run(monkeypatch, capsys, "predict", scenes, "-m", model_file, "-o", out, *FAST)
    assert code != 0
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    assert errors[0].startswith("error: " + expected.format(list=scenes)), errors[0]
    assert not out.exists() or os.listdir(out) == []


def test_a_list_behind_a_url_is_refused_with_one_error_line(
    monkeypatch, capsys, tmp_path, model_file
):
    url = "https://h.example/lists/scenes.txt?sig=s3cr3t"
    code, text = run(monkeypatch, capsys, "predict", url, "-m", model_file, "-o", tmp_path / "o")
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert code != 0 and len(errors) == 1, text
    assert "lists are read from local files" in errors[0] and "s3cr3t" not in text


def test_a_collection_line_is_its_items_and_an_item_line_is_one_item(tmp_path):
    pytest.importorskip("pystac", reason="STAC inputs need pystac: pip install 'crossearth[stac]'")
    from crossearth.cli.predict import _expand_inputs

    items = tmp_path / "items.json"
    items.write_text('{"type": "FeatureCollection", "features": [{"id": "A"}, {"id": "B"}]}')
    scenes = tmp_path / "scenes.txt"
    scenes.write_text("items.json\nitems.json#B\n")
    files, _ = _expand_inputs([str(scenes)])
    assert files == [Path(f"{items}#A"), Path(f"{items}#B")]  # #B named twice: taken once
