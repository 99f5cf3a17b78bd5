"""SOAP's cost against Adam's: seconds per step and bytes of state, on the course MLP's shapes and
on ResNet-50's (``gluon_opt.experiments.bench``), for the reference and the fused paths.

SOAP's steps are not all alike: the first only builds the factors and their eigenbases
(``syevd``), every ``precondition_frequency``-th one also refreshes the bases (power iteration
and QR), the others rotate the gradient in and the update out. Each kind is timed on its own
(wall clock around ``update_multi_precision`` and ``nd.waitall``, median of the repeats), so
the per-step cost at frequency f is about ``(f - 1) * step + refresh`` over f steps.

    python benchmarks/soap_cost.py [--sets mlp,resnet50] [--repeats 5]
"""
import argparse
import statistics
import time

import numpy as np
import mxnet as mx
from mxnet import nd

import gluon_opt
from gluon_opt.experiments import bench

#: the course MLP (784 -> 256 -> 10)
MLP = [(256, 784), (256,), (10, 256), (10,)]


def _params(shapes, seed=0):
    rng = np.random.RandomState(seed)
    weights = [nd.array(rng.randn(*s) * 0.05) for s in shapes]
    grads = [nd.array(rng.randn(*s) * 0.01) for s in shapes]
    return weights, grads


def _timed(opt, weights, grads, states):
    indices = list(range(len(weights)))
    nd.waitall()
    start = time.perf_counter()
    opt.update_multi_precision(indices, weights, grads, states)
    nd.waitall()
    return time.perf_counter() - start


def soap_times(shapes, use_fused, repeats):
    """``(setup, step, refresh)`` seconds (medians of ``repeats``)."""
    steps, refreshes = [], []
    weights, grads = _params(shapes)
    # frequency 2: call 1 sets up, call 2 is a plain step, call 3 (k = 2) refreshes, ...
    opt = mx.optimizer.create('gluon_opt.soap', learning_rate=3e-3, precondition_frequency=2,
                              use_fused=use_fused)
    states = [opt.create_state_multi_precision(i, w) for i, w in enumerate(weights)]
    setup = _timed(opt, weights, grads, states)
    for _ in range(repeats):
        steps.append(_timed(opt, weights, grads, states))
        refreshes.append(_timed(opt, weights, grads, states))
    return setup, statistics.median(steps), statistics.median(refreshes)


def adam_time(shapes, use_fused, repeats):
    weights, grads = _params(shapes)
    opt = mx.optimizer.create('gluon_opt.adamw', learning_rate=1e-3, use_fused=use_fused)
    states = [opt.create_state_multi_precision(i, w) for i, w in enumerate(weights)]
    _timed(opt, weights, grads, states)
    return statistics.median(_timed(opt, weights, grads, states) for _ in range(repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sets', default='mlp,resnet50')
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args(argv)
    gluon_opt.kernels.available()  # load (or build) the kernel library before any timing
    sets = {'mlp': lambda: MLP, 'resnet50': bench.resnet50_shapes}
    for name in args.sets.split(','):
        shapes = sets[name]()
        n = sum(int(np.prod(s)) for s in shapes)
        soap_bytes = gluon_opt.optimizers.info('soap').state_nbytes(shapes)
        adam_bytes = gluon_opt.optimizers.info('adamw').state_nbytes(shapes)
        print('%s: %d tensors, %.2f M parameters; state: SOAP %.1f MB, AdamW %.1f MB (x%.2f)'
              % (name, len(shapes), n / 1e6, soap_bytes / 1e6, adam_bytes / 1e6,
                 soap_bytes / adam_bytes))
        for use_fused in (False, True):
            impl = 'fused' if use_fused else 'reference'
            setup, step, refresh = soap_times(shapes, use_fused, args.repeats)
            adam = adam_time(shapes, use_fused, args.repeats)
            print('  %-9s  AdamW step %8.2f ms | SOAP step %8.2f ms (x%.1f), refresh step '
                  '%8.2f ms, setup %8.2f ms; at frequency 10: %8.2f ms a step' % (
                      impl, 1e3 * adam, 1e3 * step, step / adam, 1e3 * refresh, 1e3 * setup,
                      1e3 * (9 * step + refresh) / 10))


if __name__ == '__main__':
    main()
