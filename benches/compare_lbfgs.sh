#!/usr/bin/env bash
# downhill's L-BFGS against its anchors, side by side, in one run:
#
#   python3 -m venv /tmp/peers && /tmp/peers/bin/pip install numpy scipy torch scikit-learn
#   bash benches/compare_lbfgs.sh [RUNS]
#
# 1. scipy's L-BFGS-B and PyTorch's LBFGS(line_search_fn="strong_wolfe"), float64, on
#    Rosenbrock in 2, 100 and 1000 dimensions, Beale, Powell's singular function and the
#    landscape example's valley, from the same starts, with the same gradient tolerance
#    (max |∂f/∂xᵢ| ≤ GTOL: L-BFGS-B's pgtol, PyTorch's tolerance_grad; the change tolerances
#    off) and history size: function+gradient evaluations (deterministic: the main figure),
#    iterations and the final f. downhill's side is `cargo bench --bench lbfgs`.
# 2. scikit-learn's MLPClassifier(solver="lbfgs") and `mnist --optimizer lbfgs`: the same
#    shipped digits (8000 train, 2000 test, pixels in [0, 1]), a 784-HIDDEN-10 ReLU network,
#    ITERATIONS iterations, the same L2 (sklearn's alpha/2·‖W‖²/n is downhill's --l2 alpha/n).
#    Test accuracy, and training seconds (downhill: the training loop, evaluation excluded;
#    sklearn: fit), medians of RUNS alternating runs of each, on all cores.
#
# Environment: PYTHON (/tmp/peers/bin/python), GTOL (1e-5), HISTORY (10), HIDDEN (64),
# ITERATIONS (100), ALPHA (1e-4), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
python=${PYTHON:-/tmp/peers/bin/python}
gtol=${GTOL:-1e-5}
history=${HISTORY:-10}
hidden=${HIDDEN:-64}
iterations=${ITERATIONS:-100}
alpha=${ALPHA:-1e-4}
threads=${THREADS:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --release --example mnist --example landscape --quiet
ex=${CARGO_TARGET_DIR:-target}/release/examples

lscpu | grep -E '^Model name' || true
cargo bench --bench lbfgs --quiet -- --history "$history" --gtol "$gtol" > "$out/ours.jsonl"
"$python" benches/compare_lbfgs.py functions --gtol "$gtol" --history "$history" > "$out/peers.jsonl"
"$ex/landscape" --history "$history" --json | tail -n 1 > "$out/landscape.json"

l2=$(python3 -c "print($alpha / 8000)")
for i in $(seq "$runs"); do
  # --valid 0: all 8000 training digits, as scikit-learn gets them.
  line=$("$ex/mnist" --optimizer lbfgs --hidden "$hidden" --epochs "$iterations" --l2 "$l2" \
    --valid 0 --history-size "$history" --threads "$threads" --json | tail -n 1)
  printf '%s\n' "$line" >> "$out/downhill_mlp.jsonl"
  echo "run $i downhill: $line" | cut -c1-160 >&2
  line=$("$python" benches/compare_lbfgs.py sklearn --hidden "$hidden" --iterations "$iterations" \
    --alpha "$alpha")
  printf '%s\n' "$line" >> "$out/sklearn_mlp.jsonl"
  echo "run $i sklearn:  $line" >&2
done
"$python" benches/compare_lbfgs.py report --ours "$out/ours.jsonl" --peers "$out/peers.jsonl" \
  --landscape "$out/landscape.json" --downhill-mlp "$out/downhill_mlp.jsonl" \
  --sklearn-mlp "$out/sklearn_mlp.jsonl" --gtol "$gtol" --history "$history" \
  --hidden "$hidden" --iterations "$iterations" --alpha "$alpha"
