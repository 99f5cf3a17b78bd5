"""Microbenchmark: one fused optimizer step on one big float32 tensor, as a fraction of the
copy bandwidth (``gopt_copy``, an OpenMP memcpy in the same kernel library) measured in the
same run.

    PYTHONPATH=. python benchmarks/kernel_bandwidth.py [--size 16777216] [--repeat 30]
                                                       [--optimizers sgd,adam,...]

Every measurement is the minimum over ``--repeat`` timed calls, taken round-robin over the
copy and the optimizers, so that load from other processes on a shared machine (which only
ever slows a call down) falls on all of them alike and the minimum approaches the unloaded
time. Bytes per element: reads of weight, gradient and states, writes of weight and states
(4 bytes each in float32); the copy moves 8.
"""
import argparse
import time

import numpy as np
import mxnet as mx

import gluon_opt  # noqa: F401  (registers the optimizers)
from gluon_opt import kernels

# name -> (hyperparameters, float32 streams moved per element: reads + writes)
CASES = {
    'sgd': (dict(learning_rate=0.01, momentum=0.9), 5),       # r w g b, w w b
    'adam': (dict(learning_rate=1e-3), 7),                    # r w g m v, w w m v
    'adamw': (dict(learning_rate=1e-3, wd=0.01), 7),
    'adamax': (dict(learning_rate=2e-3), 7),
    'nadam': (dict(learning_rate=1e-3), 7),
    'radam': (dict(learning_rate=1e-3), 7),
    'adabelief': (dict(learning_rate=1e-3), 7),
    'adagrad': (dict(learning_rate=0.01), 5),
    'rmsprop': (dict(learning_rate=1e-3), 5),
    'adadelta': (dict(learning_rate=1.0), 7),
    'lion': (dict(learning_rate=1e-4, wd=0.1), 5),
    # two passes: read w g m v, write m v; then read w m v, write w
    'lamb': (dict(learning_rate=1e-3, wd=0.01), 10),
    # two passes: read w g; then read w g b, write w b
    'lars': (dict(learning_rate=0.1, momentum=0.9), 7),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=16 * 1024 * 1024)
    parser.add_argument('--repeat', type=int, default=30)
    parser.add_argument('--optimizers', default='sgd,adam')
    args = parser.parse_args()
    kernels.require()
    n = args.size
    rng = np.random.RandomState(0)
    src = mx.nd.array(rng.randn(n).astype(np.float32))
    dst = mx.nd.zeros((n,))
    copy = kernels.op('gopt_copy')
    runners = [('copy', 2, lambda: copy(src, out=dst))]
    for name in args.optimizers.split(','):
        hp, streams = CASES[name]
        opt = mx.optimizer.create('gluon_opt.' + name, use_fused=True, **hp)
        w = mx.nd.array(rng.uniform(-1, 1, n).astype(np.float32))
        g = mx.nd.array(rng.uniform(-1, 1, n).astype(np.float32))
        state = opt.create_state(0, w)
        runners.append((name, streams, lambda opt=opt, w=w, g=g, s=state: opt.update(0, w, g, s)))
    best = {name: float('inf') for name, _, _ in runners}
    for name, _, fn in runners:  # warm up (first calls build caches, page in the arrays)
        fn()
        fn()
    mx.nd.waitall()
    for _ in range(args.repeat):
        for name, _, fn in runners:
            mx.nd.waitall()
            t0 = time.perf_counter()
            fn()
            mx.nd.waitall()
            best[name] = min(best[name], time.perf_counter() - t0)
    copy_bw = 2 * 4 * n / best['copy']
    print('%d float32 elements, min of %d calls' % (n, args.repeat))
    for name, streams, _ in runners:
        bw = streams * 4 * n / best[name]
        print('%-10s %8.2f ms  %6.2f GB/s  %5.0f%% of copy'
              % (name, best[name] * 1e3, bw / 1e9, 100 * bw / copy_bw))


if __name__ == '__main__':
    main()
