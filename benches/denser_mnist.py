"""Write a denser MNIST-format directory from the shipped digits, for the sparse-path
benchmarks: 60,000 training and 10,000 test images made from the 8000 + 2000 shipped ones,
each shifted by up to 2 pixels and its strokes thickened by a 3 x 3 maximum filter until the
training set's density (fraction of nonzero pixels) reaches the target (0.5 by default; the
shipped digits have 0.19). Labels are the source digits', so accuracy still means something.

usage: /tmp/peers/bin/python benches/denser_mnist.py OUT_DIR [--density 0.5] [--train 60000]
       [--test 10000] [--seed 0] [--src data/mnist-10k]
"""
import argparse, gzip, os, struct

import numpy as np

p = argparse.ArgumentParser()
p.add_argument('out')
p.add_argument('--density', type=float, default=0.5)
p.add_argument('--train', type=int, default=60000)
p.add_argument('--test', type=int, default=10000)
p.add_argument('--seed', type=int, default=0)
p.add_argument('--src', default=os.path.join(os.path.dirname(__file__), '..', 'data', 'mnist-10k'))
a = p.parse_args()


def read(name, header):
    with gzip.open(os.path.join(a.src, name)) as f:
        raw = f.read()
    return np.frombuffer(raw, np.uint8, offset=header)


def thicken(imgs, rounds):
    for _ in range(rounds):
        pad = np.pad(imgs, ((0, 0), (1, 1), (1, 1)))
        imgs = np.max([pad[:, r:r + 28, c:c + 28] for r in range(3) for c in range(3)], axis=0)
    return imgs


def grow(imgs, labels, n, rng):
    pick = rng.integers(0, len(imgs), n)
    out = np.zeros((n, 28, 28), np.uint8)
    shifts = rng.integers(-2, 3, (n, 2))
    for k, (i, (dr, dc)) in enumerate(zip(pick, shifts)):
        out[k] = np.roll(imgs[i], (dr, dc), axis=(0, 1))
    return out, labels[pick]


def write(prefix, imgs, labels):
    os.makedirs(a.out, exist_ok=True)
    with gzip.open(os.path.join(a.out, f'{prefix}-images-idx3-ubyte.gz'), 'wb', compresslevel=1) as f:
        f.write(struct.pack('>IIII', 0x803, len(imgs), 28, 28))
        f.write(imgs.tobytes())
    with gzip.open(os.path.join(a.out, f'{prefix}-labels-idx1-ubyte.gz'), 'wb') as f:
        f.write(struct.pack('>II', 0x801, len(labels)))
        f.write(labels.astype(np.uint8).tobytes())


rng = np.random.default_rng(a.seed)
train = read('train-images-idx3-ubyte.gz', 16).reshape(-1, 28, 28)
train_labels = read('train-labels-idx1-ubyte.gz', 8)
test = read('t10k-images-idx3-ubyte.gz', 16).reshape(-1, 28, 28)
test_labels = read('t10k-labels-idx1-ubyte.gz', 8)
# The fewest thickening rounds that reach the target density, then a threshold to land on it.
rounds = 0
while (thicken(train, rounds) > 0).mean() < a.density and rounds < 14:
    rounds += 1
thick = thicken(train, rounds)
cut = np.quantile(thick, 1 - a.density)
keep = lambda x: np.where(x > cut, x, 0).astype(np.uint8)
x, y = grow(keep(thick), train_labels, a.train, rng)
xt, yt = grow(keep(thicken(test, rounds)), test_labels, a.test, rng)
write('train', x, y)
write('t10k', xt, yt)
print(f'wrote {a.train} train and {a.test} test images to {a.out}: {rounds} thickening rounds, '
      f'density {(x > 0).mean():.3f} (test {(xt > 0).mean():.3f})')
