"""downhill's L-BFGS beside scipy's L-BFGS-B, PyTorch's LBFGS and scikit-learn's
MLPClassifier(solver="lbfgs"): the Python side of benches/compare_lbfgs.sh.

    python compare_lbfgs.py functions --gtol 1e-5 --history 10 > peers.jsonl
    python compare_lbfgs.py sklearn --data DIR --hidden 64 --iterations 100 --alpha 1e-4
    python compare_lbfgs.py report --ours functions.jsonl --peers peers.jsonl \
        --landscape landscape.json --valley peers_valley.json --downhill-mlp a.jsonl --sklearn-mlp b.jsonl

`functions` runs scipy and PyTorch (float64) on the test functions of benches/lbfgs.rs, from
the same starts, with the same gradient tolerance (max |g_i| <= gtol: L-BFGS-B's pgtol,
PyTorch's tolerance_grad; both change tolerances off) and history size; and counts the
iterations each takes to f <= 1e-6 in the landscape example's valley. `sklearn` trains one
MLP and prints its test accuracy and fit time. `report` prints the markdown tables.
"""
import argparse
import json
import statistics
import time

import numpy as np


def rosen(x):
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rosen_grad(x):
    g = np.zeros_like(x)
    t = x[1:] - x[:-1] ** 2
    g[:-1] += -400.0 * x[:-1] * t - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * t
    return g


BEALE_C = (1.5, 2.25, 2.625)


def beale(p):
    x, y = p
    return float(sum((c - x + x * y ** k) ** 2 for k, c in enumerate(BEALE_C, 1)))


def beale_grad(p):
    x, y = p
    g = np.zeros(2)
    for k, c in enumerate(BEALE_C, 1):
        r = c - x + x * y ** k
        g[0] += 2 * r * (y ** k - 1)
        g[1] += 2 * r * x * k * y ** (k - 1)
    return g


def powell(x):
    return float((x[0] + 10 * x[1]) ** 2 + 5 * (x[2] - x[3]) ** 2 + (x[1] - 2 * x[2]) ** 4
                 + 10 * (x[0] - x[3]) ** 4)


def powell_grad(x):
    a, b, c, d = x[0] + 10 * x[1], x[2] - x[3], x[1] - 2 * x[2], x[0] - x[3]
    return np.array([2 * a + 40 * d ** 3, 20 * a + 4 * c ** 3, 10 * b - 8 * c ** 3,
                     -10 * b - 40 * d ** 3])


def valley(x):
    return float(0.5 * (x[0] ** 2 + 50 * x[1] ** 2))


def valley_grad(x):
    return np.array([x[0], 50 * x[1]])


def rosen_start(n):
    return np.array([-1.2 if i % 2 == 0 else 1.0 for i in range(n)])


FUNCTIONS = [
    ("rosenbrock", rosen_start(2), rosen, rosen_grad),
    ("rosenbrock", rosen_start(100), rosen, rosen_grad),
    ("rosenbrock", rosen_start(1000), rosen, rosen_grad),
    ("beale", np.array([1.0, 1.0]), beale, beale_grad),
    ("powell", np.array([3.0, -1.0, 0.0, 1.0]), powell, powell_grad),
    ("valley", np.array([-10.0, 1.5]), valley, valley_grad),
]


def run_scipy(x0, f, g, gtol, history):
    from scipy.optimize import minimize
    r = minimize(lambda x: (f(x), g(x)), x0, jac=True, method="L-BFGS-B",
                 options=dict(gtol=gtol, ftol=0.0, maxiter=100000, maxfun=10 ** 7,
                              maxcor=history))
    return dict(iterations=int(r.nit), evaluations=int(r.nfev), final_f=float(r.fun),
                max_grad=float(np.abs(g(r.x)).max()), message=str(r.message))


def torch_lbfgs(x, history, gtol, max_iter):
    import torch
    return torch.optim.LBFGS([x], lr=1, max_iter=max_iter, max_eval=10 ** 8,
                             tolerance_grad=gtol, tolerance_change=0.0,
                             history_size=history, line_search_fn="strong_wolfe")


def run_torch(x0, f, gtol, history):
    import torch
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = torch_lbfgs(x, history, gtol, 100000)
    evals = [0]

    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        evals[0] += 1
        return loss

    opt.step(closure)
    state = opt.state[opt._params[0]]
    return dict(iterations=int(state["n_iter"]), evaluations=evals[0],
                final_f=float(f(x).item()), max_grad=float(x.grad.abs().max().item()))


def torch_version(name, x):
    """The same functions on torch tensors."""
    import torch
    if name == "rosenbrock":
        return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
    if name == "beale":
        return sum((c - x[0] + x[0] * x[1] ** k) ** 2 for k, c in enumerate(BEALE_C, 1))
    if name == "powell":
        return ((x[0] + 10 * x[1]) ** 2 + 5 * (x[2] - x[3]) ** 2 + (x[1] - 2 * x[2]) ** 4
                + 10 * (x[0] - x[3]) ** 4)
    return 0.5 * (x[0] ** 2 + 50 * x[1] ** 2) + torch.zeros(())


def valley_iterations(history, goal=1e-6):
    """Iterations each peer takes to f <= goal in the valley from (-10, 1.5)."""
    from scipy.optimize import minimize
    import torch
    seen = []
    minimize(lambda x: (valley(x), valley_grad(x)), np.array([-10.0, 1.5]), jac=True,
             method="L-BFGS-B", callback=lambda xk: seen.append(valley(xk)),
             options=dict(gtol=1e-12, ftol=0.0, maxcor=history, maxiter=100))
    scipy_iters = next((i + 1 for i, v in enumerate(seen) if v <= goal), None)
    x = torch.tensor([-10.0, 1.5], dtype=torch.float64, requires_grad=True)
    opt = torch_lbfgs(x, history, 1e-12, 1)
    torch_iters = None

    def closure():
        opt.zero_grad()
        loss = torch_version("valley", x)
        loss.backward()
        return loss

    for i in range(1, 101):
        opt.step(closure)
        if valley(x.detach().numpy()) <= goal:
            torch_iters = i
            break
    return dict(scipy=scipy_iters, torch=torch_iters)


def functions(args):
    import torch
    torch.set_default_dtype(torch.float64)
    for name, x0, f, g in FUNCTIONS:
        s = run_scipy(x0, f, g, args.gtol, args.history)
        t = run_torch(x0, lambda x, name=name: torch_version(name, x), args.gtol, args.history)
        print(json.dumps(dict(function=name, n=len(x0), scipy=s, torch=t)))
    print(json.dumps(dict(valley_to_1e6=valley_iterations(args.history))))


def read_idx(path):
    """An IDX file (gzipped) as a numpy array."""
    import gzip
    import struct
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(directory):
    """Train and test images as float32 in [0, 1] (what the mnist example reads), and labels."""
    out = []
    for split in ("train", "t10k"):
        x = read_idx(f"{directory}/{split}-images-idx3-ubyte.gz")
        y = read_idx(f"{directory}/{split}-labels-idx1-ubyte.gz")
        out += [x.reshape(len(x), -1).astype(np.float32) / np.float32(255), y.astype(np.int64)]
    return out


def sklearn(args):
    from sklearn.neural_network import MLPClassifier
    import warnings
    xtr, ytr, xte, yte = load(args.data)
    clf = MLPClassifier(hidden_layer_sizes=(args.hidden,), activation="relu", solver="lbfgs",
                        alpha=args.alpha, max_iter=args.iterations, tol=0.0, random_state=args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        clf.fit(xtr, ytr)
        seconds = time.perf_counter() - t
    print(json.dumps(dict(test_accuracy=float(clf.score(xte, yte)), seconds=seconds,
                          iterations=int(clf.n_iter_), dtype=str(clf.coefs_[0].dtype))))


def lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def report(args):
    ours = lines(args.ours)
    peers = lines(args.peers)
    valley_peers = peers[-1]["valley_to_1e6"]
    landscape = json.loads(open(args.landscape).read())
    print(f"Test functions, gradient tolerance {args.gtol} (max |∂f/∂xᵢ|), history {args.history}, "
          "change tolerances off; function+gradient evaluations (iterations):\n")
    print("| function | n | downhill | scipy L-BFGS-B | PyTorch LBFGS | downhill / scipy | "
          "final f: downhill | scipy | PyTorch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    worst = 0.0
    for o, p in zip(ours, peers):
        assert (o["function"], o["n"]) == (p["function"], p["n"]), (o, p)
        s, t = p["scipy"], p["torch"]
        ratio = o["function_evals"] / s["evaluations"]
        worst = max(worst, ratio)
        print(f"| {o['function']} | {o['n']} | {o['function_evals']} ({o['iterations']}) | "
              f"{s['evaluations']} ({s['iterations']}) | {t['evaluations']} ({t['iterations']}) | "
              f"{ratio:.3f} | {o['final_f']:.1e} | {s['final_f']:.1e} | {t['final_f']:.1e} |")
    print(f"\nworst downhill / scipy evaluation ratio: {worst:.3f} (the bar: 1.25)")
    print(f"\nvalley ½(x² + 50·y²) from (−10, 1.5), iterations to f ≤ 1e-6: downhill "
          f"{landscape['lbfgs_steps']}, scipy {valley_peers['scipy']}, PyTorch "
          f"{valley_peers['torch']}; fixed-step GD {landscape['gd_steps']}")
    ours_mlp, theirs = lines(args.downhill_mlp), lines(args.sklearn_mlp)
    if ours_mlp and theirs:
        med = lambda rows, k: statistics.median(r[k] for r in rows)
        acc_o, acc_s = med(ours_mlp, "test_accuracy"), med(theirs, "test_accuracy")
        t_o, t_s = med(ours_mlp, "seconds"), med(theirs, "seconds")
        print(f"\nMLP 784-{args.hidden}-10 ReLU on the shipped digits (8000 train, 2000 test), "
              f"L2 alpha {args.alpha} (downhill --l2 alpha/8000), {args.iterations} iterations, "
              f"medians of {len(ours_mlp)} alternating runs:\n")
        print("| | test accuracy | iterations | training seconds | dtype |")
        print("| --- | ---: | ---: | ---: | --- |")
        print(f"| downhill `--optimizer lbfgs` | {acc_o:.4f} | {med(ours_mlp, 'epochs'):.0f} | "
              f"{t_o:.2f} | float32 |")
        print(f"| scikit-learn `MLPClassifier(solver=\"lbfgs\")` | {acc_s:.4f} | "
              f"{med(theirs, 'iterations'):.0f} | {t_s:.2f} | {theirs[0]['dtype']} |")
        print(f"\naccuracy difference {acc_o - acc_s:+.4f} (the bar: ≥ −0.005); time ratio "
              f"downhill / sklearn {t_o / t_s:.3f} (the bar: ≤ 0.333)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("functions")
    f.add_argument("--gtol", type=float, default=1e-5)
    f.add_argument("--history", type=int, default=10)
    s = sub.add_parser("sklearn")
    s.add_argument("--data", default="data/mnist-10k")
    s.add_argument("--hidden", type=int, default=64)
    s.add_argument("--iterations", type=int, default=100)
    s.add_argument("--alpha", type=float, default=1e-4)
    s.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("report")
    for name in ("--ours", "--peers", "--landscape", "--downhill-mlp", "--sklearn-mlp"):
        r.add_argument(name, required=True)
    r.add_argument("--gtol", type=float, default=1e-5)
    r.add_argument("--history", type=int, default=10)
    r.add_argument("--hidden", type=int, default=64)
    r.add_argument("--iterations", type=int, default=100)
    r.add_argument("--alpha", type=float, default=1e-4)
    args = ap.parse_args()
    {"functions": functions, "sklearn": sklearn, "report": report}[args.cmd](args)


if __name__ == "__main__":
    main()
