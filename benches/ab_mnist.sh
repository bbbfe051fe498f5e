#!/usr/bin/env bash
# Two builds of the `mnist` example against each other, alternating, in one run: samples/s
# per configuration, the median of each side and the ratio B/A. For "same speed" claims
# across a change: build A (say, a worktree of the commit before), build B, then
#
#   bash benches/ab_mnist.sh ROUNDS path/to/mnist-A path/to/mnist-B
#
# Each round runs every configuration once with A, then once with B (then B first the next
# round, so neither always runs on a warmer machine). Environment: DATA (an MNIST-format
# directory; default the shipped digits), EPOCHS (10), CONFIGS ("hidden:batch:threads ...",
# default the two networks of the peer table on one and two threads), FLAGS (extra flags for
# both sides).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:?rounds}
a=${2:?mnist binary A}
b=${3:?mnist binary B}
data=${DATA:-data/mnist-10k}
epochs=${EPOCHS:-10}
configs=${CONFIGS:-"256:128:1 256:128:2 1024:256:1 1024:256:2"}
extra=${FLAGS:-}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Runs to the end, then parses the last line (a parser on a pipe would take CPU from the run).
sps_of() {
  local out
  out=$("$@")
  printf '%s\n' "$out" | tail -n 1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["samples_per_s"])'
}
run() {
  local bin=$1 hidden=$2 batch=$3 threads=$4
  # shellcheck disable=SC2086
  sps_of "$bin" --data "$data" --hidden "$hidden" --batch "$batch" --lr 0.05 --momentum 0.9 \
    --epochs "$epochs" --threads "$threads" --standardize $extra --json
}

lscpu | grep -E '^Model name' || true
printf '%-7s %-6s %-8s %12s %12s %8s\n' hidden batch threads A B B/A
for cfg in $configs; do
  IFS=: read -r hidden batch threads <<< "$cfg"
  as=(); bs=()
  for r in $(seq "$rounds"); do
    if (( r % 2 )); then
      as+=("$(run "$a" "$hidden" "$batch" "$threads")")
      bs+=("$(run "$b" "$hidden" "$batch" "$threads")")
    else
      bs+=("$(run "$b" "$hidden" "$batch" "$threads")")
      as+=("$(run "$a" "$hidden" "$batch" "$threads")")
    fi
    echo "  round $r $hidden/$batch/$threads: A ${as[-1]} B ${bs[-1]}" >&2
  done
  ma=$(printf '%s\n' "${as[@]}" | median)
  mb=$(printf '%s\n' "${bs[@]}" | median)
  printf '%-7s %-6s %-8s %12.0f %12.0f %7.3fx\n' "$hidden" "$batch" "$threads" "$ma" "$mb" \
    "$(python3 -c "print($mb/$ma)")"
done
