"""First-order vs second-order: per-iteration cost and memory, and Fashion-MNIST accuracy.

Part 1 (cost): one ``trainer.step`` of each method on a fixed batch of Fashion-MNIST for the
784-128-10 MLP (101,770 parameters); Newton, which must form the Hessian, on softmax
regression over 4x4-pooled images (170 parameters). Reported: seconds per step, closure
evaluations (forward + backward passes) per step, and bytes of optimizer state held between
steps (every NDArray the optimizer and its updater keep).

Part 2 (accuracy): the MLP trained on a shuffled subset of the training set with the same
budget (epochs, batch size) by Adam, SAM (around Adam) and Sophia, each at every learning
rate of one grid; test accuracy on the full test set, averaged over seeds.

Part 3 (tune): equal-effort tuning. Each method gets a grid of the same size over its own
hyperparameters (Adam: lr; SAM: lr x rho; Sophia: lr x rho), each configuration is trained
on a training split and scored on a validation split carved from the *training* images
(never the test set); each method's best validation configuration is then retrained with
several seeds and scored once on the full test set (mean +- spread).

Self-contained (NumPy + MXNet); ``python benchmarks/second_order.py --help``.
"""
import argparse
import os
import time

import numpy as np
import mxnet as mx
from mxnet import nd, gluon

import gluon_opt
from gluon_opt.experiments.training import make_closure, optimizer_state_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(train_size, seed=0):
    d = np.load(os.path.join(ROOT, 'data', 'fashion_mnist.npz'))
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(d['y_train']))[:train_size]  # the file is grouped by class
    x_tr = d['x_train'][order].reshape(-1, 784).astype(np.float32) / 255.0
    x_te = d['x_test'].reshape(-1, 784).astype(np.float32) / 255.0
    return x_tr, d['y_train'][order].astype(np.float32), x_te, d['y_test'].astype(np.float32)


def mlp(seed, hidden=128):
    mx.random.seed(seed)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(hidden, activation='relu', in_units=784),
            gluon.nn.Dense(10, in_units=hidden))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    return net


METHODS = [
    # name, optimizer, hyperparameters, closure?
    ('SGD', 'gluon_opt.sgd', dict(learning_rate=0.1), False),
    ('Adam', 'gluon_opt.adam', dict(learning_rate=1e-3), False),
    ('SAM (Adam)', 'gluon_opt.sam', dict(learning_rate=1e-3, rho=0.05,
                                         base='gluon_opt.adam'), True),
    ('Sophia-H', 'gluon_opt.sophia', dict(learning_rate=1e-3), True),
    ('L-BFGS (1 iter, m=10)', 'gluon_opt.lbfgs',
     dict(history_size=10, max_iter=1, line_search_fn='strong_wolfe'), True),
    ('Newton-CG (10 CG)', 'gluon_opt.hessian_free', dict(max_cg_iter=10, cg_tol=1e-6), True),
]


def measure(net, name, hyper, uses_closure, x, y, steps):
    trainer = gluon_opt.Trainer(net.collect_params(), name, dict(hyper))
    closure = make_closure(net, x, y)
    times, evals = [], []
    for s in range(steps + 1):
        nd.waitall()
        t0 = time.perf_counter()
        if uses_closure:
            trainer.step(len(x), closure)
            n = trainer.last_evals
        else:
            closure()
            trainer.step(len(x))
            n = 1
        nd.waitall()
        if s:  # the first step pays for hybridization and state creation
            times.append(time.perf_counter() - t0)
            evals.append(n)
    n_params = sum(p.data().size for p in net.collect_params().values())
    return dict(seconds=float(np.mean(times)), evals=float(np.mean(evals)),
                state=optimizer_state_bytes(trainer), n_params=n_params)


def part1(args):
    x_tr, y_tr, _, _ = load(args.cost_batch, seed=1)
    x, y = nd.array(x_tr), nd.array(y_tr)
    rows = []
    for label, name, hyper, uses_closure in METHODS:
        r = measure(mlp(0), name, hyper, uses_closure, x, y, args.cost_steps)
        rows.append((label, r))
    # Newton: softmax regression on 4x4-pooled images (16 features + bias, 10 classes)
    pooled = nd.array(x_tr.reshape(-1, 4, 7, 4, 7).mean(axis=(2, 4)).reshape(-1, 16))
    for label, name, hyper, uses_closure in (
            ('Adam (small model)', 'gluon_opt.adam', dict(learning_rate=1e-3), False),
            ('Newton (small model)', 'gluon_opt.newton', dict(wd=1e-4), True)):
        mx.random.seed(0)
        net = gluon.nn.Dense(10, in_units=16)
        net.initialize(mx.init.Xavier())
        rows.append((label, measure(net, name, hyper, uses_closure, pooled, y, 2)))
    base = {r['n_params']: r for label, r in rows if label.startswith('Adam')}
    print('\n| method | parameters | s / step | x Adam time | evaluations / step | '
          'state bytes | state / params |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for label, r in rows:
        print('| %s | %d | %.4f | %.1f | %.1f | %d | %.1f x 4 B |' % (
            label, r['n_params'], r['seconds'], r['seconds'] / base[r['n_params']]['seconds'],
            r['evals'], r['state'], r['state'] / (4.0 * r['n_params'])))
    print('\nNewton also holds two n x n matrices (Hessian, eigenvectors) during a step: '
          '%d bytes here, 80 GB for the MLP.' % (2 * 4 * 170 ** 2))


def accuracy(net, x, y, batch=2000):
    correct = 0
    for i in range(0, len(x), batch):
        pred = net(nd.array(x[i:i + batch])).argmax(axis=1).asnumpy()
        correct += (pred == y[i:i + batch]).sum()
    return correct / len(x)


def train_and_test(name, hyper, uses_closure, data, seed, args):
    """Train on data[0:2] with seed, return (accuracy on data[2:4], seconds, evaluations)."""
    x_tr, y_tr, x_te, y_te = data
    net = mlp(seed)
    trainer = gluon_opt.Trainer(net.collect_params(), name, dict(hyper))
    rng = np.random.RandomState(seed)
    mx.random.seed(seed)
    t0 = time.perf_counter()
    evals = 0
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_tr))
        for i in range(0, len(order) - args.batch + 1, args.batch):
            idx = order[i:i + args.batch]
            closure = make_closure(net, nd.array(x_tr[idx]), nd.array(y_tr[idx]))
            if uses_closure:
                trainer.step(args.batch, closure)
                evals += trainer.last_evals
            else:
                closure()
                trainer.step(args.batch)
                evals += 1
    nd.waitall()
    return accuracy(net, x_te, y_te), time.perf_counter() - t0, evals


def part2(args):
    """Every method at every learning rate of the same grid (no selection on the test set):
    the table shows each cell, mean over seeds."""
    data = load(args.train_size)
    configs = [('Adam', 'gluon_opt.adam', {}, False),
               ('SAM (Adam, rho=%g)' % args.sam_rho, 'gluon_opt.sam',
                dict(rho=args.sam_rho, base='gluon_opt.adam'), True),
               ('Sophia-H', 'gluon_opt.sophia', dict(wd=0.0), True)]
    print('\nFashion-MNIST, MLP 784-128-10, %d training images, %d epochs, batch %d; test '
          'accuracy on 10,000 images, mean over seeds %s (train seconds, evaluations):\n'
          % (len(data[0]), args.epochs, args.batch, args.seeds))
    print('| method | ' + ' | '.join('lr = %g' % lr for lr in args.lrs) + ' |')
    print('|---|' + '---:|' * len(args.lrs))
    for label, name, hyper, uses_closure in configs:
        cells = []
        for lr in args.lrs:
            runs = [train_and_test(name, dict(hyper, learning_rate=lr), uses_closure, data,
                                   seed, args) for seed in args.seeds]
            accs, secs, evals = zip(*runs)
            cells.append('%.4f (%s; %.0f s, %d ev)' % (
                np.mean(accs), '/'.join('%.4f' % a for a in accs), np.mean(secs), evals[0]))
        print('| %s | %s |' % (label, ' | '.join(cells)))


def tune_grids(args):
    """The three methods' grids: the same number of configurations each."""
    adam = [('Adam', 'gluon_opt.adam', dict(learning_rate=lr), False) for lr in args.adam_lrs]
    sam = [('SAM (Adam)', 'gluon_opt.sam',
            dict(learning_rate=lr, rho=rho, base='gluon_opt.adam'), True)
           for lr in args.tune_lrs for rho in args.sam_rhos]
    sophia = [('Sophia-H', 'gluon_opt.sophia', dict(learning_rate=lr, rho=rho, wd=0.0), True)
              for lr in args.tune_lrs for rho in args.sophia_rhos]
    return [('Adam', adam), ('SAM (Adam)', sam), ('Sophia-H', sophia)]


def describe(hyper):
    return ', '.join('%s=%g' % (k.replace('learning_rate', 'lr'), v)
                     for k, v in sorted(hyper.items()) if not isinstance(v, str)
                     and not (k == 'wd' and v == 0.0))


def part3(args):
    """Select each method's configuration on a validation split, then test it over seeds."""
    x, y, x_te, y_te = load(args.tune_train_size + args.val_size)
    n = args.tune_train_size
    train_val = (x[:n], y[:n], x[n:], y[n:])
    train_test = (x[:n], y[:n], x_te, y_te)
    grids = tune_grids(args)
    print('\nTuning: Fashion-MNIST, MLP 784-128-10, %d training / %d validation images (both '
          'from the training set), %d epochs, batch %d; selection by mean validation accuracy '
          'over seeds %s; configurations per '
          'method: %s\n' % (n, len(x) - n, args.epochs, args.batch, args.select_seeds,
                             ', '.join('%s %d' % (m, len(g)) for m, g in grids)))
    print('| method | configuration | validation accuracy (per seed) | train s |')
    print('|---|---|---:|---:|')
    chosen = []
    t_all = time.perf_counter()
    for method, grid in grids:
        scored = []
        for label, name, hyper, uses_closure in grid:
            runs = [train_and_test(name, hyper, uses_closure, train_val, seed, args)
                    for seed in args.select_seeds]
            accs, secs, _ = zip(*runs)
            acc = float(np.mean(accs))
            scored.append((acc, label, name, hyper, uses_closure))
            print('| %s | %s | %.4f (%s) | %.0f |' % (
                method, describe(hyper), acc, '/'.join('%.4f' % a for a in accs),
                np.sum(secs)), flush=True)
        chosen.append(max(scored, key=lambda r: r[0]))
    print('\nSelected configurations, test accuracy on 10,000 test images over seeds %s '
          '(mean +- sample std; min-max):\n' % args.test_seeds)
    print('| method | selected (validation acc.) | test accuracy | per seed | evaluations |')
    print('|---|---|---:|---|---:|')
    per_seed = []
    for val_acc, label, name, hyper, uses_closure in chosen:
        runs = [train_and_test(name, hyper, uses_closure, train_test, seed, args)
                for seed in args.test_seeds]
        accs, _, evals = zip(*runs)
        per_seed.append((label, np.array(accs)))
        print('| %s | %s (%.4f) | %.4f +- %.4f (%.4f-%.4f) | %s | %d |' % (
            label, describe(hyper), val_acc, np.mean(accs),
            np.std(accs, ddof=1) if len(accs) > 1 else 0.0, min(accs), max(accs),
            '/'.join('%.4f' % a for a in accs), evals[0]), flush=True)
    base_label, base = per_seed[0]
    for label, accs in per_seed[1:]:
        d = accs - base  # same seed: same initialisation and batch order
        print('\n%s - %s, per seed: %s; mean %+.4f +- %.4f; below on %d of %d seeds' % (
            label, base_label, '/'.join('%+.4f' % v for v in d), d.mean(),
            d.std(ddof=1) if len(d) > 1 else 0.0, (d < 0).sum(), len(d)), end='')
    print('\n\nTotal %.0f s.' % (time.perf_counter() - t_all))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--part', choices=['cost', 'accuracy', 'tune', 'all'], default='all')
    ap.add_argument('--cost-batch', type=int, default=512)
    ap.add_argument('--cost-steps', type=int, default=10)
    ap.add_argument('--train-size', type=int, default=20000)
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    ap.add_argument('--lrs', type=float, nargs='+', default=[1e-3, 3e-3])
    ap.add_argument('--sam-rho', type=float, default=0.05)
    ap.add_argument('--tune-train-size', type=int, default=15000,
                    help='tune: training images (a shuffled subset of the training set)')
    ap.add_argument('--val-size', type=int, default=5000,
                    help='tune: validation images, also from the training set, disjoint')
    ap.add_argument('--adam-lrs', type=float, nargs='+',
                    default=[5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 7e-3, 1e-2, 1.5e-2, 2e-2])
    ap.add_argument('--tune-lrs', type=float, nargs='+', default=[1e-3, 3e-3, 1e-2],
                    help='tune: learning rates for SAM and Sophia (times their rho grid)')
    ap.add_argument('--sam-rhos', type=float, nargs='+', default=[0.01, 0.02, 0.05])
    ap.add_argument('--sophia-rhos', type=float, nargs='+', default=[0.01, 0.04, 0.1])
    ap.add_argument('--select-seeds', type=int, nargs='+', default=[0, 1],
                    help='tune: seeds whose mean validation accuracy selects a configuration')
    ap.add_argument('--test-seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    args = ap.parse_args()
    if args.part in ('cost', 'all'):
        part1(args)
    if args.part in ('accuracy', 'all'):
        part2(args)
    if args.part in ('tune', 'all'):
        part3(args)


if __name__ == '__main__':
    main()
