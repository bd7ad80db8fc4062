"""The longer study behind the demo: CrossEarth's two parts, alone and together, over many seeds,
on a frozen and on a fine-tuned pretrained backbone.

Per regime (the shipped `synthearth-backbone` frozen, or fine-tuned with Rein and the head) and
per seed, five trainings under the demo's budget: the Rein baseline, + Earth-Style Injection
alone, + Multi-Task Training alone, + both; each scored on the source and the four unseen
targets (the demo's tiles, seeds and protocol, `crossearth.demo`). For every variant against the
baseline of the same seed: the mean paired difference per domain, its 95 % t interval and the
verdict (`crossearth.intervals`).

    python benchmarks/study.py --seeds 10 --json benchmarks/results/study.json   # about 1 h idle

Results go to --json after every run, and a rerun with the same --json skips the runs already
there (a study can be stopped and continued). Prints Markdown tables and the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from crossearth.runtime import cpu_description

VARIANTS = {  # name: (esi, mtt)
    "baseline": (False, False),
    "esi": (True, False),
    "mtt": (False, True),
    "esi+mtt": (True, True),
}
REGIMES = ("frozen", "finetuned")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=REGIMES)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=None, help="default: the demo's")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/study.json"))
    parser.add_argument("--out", type=Path, default=Path("benchmark_output/study"))
    args = parser.parse_args()

    import logging
    import warnings

    from rich.console import Console

    import crossearth.demo as demo
    from crossearth.threads import configure_threads

    configure_threads(None)
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    budget = demo.DemoBudget(seeds=tuple(range(args.seeds)))
    if args.steps:
        budget = dataclasses.replace(budget, steps=args.steps)
    results = json.loads(args.json.read_text()) if args.json.is_file() else {}
    results.setdefault("budget", dataclasses.asdict(budget))
    results.setdefault("cpu", cpu_description())
    results.setdefault("precision", demo.train_precision(budget.precision))
    runs = results.setdefault("runs", {})
    data = {}
    for k, name in enumerate((demo.SOURCE, *demo.TARGETS)):
        data[name] = {
            "val": demo.domain_arrays(name, budget.val_tiles, budget.tile, 500_000 + 1000 * k)
        }
    data[demo.SOURCE]["train"] = demo.domain_arrays(demo.SOURCE, budget.train_tiles, budget.tile, 0)
    for regime in args.regimes:
        regime_budget = dataclasses.replace(budget, freeze=regime == "frozen")
        for seed in budget.seeds:
            earth = None
            for variant in args.variants:
                key = f"{regime}/{variant}/{seed}"
                if key in runs:
                    continue
                esi, mtt = VARIANTS[variant]
                if esi and earth is None:
                    earth = demo._earth_style(budget, seed)
                t0 = time.perf_counter()
                model = demo.train_one(esi, mtt, seed, regime_budget, data, args.out / regime, earth,
                                       key, name=variant.replace("+", "_"))  # fmt: skip
                runs[key] = demo.evaluate(model, data) | {"seconds": time.perf_counter() - t0}
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results, indent=1))
                print(f"{key}: {runs[key]['seconds']:.0f} s", flush=True)
    print_tables(results, Console(width=200))


def print_tables(results: dict, console) -> None:
    """Per regime: each variant's mean mIoU and its paired difference to the baseline."""
    import crossearth.demo as demo
    from crossearth.intervals import paired_interval

    runs = results["runs"]
    domains = (demo.SOURCE, *demo.TARGETS)
    for regime in REGIMES:
        seeds = sorted({int(k.split("/")[2]) for k in runs if k.startswith(f"{regime}/baseline/")})
        if not seeds:
            continue
        print(f"\n{regime} backbone, {len(seeds)} seeds, mIoU % (Δ to the baseline [95 % CI], "
              f"verdict); {results.get('precision', '')}, CPU: {results['cpu']}\n")  # fmt: skip
        print("| variant | " + " | ".join(domains) + " |")
        print("| --- " * (len(domains) + 1) + "|")
        base = [runs[f"{regime}/baseline/{s}"] for s in seeds]
        print("| baseline (Rein) | " + " | ".join(
            f"{sum(r[d] for r in base) / len(base):.1f}" for d in domains) + " |")  # fmt: skip
        for variant in [v for v in VARIANTS if v != "baseline"]:
            paired = [s for s in seeds if f"{regime}/{variant}/{s}" in runs]
            if len(paired) < 2:
                continue
            cells = []
            for d in domains:
                iv = paired_interval([runs[f"{regime}/baseline/{s}"][d] for s in paired],
                                     [runs[f"{regime}/{variant}/{s}"][d] for s in paired])  # fmt: skip
                cells.append(f"{iv.mean_b:.1f} ({iv.diff:+.1f} [{iv.low:+.1f}, {iv.high:+.1f}], "
                             f"{iv.verdict})")  # fmt: skip
            print(f"| + {variant} ({len(paired)} seeds) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
