"""Microbenchmark: one fused optimizer step on one big float32 tensor, as a fraction of the
copy bandwidth (``gopt_copy``, an OpenMP copy with streaming stores in the same kernel library)
measured in the same run.

    PYTHONPATH=. python benchmarks/kernel_bandwidth.py [--size 16777216] [--repeat 30]
                                                       [--optimizers sgd,adam,...]

Every measurement is the minimum over ``--repeat`` timed calls, taken round-robin over the
copy and the optimizers, so that load from other processes on a shared machine (which only
ever slows a call down) falls on all of them alike and the minimum approaches the unloaded
time. Bytes per element: those ``gluon-opt bench`` counts (reads of weight, gradient and
states, writes of weight and states, and the extra passes of LAMB, LARS and Adafactor); the copy
moves 8. On one vector Adafactor keeps a full second moment (not factored).
"""
import argparse
import time

import numpy as np
import mxnet as mx

import gluon_opt  # noqa: F401  (registers the optimizers)
from gluon_opt import kernels
from gluon_opt.experiments.bench import ALGORITHMS, algorithm_bytes

# The bytes each algorithm must move, and its hyperparameters, are gluon-opt bench's
# (gluon_opt.experiments.bench.ALGORITHMS, algorithm_bytes). Muon is left out: on one vector
# it is AdamW.
CASES = {name: spec[0] for name, spec in ALGORITHMS.items() if name != 'muon'}


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
    runners = [('copy', 8 * n, lambda: copy(src, out=dst))]
    for name in args.optimizers.split(','):
        if name not in CASES:
            parser.error('unknown optimizer %r; choose among %s' % (name, ', '.join(CASES)))
        hp, nbytes = CASES[name], algorithm_bytes(name, [(n,)])
        opt = mx.optimizer.create('gluon_opt.' + name, use_fused=True, **hp)
        w = mx.nd.array(rng.uniform(-1, 1, n).astype(np.float32))
        g = mx.nd.array(rng.uniform(-1, 1, n).astype(np.float32))
        state = opt.create_state(0, w)
        runners.append((name, nbytes, lambda opt=opt, w=w, g=g, s=state: opt.update(0, w, g, s)))
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
    copy_bw = 8 * n / best['copy']
    print('%d float32 elements, min of %d calls' % (n, args.repeat))
    for name, nbytes, _ in runners:
        bw = nbytes / best[name]
        print('%-10s %8.2f ms  %6.2f GB/s  %5.0f%% of copy'
              % (name, best[name] * 1e3, bw / 1e9, 100 * bw / copy_bw))


if __name__ == '__main__':
    main()
