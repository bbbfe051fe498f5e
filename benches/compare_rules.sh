#!/usr/bin/env bash
# Every update rule against fused momentum, on the same data and model, alternating, with
# medians and ratios: the issue's "every rule at full speed" target.
#
#   bash benches/compare_rules.sh [ROUNDS]
#
# Environment: DATA (an MNIST-format directory; default the shipped digits; for the target,
# 60,000 images: `python3 benches/denser_mnist.py /tmp/mnist60k --density 0.19`), EPOCHS (2),
# THREADS (1), HIDDEN (256), BATCH (128). Prints each run and, per rule, the median samples/s
# and its ratio to momentum's median.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
data=${DATA:-data/mnist-10k}
epochs=${EPOCHS:-2}
threads=${THREADS:-1}
hidden=${HIDDEN:-256}
batch=${BATCH:-128}
cargo build --release --example mnist --quiet
mnist=${CARGO_TARGET_DIR:-target}/release/examples/mnist

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
sps() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["samples_per_s"])'; }
# Runs a command to the end, then parses its last line: a parser started on a pipe would
# start alongside the run and take CPU from it (on two cores, from the run's second thread).
sps_of() { local out; out=$("$@"); printf '%s\n' "$out" | sps; }

rules=(
  "momentum|--optimizer momentum --lr 0.05 --momentum 0.9"
  "plain|--optimizer sgd --lr 0.05 --momentum 0"
  "momentum+decay|--optimizer momentum --lr 0.05 --momentum 0.9 --weight-decay 1e-3"
  "nesterov+decay|--optimizer nesterov --lr 0.05 --momentum 0.9 --weight-decay 1e-3"
  "momentum+clip|--optimizer momentum --lr 0.05 --momentum 0.9 --clip 1"
  "rmsprop|--optimizer rmsprop --lr 0.001"
  "adam|--optimizer adam --lr 0.001"
  "adamw|--optimizer adamw --lr 0.001 --weight-decay 1e-2"
)
lscpu | grep -E '^Model name' || true
declare -A runs
for _ in $(seq "$rounds"); do
  for entry in "${rules[@]}"; do
    name=${entry%%|*}
    # shellcheck disable=SC2086
    v=$(sps_of "$mnist" --data "$data" --hidden "$hidden" --batch "$batch" --epochs "$epochs" \
      --threads "$threads" ${entry#*|} --json)
    runs[$name]="${runs[$name]:-} $v"
    echo "  run: $name $v" >&2
  done
done
base=$(printf '%s\n' ${runs[momentum]} | median)
printf '%-16s %12s %9s\n' rule samples/s vs_momentum
for entry in "${rules[@]}"; do
  name=${entry%%|*}
  m=$(printf '%s\n' ${runs[$name]} | median)
  printf '%-16s %12.0f %8.3fx\n' "$name" "$m" "$(python3 -c "print($m/$base)")"
done
