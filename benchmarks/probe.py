"""Linear probe of frozen backbones on SynthEarth: what pretraining bought.

For each backbone file (and, with --random, a randomly re-initialised copy of the first: same
keys, shapes and metadata), the features of the frozen backbone feed a per-pixel linear
classifier (`crossearth.pretrain.probe`) trained on the demo's source domain (urban-aerial-rgb)
and scored by mIoU on the source's validation tiles and on the demo's four unseen targets. The
tiles are the demo's (same seeds, same size).

    python benchmarks/probe.py synthearth-backbone --random            # the shipped backbone
    python benchmarks/probe.py runs/a/backbone.safetensors runs/b/backbone.safetensors

Prints a Markdown table (mIoU %, CPU model beside it) and writes --json if given.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from crossearth.runtime import cpu_description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backbones", nargs="+", help="backbone files or shipped names")
    parser.add_argument("--random", action="store_true", help="add a random re-init of the first")
    parser.add_argument("--train-tiles", type=int, default=48)
    parser.add_argument("--val-tiles", type=int, default=16)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300, help="probe optimisation steps")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from crossearth.demo import SOURCE, TARGETS, domain_arrays
    from crossearth.pretrain.probe import linear_probe, load_plain_backbone, random_backbone_like
    from crossearth.threads import configure_threads

    configure_threads(None)
    train = domain_arrays(SOURCE, args.train_tiles, args.tile, 0)
    evaluations = {
        name: domain_arrays(name, args.val_tiles, args.tile, 500_000 + 1000 * k)
        for k, name in enumerate((SOURCE, *TARGETS))
    }
    entries = [(str(b), b) for b in args.backbones]
    tmp = tempfile.TemporaryDirectory()
    if args.random:
        random_file = random_backbone_like(args.backbones[0], Path(tmp.name) / "random.safetensors")
        entries.append((f"random init of {args.backbones[0]}", str(random_file)))
    rows = {}
    for label, path in entries:
        t0 = time.perf_counter()
        result = linear_probe(load_plain_backbone(path), train, evaluations, 6, steps=args.steps)
        rows[label] = result.miou | {"probe_train": result.train_miou}
        print(f"{label}: {time.perf_counter() - t0:.0f} s", flush=True)
    domains = [SOURCE, *TARGETS]
    print(f"\nLinear probe mIoU % (trained on {SOURCE}, {args.train_tiles} tiles of {args.tile} px; "
          f"{args.val_tiles} validation tiles per domain; CPU: {cpu_description()})\n")  # fmt: skip
    print("| backbone | " + " | ".join(domains) + " | targets' mean |")
    print("| --- " * (len(domains) + 2) + "|")
    for label, miou in rows.items():
        mean = sum(miou[d] for d in TARGETS) / len(TARGETS)
        print(f"| {label} | " + " | ".join(f"{miou[d]:.1f}" for d in domains) + f" | {mean:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    tmp.cleanup()


if __name__ == "__main__":
    main()
