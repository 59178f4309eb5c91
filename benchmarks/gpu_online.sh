#!/usr/bin/env bash
# The GPU measurements of docs/BENCHMARKS.md ("On a GPU"): the online step against the supervised one with and
# without AMP (ssod_step.py), and online training's step time, unlabeled-loading wait and autobatch
# (gpu_online.py) on a generated shapes split at 640 px, 10 % labeled.
# Usage: benchmarks/gpu_online.sh OUT   (python3 with semiyolo importable, one CUDA GPU)
set -euo pipefail
out=$1
py=${PYTHON:-python3}
export YOLO_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
semiyolo() { "$py" -c 'import sys; from semiyolo.cli import main; sys.exit(main())' "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
lscpu | grep 'Model name' || true
for targets in hard tiered; do
    for amp in "" --amp; do
        "$py" benchmarks/ssod_step.py --device cuda $amp --targets $targets --batch 16 --imgsz 640 --rounds 20 \
            2>&1 | grep -v Overriding
    done
done
[ -f "$out/data/data.yaml" ] || semiyolo data synth --out "$out/data" --images 300 --imgsz 640 --seed 0
[ -f "$out/split/config.yaml" ] || semiyolo split "$out/data/data.yaml" --fraction 0.1 --seed 0 --out "$out/split"
unlabeled="$out/split/unlabeled/images"
for copy in 1 2 3; do  # four times the unlabeled images (hard links under new names): longer unlabeled passes
    for f in "$unlabeled"/*.png; do
        case "$f" in *_copy*) continue ;; esac
        ln -f "$f" "${f%.png}_copy$copy.png"
    done
done
"$py" benchmarks/gpu_online.py "$out/split/config.yaml" --out "$out/runs" "${@:2}"
