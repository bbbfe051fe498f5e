#!/usr/bin/env python3
"""Replays the transcripts the README and the guide show, and compares them with what the examples print.

    python3 .ci/transcripts.py            # check: exit 1 naming every block that differs
    python3 .ci/transcripts.py --bless    # rewrite the blocks with what the examples print now
    python3 .ci/transcripts.py --figures  # redraw docs/figures/ with the commands the README shows

Options: --keep DIR (write each command's output to DIR, with DIR/index.json naming them), --only
FILE (one markdown file), --list (print the commands without running them), --no-build.

A transcript is a ```text block in README.md or src/guide/*.md whose lines starting with `$ `
are commands (a trailing backslash continues one onto the next line) and whose other lines are
their output. The comment on the line before the block says it is replayed, and which lines of
each command's output the block shows:

    <!-- replay -->                            every line
    <!-- replay: 1..3, $-1..$ -->              lines 1 to 3 and the last two; "..." for the rest
    <!-- replay: 1, /^epoch +1[0-2]\\// -->     line 1 and every line the regex matches
    <!-- replay: /^sgd for/+3 -->              a matching line and the 3 after it
    <!-- replay: 1..4, ~$ -->                  "~": that line's numbers depend on the machine
    <!-- replay: $, keys=test_accuracy,epochs -->   of a JSON line, the "example" field and these
    <!-- replay: $ | 1..2, $ -->               one such list per command of the block, in order

Adding a transcript is adding that comment over a block and running --bless. Every ```text block
that shows a `$ cargo run` command's output must carry one (the check fails on one that does not).

`cargo run --release --example NAME -- ARGS` runs target/release/examples/NAME ARGS (built once,
at the start, by `cargo build --release --examples`), in a scratch directory shared by the
commands of one block; `python3 .ci/sweep.py ARGS` runs that script; other commands are
refused. A command that appears again is run once (in a block that resumes from a checkpoint,
only if the commands before it are the same too).

What the machine decides is not compared: thread counts, examples per second, durations, speed
ratios (the MASKS below), and every number on a "~" line. Everything else must match to the
character, so a changed digit fails until the docs are regenerated with --bless.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- replay(?::\s*(.*?))?\s*-->\s*$")
FENCE = "```"

# Machine-dependent text, masked on both sides before comparing.
MASKS = [
    (re.compile(r"\b\d+ threads\b"), "# threads"),
    (re.compile(r"\b\d+(\.\d+)? (ex/s|samples/s)"), r"# \2"),
    (re.compile(r"\b\d+(\.\d+)?(e-?\d+)? (s|ms|µs|ns)\b"), r"# \3"),
    (re.compile(r"\b\d+(\.\d+)?×"), "#×"),
]
NUMBER = re.compile(r"-?\d+(\.\d+)?(e-?\d+)?")


def mask(line, machine):
    if machine:
        # Numbers of any width, and the padding that lines them up in columns.
        return re.sub(r" +", " ", NUMBER.sub("#", line))
    for pattern, repl in MASKS:
        line = pattern.sub(repl, line)
    return line


# ---------------------------------------------------------------------------------------------
# The spec: which lines of a command's output a block shows.


def split_outside_regex(text, sep):
    """Splits `text` on `sep` characters that are not inside /…/."""
    parts, cur, in_re, esc = [], "", False, False
    for ch in text:
        if esc:
            cur += ch
            esc = False
            continue
        if ch == "\\":
            cur += ch
            esc = True
            continue
        if ch == "/":
            in_re = not in_re
        if ch in sep and not in_re:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


class Spec:
    def __init__(self, text):
        self.text = text.strip()
        self.items = []  # (kind, value, machine)
        self.keys = None
        rest = self.text
        m = re.search(r"(?:^|,)\s*keys=([\w,]+)\s*$", rest)
        if m:
            self.keys = [k for k in m.group(1).split(",") if k]
            rest = rest[:m.start()]
        for item in split_outside_regex(rest, ","):
            machine = item.startswith("~")
            item = item.lstrip("~").strip()
            m = re.fullmatch(r"/((?:[^/\\]|\\.)*)/(?:\+(\d+))?", item)
            if m:
                self.items.append(("regex", (re.compile(m.group(1)), int(m.group(2) or 0)), machine))
                continue
            bounds = item.split("..")
            if len(bounds) == 1:
                bounds = [bounds[0], bounds[0]]
            if len(bounds) != 2 or not all(re.fullmatch(r"\d+|\$(-\d+)?", b) for b in bounds):
                raise ValueError(f"bad item {item!r} in replay spec {text!r}")
            self.items.append(("range", tuple(bounds), machine))
        if not self.items:
            self.items.append(("range", ("1", "$"), False))

    def select(self, lines):
        """The indices of the lines shown, in order, and which of them are machine-dependent."""
        n = len(lines)

        def at(bound):
            if bound == "$":
                return n - 1
            if bound.startswith("$-"):
                return n - 1 - int(bound[2:])
            return int(bound) - 1

        shown, machine = set(), set()
        for kind, value, varies in self.items:
            if kind == "range":
                lo, hi = at(value[0]), at(value[1])
                picked = range(max(lo, 0), min(hi, n - 1) + 1)
            else:
                regex, after = value
                picked = [j for i, line in enumerate(lines) if regex.search(line)
                          for j in range(i, min(i + after, n - 1) + 1)]
            shown.update(picked)
            if varies:
                machine.update(picked)
        return sorted(shown), machine


def json_view(line, keys):
    """Of a JSON line, the "example" field and `keys`, in the line's order, "..." for the rest."""
    try:
        obj = json.loads(line)
    except ValueError:
        return line
    if not isinstance(obj, dict) or keys is None:
        return line
    fields = []
    for key in obj:
        m = re.search(r'"%s":("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^,}]*)' % re.escape(key), line)
        fields.append((key, m.group(0) if m else json.dumps({key: obj[key]})[1:-1]))
    out, skipped = [], False
    for key, text in fields:
        if key == "example" or key in keys:
            if skipped:
                out.append("...")
            out.append(text)
            skipped = False
        else:
            skipped = True
    if skipped:
        out.append("...")
    return "{" + ",".join(out) + "}"


def view(spec, output):
    """The lines a block shows of `output`: (text, machine-dependent) pairs, "..." for gaps."""
    lines = output.splitlines()
    shown, machine = spec.select(lines)
    out, prev = [], -1
    for i in shown:
        if i != prev + 1:
            out.append(("...", False))
        out.append((json_view(lines[i], spec.keys), i in machine))
        prev = i
    if shown and shown[-1] != len(lines) - 1 or not shown and lines:
        out.append(("...", False))
    return out


# ---------------------------------------------------------------------------------------------
# Finding the blocks.


class Block:
    def __init__(self, path, marker_line, start, end, specs, commands):
        self.path = path
        self.marker_line = marker_line  # index of the marker
        self.start = start  # index of the line after the opening fence
        self.end = end  # index of the closing fence
        self.specs = specs
        self.commands = commands  # (shown text lines, argv)


def parse_commands(body):
    """Splits a block's lines into [(command text lines, argv, output lines)]."""
    out, i = [], 0
    while i < len(body):
        if not body[i].startswith("$ "):
            raise ValueError(f"output before the first command: {body[i]!r}")
        shown = [body[i]]
        while shown[-1].endswith("\\") and i + 1 < len(body):
            i += 1
            shown.append(body[i])
        text = " ".join(s.rstrip("\\").strip() for s in shown)[2:]
        i += 1
        output = []
        while i < len(body) and not body[i].startswith("$ "):
            output.append(body[i])
            i += 1
        out.append((shown, shlex.split(text), output))
    return out


def find_blocks(path):
    lines = path.read_text().split("\n")
    blocks, unmarked = [], []
    i = 0
    while i < len(lines):
        if lines[i].startswith(FENCE):
            lang = lines[i][3:].strip()
            j = i + 1
            while j < len(lines) and not lines[j].startswith(FENCE):
                j += 1
            body = lines[i + 1:j]
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            marker = MARKER.match(lines[k]) if k >= 0 else None
            shows_output = any(b.startswith(("$ cargo run", "$ python3 .ci/")) for b in body) and any(
                not b.startswith("$ ") and not b.endswith("\\") and b.strip() for b in body)
            if marker:
                if lang != "text":
                    raise ValueError(f"{path}:{i + 1}: a replayed block must be ```text")
                commands = parse_commands(body)
                specs = [Spec(s) for s in split_outside_regex(marker.group(1) or "", "|")] or [Spec("")]
                if len(specs) == 1:
                    specs = specs * len(commands)
                if len(specs) != len(commands):
                    raise ValueError(f"{path}:{k + 1}: {len(specs)} specs for {len(commands)} commands")
                blocks.append(Block(path, k, i + 1, j, specs, commands))
            elif lang == "text" and shows_output:
                unmarked.append(f"{path.relative_to(ROOT)}:{i + 1}")
            i = j + 1
        else:
            i += 1
    return blocks, unmarked


# ---------------------------------------------------------------------------------------------
# Running the commands.


def example_argv(argv, where):
    """`cargo run --release --example NAME -- ARGS` as the built binary's argv (and
    `python3 .ci/sweep.py ARGS`, which runs the built mnist, as itself)."""
    if argv[:2] == ["python3", ".ci/sweep.py"]:
        return [sys.executable, str(ROOT / ".ci" / "sweep.py")] + argv[2:]
    if argv[:4] != ["cargo", "run", "--release", "--example"] or len(argv) < 5:
        raise ValueError(f"{where}: only `cargo run --release --example NAME [-- ARGS]` and "
                         f"`python3 .ci/sweep.py` are replayed")
    rest = argv[5:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    elif rest:
        raise ValueError(f"{where}: arguments go after `--`")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return [str(target / "release" / "examples" / argv[4])] + rest


class Runner:
    def __init__(self, keep):
        self.cache = {}
        self.keep = keep
        self.index = []
        if keep:
            keep.mkdir(parents=True, exist_ok=True)

    def run(self, key, argv, cwd, where):
        if key in self.cache:
            return self.cache[key]
        proc = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, env={**os.environ, "NO_COLOR": "1"})
        if proc.returncode != 0:
            raise RuntimeError(f"{where}: {' '.join(argv)} exited {proc.returncode}: "
                               f"{proc.stderr.strip()[-500:]}")
        self.cache[key] = proc.stdout
        if self.keep:
            name = f"{len(self.index):02d}-{Path(argv[0]).name}.txt"
            (self.keep / name).write_text(proc.stdout)
            self.index.append({"file": name, "command": shlex.join(key[-1]), "args": argv[1:],
                               "example": Path(argv[0]).name})
            (self.keep / "index.json").write_text(json.dumps(self.index, indent=1) + "\n")
        return proc.stdout


def replay(block, runner):
    """Runs the block's commands; returns (the block's new body, whether it matches the old)."""
    rel = block.path.relative_to(ROOT)
    where = f"{rel}:{block.start}"
    new_body, same = [], True
    # A block that resumes from a checkpoint depends on the commands before it in the block.
    stateful = any("--resume" in argv for _, argv, _ in block.commands)
    prefix = ()
    with tempfile.TemporaryDirectory(prefix="replay-") as cwd:
        for (shown, argv, expected), spec in zip(block.commands, block.specs):
            prefix = (prefix if stateful else ()) + (tuple(argv),)
            output = runner.run(prefix, example_argv(argv, where), cwd, where)
            got = view(spec, output)
            new_body += shown + [text for text, _ in got]
            if len(got) != len(expected):
                same = False
                continue
            for (text, machine), old in zip(got, expected):
                if mask(text, machine) != mask(old, machine):
                    same = False
    return new_body, same


def diff(old, new):
    import difflib
    return "\n".join(difflib.unified_diff(old, new, "shown", "printed now", lineterm="", n=1))


def figure_commands():
    """The `--plot docs/figures` commands the README shows, as argv lists."""
    text = (ROOT / "README.md").read_text()
    found = re.findall(r"`(cargo run --release --example [^`]*--plot docs/figures[^`]*)`", text)
    return [shlex.split(c) for c in dict.fromkeys(found)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bless", action="store_true", help="rewrite the blocks with today's output")
    ap.add_argument("--figures", action="store_true", help="redraw docs/figures/ as the README says")
    ap.add_argument("--keep", type=Path, help="write each command's output into this directory")
    ap.add_argument("--only", type=Path, help="only this markdown file")
    ap.add_argument("--list", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--no-build", action="store_true", help="use the examples as built")
    args = ap.parse_args()

    files = [ROOT / "README.md"] + sorted((ROOT / "src" / "guide").glob("*.md"))
    if args.only:
        files = [args.only.resolve()]
    blocks, unmarked = [], []
    for f in files:
        b, u = find_blocks(f)
        blocks += b
        unmarked += u
    if args.list:
        for b in blocks:
            for shown, argv, _ in b.commands:
                print(f"{b.path.relative_to(ROOT)}:{b.start}: {shlex.join(argv)}")
        for c in figure_commands() if args.figures else []:
            print(f"README.md (figure): {shlex.join(c)}")
        return 0
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--examples", "--quiet"], cwd=ROOT, check=True)

    if args.figures:
        for argv in figure_commands():
            print(f"drawing: {shlex.join(argv)}", flush=True)
            subprocess.run(example_argv(argv, "README.md"), cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
        return 0

    runner = Runner(args.keep)
    failed = list(unmarked)
    for f in unmarked:
        print(f"FAIL {f}: shows a command's output but has no <!-- replay --> marker")
    edits = {}
    for b in blocks:
        rel = b.path.relative_to(ROOT)
        commands = "; ".join(shlex.join(a[2:] if a[:2] == ["cargo", "run"] else a)
                             for _, a, _ in b.commands)
        new_body, same = replay(b, runner)
        old_body = b.path.read_text().split("\n")[b.start:b.end]
        if same:
            print(f"ok   {rel}:{b.start}: {commands}", flush=True)
        elif args.bless:
            print(f"new  {rel}:{b.start}: {commands}", flush=True)
        else:
            failed.append(f"{rel}:{b.start}")
            print(f"FAIL {rel}:{b.start}: {commands}\n{diff(old_body, new_body)}", flush=True)
        # A block that matches keeps its text (its timings too): blessing rewrites only what moved.
        if args.bless and not same:
            edits.setdefault(b.path, []).append((b.start, b.end, new_body))
    for path, changes in edits.items():
        lines = path.read_text().split("\n")
        for start, end, body in sorted(changes, reverse=True):
            lines[start:end] = body
        path.write_text("\n".join(lines))
        print(f"rewrote {len(changes)} block(s) in {path.relative_to(ROOT)}")
    if unmarked:
        print(f"\n{len(unmarked)} block(s) show output no one replays: mark each with "
              f"<!-- replay --> (and the lines it shows), then run --bless")
    differ = [f for f in failed if f not in unmarked]
    if differ and not args.bless:
        print(f"\n{len(differ)} transcript(s) differ from what the examples print: "
              f"regenerate them with `python3 .ci/transcripts.py --bless` and review the diff")
    if unmarked or differ and not args.bless:
        return 1
    print(f"{len(blocks)} transcripts, {len(runner.cache)} commands run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
