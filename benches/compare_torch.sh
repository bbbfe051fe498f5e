#!/usr/bin/env bash
# downhill against PyTorch on the same CPU, same protocol, measured in one run, alternating.
#
#   python3 -m venv /tmp/peers && /tmp/peers/bin/pip install numpy torch
#   bash benches/compare_torch.sh [ROUNDS] [PEER_SCRIPT]
#
# Protocol (both sides): MLP 784-H-10 (ReLU), f32, SGD lr 0.05 momentum 0.9, pixels
# standardised per pixel on the training split, reshuffled every epoch, last partial batch
# dropped, samples/s over training-loop time only. Prints one line per run and the median
# samples/s of each side with their ratio, per configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
peer=${2:-../shared/peers/torch_mlp.py}
python=${PYTHON:-/tmp/peers/bin/python}
data=${DATA:-data/mnist-10k}
epochs=${EPOCHS:-20}
cargo build --release --example mnist --quiet
configs=${CONFIGS:-"256:128:1 256:128:2 1024:256:1 1024:256:2"}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
sps() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["samples_per_s"])'; }

printf '%-8s %-6s %-8s %14s %14s %7s\n' hidden batch threads downhill torch ratio
for cfg in $configs; do
  IFS=: read -r hidden batch threads <<< "$cfg"
  ours=(); theirs=()
  for _ in $(seq "$rounds"); do
    ours+=("$(target/release/examples/mnist --data "$data" --hidden "$hidden" --batch "$batch" \
      --lr 0.05 --momentum 0.9 --epochs "$epochs" --threads "$threads" --standardize --json | sps)")
    theirs+=("$("$python" "$peer" "$data" --hidden "$hidden" --batch "$batch" --lr 0.05 \
      --momentum 0.9 --epochs "$epochs" --threads "$threads" | sps)")
    echo "  run: hidden $hidden batch $batch threads $threads: downhill ${ours[-1]} torch ${theirs[-1]}" >&2
  done
  a=$(printf '%s\n' "${ours[@]}" | median); b=$(printf '%s\n' "${theirs[@]}" | median)
  printf '%-8s %-6s %-8s %14.0f %14.0f %6.2fx\n' "$hidden" "$batch" "$threads" "$a" "$b" \
    "$(python3 -c "print($a/$b)")"
done
