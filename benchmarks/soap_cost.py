"""SOAP's cost against Adam's: seconds per step and bytes of state, on the course MLP's shapes and
on ResNet-50's (``gluon_opt.experiments.bench``), for the reference and the fused paths.

SOAP's steps are not all alike: the first only builds the factors and their eigenbases
(``syevd``), every ``precondition_frequency``-th one also refreshes the bases (power iteration
and QR), the others rotate the gradient in and the update out. Each kind is timed on its own
(wall clock around ``update_multi_precision`` and ``nd.waitall``, median of the repeats,
AdamW's and SOAP's reference and fused updates taking turns), so
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


class Runner(object):
    """One optimizer over its own copy of the parameters; ``call()`` times one update."""

    def __init__(self, shapes, name, use_fused, **hyper):
        self.weights, self.grads = _params(shapes)
        self.opt = mx.optimizer.create('gluon_opt.' + name, use_fused=use_fused, **hyper)
        self.states = [self.opt.create_state_multi_precision(i, w)
                       for i, w in enumerate(self.weights)]

    def call(self):
        return _timed(self.opt, self.weights, self.grads, self.states)


def times(shapes, repeats):
    """``{(name, impl): seconds}`` for AdamW's step and SOAP's setup, plain step and refresh
    step (medians of ``repeats``). The four runners take turns, so load from other processes
    falls on all of them alike."""
    runners = {}
    for impl, fused in (('reference', False), ('fused', True)):
        runners['adamw', impl] = Runner(shapes, 'adamw', fused, learning_rate=1e-3)
        # frequency 2: call 1 sets up, then plain steps (k odd) and refreshes (k even) alternate
        runners['soap', impl] = Runner(shapes, 'soap', fused, learning_rate=3e-3,
                                       precondition_frequency=2)
    out = {(name, impl, 'setup'): r.call() for (name, impl), r in runners.items()}
    samples = {}
    for _ in range(repeats):
        for kind in ('step', 'refresh'):
            for (name, impl), r in runners.items():
                samples.setdefault((name, impl, kind), []).append(r.call())
    out.update((key, statistics.median(v)) for key, v in samples.items())
    return out


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
        t = times(shapes, args.repeats)
        for impl in ('reference', 'fused'):
            adam = t['adamw', impl, 'step']  # AdamW's steps are all alike
            step, refresh = t['soap', impl, 'step'], t['soap', impl, 'refresh']
            print('  %-9s  AdamW step %8.2f ms | SOAP step %8.2f ms (x%.1f), refresh step '
                  '%8.2f ms, setup %8.2f ms; at frequency 10: %8.2f ms a step' % (
                      impl, 1e3 * adam, 1e3 * step, step / adam, 1e3 * refresh,
                      1e3 * t['soap', impl, 'setup'], 1e3 * (9 * step + refresh) / 10))

if __name__ == '__main__':
    main()
