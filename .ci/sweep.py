#!/usr/bin/env python3
"""Chooses a recipe the way it should be chosen: on the validation split, never on the test set.

    python3 .ci/sweep.py nesterov|adam|lecture

Runs `mnist` over a small grid (each run holds out the same 1000 training images, --valid 1000
--seed 0), prints every run's final validation accuracy and loss, picks the run with the best
validation accuracy (ties: the lower validation loss, then the earlier row), and prints the
test accuracy of that run alone: the test set's one look. The other runs' test accuracies are
not shown, because a choice made after seeing them would be a choice made on the test set.

Uses target/release/examples/mnist as built (`cargo build --release --examples`).
"""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name: (what it is, the fixed flags, [(flag, values)])
GRIDS = {
    "nesterov": (
        "Nesterov momentum with cosine annealing, 20 epochs",
        ["--optimizer", "nesterov", "--schedule", "cosine"],
        [("--lr", ["0.05", "0.1", "0.2", "0.4"]), ("--weight-decay", ["0", "1e-4", "1e-3"])],
    ),
    "adam": (
        "Adam with cosine annealing, 20 epochs",
        ["--optimizer", "adam", "--schedule", "cosine"],
        [("--lr", ["1e-3", "3e-3", "1e-2"]), ("--weight-decay", ["0", "1e-4"])],
    ),
    "lecture": (
        "the lecture's network (sigmoid hidden and output layers, MSE), plain SGD, batches of 16, 30 epochs",
        ["--activation", "sigmoid", "--output", "sigmoid", "--loss", "mse", "--momentum", "0",
         "--batch", "16", "--epochs", "30"],
        [("--lr", ["3", "10", "30"])],
    ),
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in GRIDS:
        print(__doc__)
        return 2
    what, fixed, axes = GRIDS[sys.argv[1]]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    mnist = target / "release" / "examples" / "mnist"
    print(f"{what}; validation: 1000 training images held out, the same in every run")
    rows = []
    for values in itertools.product(*(v for _, v in axes)):
        flags = [x for (flag, _), v in zip(axes, values) for x in (flag, v)]
        out = subprocess.run([str(mnist), *fixed, *flags, "--json"], check=True,
                             capture_output=True, text=True).stdout
        run = json.loads(out.strip().splitlines()[-1])
        assert run["valid_size"] > 0 and run["test_evaluations"] == 1, run
        rows.append((" ".join(flags), run))
        print(f"  {' '.join(flags):<32} valid_acc {run['valid_accuracy']:.4f} "
              f"valid_loss {run['valid_loss']:.4f}", flush=True)
    best = min(range(len(rows)),
               key=lambda i: (-rows[i][1]["valid_accuracy"], rows[i][1]["valid_loss"], i))
    flags, run = rows[best]
    print(f"best on validation: {flags} (valid_acc {run['valid_accuracy']:.4f})")
    print(f"its test accuracy, the one look at the test set: {run['test_accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
