#!/usr/bin/env bash
# Same-machine A/B of one ViT-L 512 tile (fp32 and bf16, median of 3 after a warm-up) between an
# earlier revision and the working tree, alternating processes so drift hits both alike.
#
#     benchmarks/ab_revisions.sh REV [ROUNDS]      e.g. benchmarks/ab_revisions.sh 310b65c 2
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: benchmarks/ab_revisions.sh REV [ROUNDS]}
rounds=${2:-2}
old=$(mktemp -d)
trap 'git worktree remove --force "$old" >/dev/null 2>&1 || true' EXIT
git worktree add -f --detach "$old" "$rev" -q
for _ in $(seq "$rounds"); do
    PYTHONPATH="$old/src" .venv/bin/python benchmarks/tile_ab.py "$rev"
    PYTHONPATH=src .venv/bin/python benchmarks/tile_ab.py "working tree"
done
