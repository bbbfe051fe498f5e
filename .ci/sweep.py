#!/usr/bin/env python3
"""Chooses a recipe the way it should be chosen: on the validation split, never on the test set.

    python3 .ci/sweep.py nesterov|adam|lecture

Runs `mnist` over a small grid (each run holds out the same 1000 training images, --valid 1000
--seed 0), prints every run's final validation accuracy and loss, picks the run with the lowest
validation loss (ties: the higher validation accuracy, then the earlier row), and prints the
test accuracy of that run alone: the test set's one look. The loss, not the accuracy, decides:
accuracy on 1000 images moves in steps of 0.1% and ties often, while the loss is smooth and
also counts how confidently wrong the network is. The other runs' test accuracies are
not shown, because a choice made after seeing them would be a choice made on the test set.

Uses target/release/examples/mnist as built (`cargo build --release --examples`).

    python3 .ci/sweep.py NAME --check FILE...  [--from OUTPUT]

also checks that each FILE shows the winner: a `$ cargo run --release --example mnist` command
with the grid's fixed flags and the winning values (exit 1 if one does not). --from OUTPUT reads
the sweep's winner from a saved run of this script (the transcript replay keeps one) instead of
running the grid again.
"""

import argparse
import itertools
import json
import os
import re
import shlex
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
        [("--lr", ["1e-3", "3e-3", "1e-2", "3e-2"]), ("--weight-decay", ["0", "1e-4"])],
    ),
    "lecture": (
        "the lecture's network (sigmoid hidden and output layers, MSE), plain SGD, batches of 16, 30 epochs",
        ["--activation", "sigmoid", "--output", "sigmoid", "--loss", "mse", "--momentum", "0",
         "--batch", "16", "--epochs", "30"],
        [("--lr", ["3", "10", "30"])],
    ),
}


def shown_commands(path):
    """The flags of every `$ cargo run --release --example mnist` command `path` shows."""
    text = re.sub(r"\\\n\s*", " ", Path(path).read_text())
    prefix = ["cargo", "run", "--release", "--example", "mnist", "--"]
    out = []
    for line in text.splitlines():
        if line.startswith("$ cargo run --release --example mnist -- "):
            argv = shlex.split(line[2:])
            if argv[:6] == prefix:
                out.append(argv[6:])
    return out


def shows(flags_seen, wanted):
    """Whether a command's flags hold every (flag, value) of `wanted`."""
    pairs = {(a, b) for a, b in zip(flags_seen, flags_seen[1:])}
    return all(p in pairs for p in wanted)


def check(files, fixed, winner):
    wanted = list(zip(fixed[::2], fixed[1::2])) + list(zip(winner[::2], winner[1::2]))
    ok = True
    for path in files:
        if any(shows(c, wanted) for c in shown_commands(path)):
            print(f"ok   {path} shows the winner: {' '.join(fixed + winner)}")
        else:
            print(f"FAIL {path} shows no mnist command with {' '.join(fixed + winner)}")
            ok = False
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("grid", choices=sorted(GRIDS))
    ap.add_argument("--check", nargs="+", default=[], metavar="FILE")
    ap.add_argument("--from", dest="saved", type=Path, metavar="OUTPUT")
    args = ap.parse_args()
    what, fixed, axes = GRIDS[args.grid]
    if args.saved:
        m = re.search(r"^best on validation: (.*) \(valid_loss", args.saved.read_text(), re.M)
        if not m or not args.saved.read_text().startswith(what):
            print(f"{args.saved}: not a saved run of the {args.grid} sweep")
            return 1
        return 0 if check(args.check, fixed, m.group(1).split()) else 1
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
               key=lambda i: (rows[i][1]["valid_loss"], -rows[i][1]["valid_accuracy"], i))
    flags, run = rows[best]
    print(f"best on validation: {flags} (valid_loss {run['valid_loss']:.4f})")
    print(f"its test accuracy, the one look at the test set: {run['test_accuracy']:.4f}")
    return 0 if check(args.check, fixed, flags.split()) else 1


if __name__ == "__main__":
    sys.exit(main())
