"""Write a CIFAR-10-format directory (binary version) of generated 32x32 colour images, to
run the examples on the CIFAR-10 reader without the real set (which is not shipped).

Each class has a random template image; an image of the class is half its template, half
noise, so a linear classifier can learn the classes, and a reader that mixed up labels and
pixels would be caught at chance accuracy. Records are the real format's: a label byte,
then 1024 red, 1024 green and 1024 blue bytes.

usage: python3 benches/synthetic_cifar.py OUT_DIR [--train 500] [--test 100] [--batches 2]
                                                  [--nested] [--seed 0]

--batches N splits the training images over data_batch_1.bin .. data_batch_N.bin (1 to 5);
--nested writes them into OUT_DIR/cifar-10-batches-bin/, as the archive extracts.
"""
import argparse, os, random

p = argparse.ArgumentParser()
p.add_argument('out')
p.add_argument('--train', type=int, default=500)
p.add_argument('--test', type=int, default=100)
p.add_argument('--batches', type=int, default=2, choices=range(1, 6))
p.add_argument('--nested', action='store_true')
p.add_argument('--seed', type=int, default=0)
a = p.parse_args()
out = os.path.join(a.out, 'cifar-10-batches-bin') if a.nested else a.out
os.makedirs(out, exist_ok=True)
rng = random.Random(a.seed)
templates = [rng.randbytes(3072) for _ in range(10)]


def records(n):
    data = bytearray()
    for _ in range(n):
        label = rng.randrange(10)
        noise = rng.randbytes(3072)
        data.append(label)
        data.extend((t + z) // 2 for t, z in zip(templates[label], noise))
    return bytes(data)


sizes = [a.train // a.batches + (i < a.train % a.batches) for i in range(a.batches)]
for i, n in enumerate(sizes):
    with open(os.path.join(out, f'data_batch_{i + 1}.bin'), 'wb') as f:
        f.write(records(n))
with open(os.path.join(out, 'test_batch.bin'), 'wb') as f:
    f.write(records(a.test))
print(f'wrote {a.train} training images in {a.batches} batches and {a.test} test images to {out}')
