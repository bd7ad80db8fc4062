"""SynthEarth validates on its source too; the mean that picks best.safetensors is the targets'."""

from __future__ import annotations

import re

from crossearth.data.synthetic import DOMAINS, generate_domain


def test_source_is_shown_but_not_in_the_selection_mean(monkeypatch, capsys, tmp_path):
    from cli_runner import run_cli

    root = tmp_path / "data"
    for spec in DOMAINS.values():
        generate_domain(root, spec, train=2, val=1, size=64)
    code = run_cli(monkeypatch, "train", "--setting", "SynthEarth", "--data-root", root,
                   "--out", tmp_path / "run", "--max-steps", "2", "--batch-size", "1",
                   "--precision", "32-true", "--set", "crop=64", "--set", "val_every=2",
                   "--set", "num_workers=0")  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    line = " ".join(out.split()).split("[step 2] val mIoU ")[1].split(")")[0]
    mean, parts = line.split(" on the targets (")
    scores = dict(re.findall(r"(\S+) (\d+\.\d+)", parts))
    source = "synthearth-urban-aerial-rgb"
    assert f"source {source} " in parts
    targets = [float(v) for k, v in scores.items() if k != source]
    assert len(targets) == 4
    assert abs(float(mean) - sum(targets) / 4) <= 0.01 + 1e-9  # each printed to 2 decimals
