"""Write an MNIST-format directory of N random 28x28 images (for memory and speed runs at
MNIST's full size; the pixels are noise, so accuracy means nothing here).

usage: python3 benches/synthetic_mnist.py OUT_DIR [--train 60000] [--test 10000] [--seed 0]
"""
import argparse, gzip, os, random, struct

p = argparse.ArgumentParser()
p.add_argument('out'); p.add_argument('--train', type=int, default=60000)
p.add_argument('--test', type=int, default=10000); p.add_argument('--seed', type=int, default=0)
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)
rng = random.Random(a.seed)
for prefix, n in (('train', a.train), ('t10k', a.test)):
    with gzip.open(os.path.join(a.out, f'{prefix}-images-idx3-ubyte.gz'), 'wb', compresslevel=1) as f:
        f.write(struct.pack('>IIII', 0x803, n, 28, 28))
        f.write(rng.randbytes(n * 784))
    with gzip.open(os.path.join(a.out, f'{prefix}-labels-idx1-ubyte.gz'), 'wb') as f:
        f.write(struct.pack('>II', 0x801, n))
        f.write(bytes(rng.randrange(10) for _ in range(n)))
print(f'wrote {a.train} train and {a.test} test images to {a.out}')
