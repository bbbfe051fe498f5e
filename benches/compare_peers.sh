#!/usr/bin/env bash
# downhill against its two peers on the same CPU, same protocol, measured in one run,
# alternating: PyTorch (torch_mlp.py) and numpy on OpenBLAS (numpy_mlp.py).
#
#   python3 -m venv /tmp/peers && /tmp/peers/bin/pip install numpy torch threadpoolctl
#   bash benches/compare_peers.sh [ROUNDS] [PEERS_DIR]
#
# Protocol (every side): MLP 784-H-10 (ReLU), f32, SGD lr 0.05 momentum 0.9, pixels
# standardised per pixel on the training split, reshuffled every epoch, last partial batch
# dropped, samples/s over training-loop time only. Prints one line per run and, per
# configuration, the median samples/s of each side and downhill's ratio to each peer.
#
# Environment: DATA (an MNIST-format directory; default the shipped digits), EPOCHS (10),
# CONFIGS ("hidden:batch:threads ..."), PYTHON (/tmp/peers/bin/python), MNIST_FLAGS (extra
# flags for downhill, e.g. "--sparse-input never").
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
peers=${2:-../shared/peers}
python=${PYTHON:-/tmp/peers/bin/python}
data=${DATA:-data/mnist-10k}
epochs=${EPOCHS:-10}
configs=${CONFIGS:-"256:128:1 256:128:2 1024:256:1 1024:256:2"}
extra=${MNIST_FLAGS:-}
cargo build --release --example mnist --quiet
mnist=${CARGO_TARGET_DIR:-target}/release/examples/mnist

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
sps() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["samples_per_s"])'; }
# Runs a command to the end, then parses its last line: a parser started on a pipe would
# start alongside the run and take CPU from it (on two cores, from the run's second thread).
sps_of() { local out; out=$("$@"); printf '%s\n' "$out" | sps; }

lscpu | grep -E '^Model name' || true
printf '%-7s %-6s %-8s %12s %12s %12s %9s %9s\n' hidden batch threads downhill torch numpy vs_torch vs_numpy
for cfg in $configs; do
  IFS=: read -r hidden batch threads <<< "$cfg"
  ours=(); torch=(); numpy=()
  for _ in $(seq "$rounds"); do
    # shellcheck disable=SC2086
    ours+=("$(sps_of "$mnist" --data "$data" --hidden "$hidden" --batch "$batch" --lr 0.05 \
      --momentum 0.9 --epochs "$epochs" --threads "$threads" --standardize $extra --json)")
    torch+=("$(sps_of "$python" "$peers/torch_mlp.py" "$data" --hidden "$hidden" --batch "$batch" \
      --lr 0.05 --momentum 0.9 --epochs "$epochs" --threads "$threads")")
    numpy+=("$(sps_of "$python" "$peers/numpy_mlp.py" "$data" --hidden "$hidden" --batch "$batch" \
      --lr 0.05 --momentum 0.9 --epochs "$epochs" --threads "$threads")")
    echo "  run: $hidden/$batch/$threads: downhill ${ours[-1]} torch ${torch[-1]} numpy ${numpy[-1]}" >&2
  done
  a=$(printf '%s\n' "${ours[@]}" | median)
  b=$(printf '%s\n' "${torch[@]}" | median)
  c=$(printf '%s\n' "${numpy[@]}" | median)
  printf '%-7s %-6s %-8s %12.0f %12.0f %12.0f %8.2fx %8.2fx\n' "$hidden" "$batch" "$threads" \
    "$a" "$b" "$c" "$(python3 -c "print($a/$b)")" "$(python3 -c "print($a/$c)")"
done
