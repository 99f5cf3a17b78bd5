"""``gluon-opt bench``: optimizer step time, ours against MXNet's built-ins and torch.optim.

For each parameter set (the course MLP 784-256-256-10, ResNet-50 v1's trainable parameter
shapes from gluoncv's model zoo, 500 small tensors) and each optimizer, it times one optimizer
step through ``gluon.Trainer.step`` for

* ``fused``: our fused kernels (``use_fused=True``);
* ``reference``: our readable ``mx.nd`` update (``use_fused=False``);
* ``mxnet``: MXNet's built-in optimizer for the same algorithm, where there is one;
* ``torch-fused`` / ``torch-foreach``: ``torch.optim`` with ``fused=True`` / ``foreach=True``
  (``optimizer.step()`` on CPU tensors of the same shapes), where torch is importable.

Each time is turned into a bandwidth: the bytes the algorithm must move (read weight,
gradient and states once, write weight and states once) divided by the time, and compared with
the bandwidth of a multi-threaded copy measured in the same run (``gopt_copy``, an OpenMP copy
with streaming stores in our kernel library, over 256 MiB, so that the bytes counted are the
bytes moved), timed in the same round-robin as each optimizer's steps (``copy_GB/s``); the copy
at the start and a single-threaded numpy copy are printed too. The ``e2e`` set trains the
course MLP on random data and compares samples per second with MXNet's built-in SGD, timed in
the same round-robin as each optimizer's loops (``sgd_samples/s``). The ``nonfinite`` set
measures what ``gluon_opt.Trainer``'s check of NaN/inf gradients costs: the ResNet-50 step and
the MLP loop with ``nonfinite='raise'`` and ``'skip'`` against ``'ignore'`` (``vs_ignore``).

``--state-dtype float32,bfloat16,int8`` times the fused kernels of the optimizers that can keep
their states in low precision (``state_dtype``, ``gluon_opt.optimizers.lowprec``) with each
storage, in the same round-robin as the float32 ones: rows ``adam:int8`` and so on, whose
``vs_float32`` is their time over the float32 fused time beside them, ``state_MB`` the bytes of
the states the trainer holds (measured on its arrays), and whose bytes moved count the states
as they are stored (codes and scales, or bfloat16 halves), read and written once.

Results print as a table and are saved as CSV and a PNG bar chart (``--out``, a new folder:
an existing one is replaced only with ``--overwrite`` and only if gluon-opt wrote it, see
``outputs``).
"""
import argparse
import csv
import os
import statistics
import sys
import time

import numpy as np
import mxnet as mx
from mxnet import gluon, autograd

from .outputs import Output, OutputError

__all__ = ['add_arguments', 'run', 'main', 'step_times', 'operator_counts', 'IMPLS']

SETS = ('mlp', 'resnet50', 'small500', 'e2e', 'nonfinite')

def _algorithms():
    """name -> (hyperparameters, MXNet built-in name or None, torch class name or None, bytes
    per element the rule must move in float32, or a function of a tensor's shape giving its
    bytes): read from the records of the optimizers that declare their traffic
    (``step_bytes``, see ``gluon_opt.optimizers.info``)."""
    from ..optimizers import infos
    out = {}
    for i in infos():
        if i.step_bytes is None or not i.bench_hyperparameters:
            continue
        out[i.name] = (i.bench_hyperparameters, i.mxnet_builtin, i.torch_class, i.step_bytes)
        # a record's other configurations (``bench_variants``): no built-in or torch twin
        for variant, (hp, nbytes) in i.bench_variants.items():
            out[i.name + '+' + variant] = (dict(i.bench_hyperparameters, **hp), None, None,
                                           nbytes)
    return out


def _key(name):
    """The registry key of a benchmark entry (``adam+cautious`` is ``gluon_opt.adam``)."""
    return 'gluon_opt.' + name.split('+')[0]


#: the optimizers the benchmark times, from their records (``_algorithms``)
ALGORITHMS = _algorithms()


def algorithm_bytes(name, shapes):
    """The bytes optimizer ``name`` must move in one step over tensors of ``shapes``: its
    ``ALGORITHMS`` entry's bytes per element times the elements, or its function of the shape
    summed over the tensors."""
    per = ALGORITHMS[name][3]
    if callable(per):
        return sum(per(tuple(s)) for s in shapes)
    return per * sum(int(np.prod(s)) for s in shapes)


#: the storages ``--state-dtype`` takes (``gluon_opt.optimizers.lowprec.STATE_DTYPES``)
STATE_DTYPES = ('float32', 'bfloat16', 'int8')


def _low_precision(name):
    """True where the benchmark entry ``name`` can store its states in bfloat16 or 8 bits
    (its optimizer declares ``low_precision_states``, and its settings do not refuse them)."""
    from ..optimizers import info
    record = info(_key(name))
    if record.low_precision_states is None:
        return False
    return record.cls(**ALGORITHMS[name][0]).low_precision_refusal() is None


#: bytes of the multi-threaded copy that measures the memory bandwidth (larger than the caches)
COPY_BYTES = 256 << 20

#: the default ``--optimizers`` (``--optimizers all`` times every entry above)
DEFAULT_OPTIMIZERS = ('sgd', 'adam', 'adamw')


def add_arguments(parser):
    parser.add_argument('--sets', default=','.join(SETS),
                        help='comma-separated parameter sets among %s (default: all)'
                        % ', '.join(SETS))
    parser.add_argument('--optimizers', default=','.join(DEFAULT_OPTIMIZERS),
                        help='comma-separated optimizers among %s, or "all" (default %s)'
                        % (', '.join(ALGORITHMS), ','.join(DEFAULT_OPTIMIZERS)))
    parser.add_argument('--state-dtype', default='float32',
                        help='comma-separated storages of the optimizer states among float32, '
                             'bfloat16, int8: each optimizer that can store its states so is '
                             'timed with each (fused kernels; rows <optimizer>:<dtype>); '
                             'default float32')
    parser.add_argument('--quick', action='store_true',
                        help='fewer timed steps, and no reference path on ResNet-50 shapes')
    parser.add_argument('--budget', type=float, default=None,
                        help='seconds of timed steps per measurement (default 0.3, quick 0.1)')
    parser.add_argument('--no-torch', action='store_true', help='skip torch.optim')
    parser.add_argument('--out', default=None,
                        help='folder for bench.csv and bench.png (default '
                             'runs/bench-<timestamp>)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --out folder, only if gluon-opt wrote it')
    return parser


# ---------------------------------------------------------------------------------------------
# Parameter sets

def mlp_shapes():
    return [(256, 784), (256,), (256, 256), (256,), (10, 256), (10,)]


def resnet50_shapes():
    from .._compat import import_gluoncv
    gcv = import_gluoncv()
    net = gcv.model_zoo.get_model('resnet50_v1', pretrained=False)
    net.initialize()
    net(mx.nd.zeros((1, 3, 224, 224)))  # resolves the deferred shapes
    return [p.shape for p in net.collect_params().values() if p.grad_req != 'null']


def small_shapes(n=500):
    # sizes from 128 to ~2200 elements: biases, norms, small heads
    return [(128 + (i * 97) % 2048,) for i in range(n)]


def _params(shapes, seed=0):
    rng = np.random.RandomState(seed)
    params = []
    for i, shape in enumerate(shapes):
        p = gluon.Parameter('p%d' % i, shape=shape, init=mx.init.Constant(0.0))
        p.initialize(ctx=mx.cpu())
        p.set_data(mx.nd.array(rng.uniform(-0.1, 0.1, size=shape)))
        p.grad()[:] = mx.nd.array(rng.uniform(-1, 1, size=shape))
        params.append(p)
    return params


# ---------------------------------------------------------------------------------------------
# Timing

def _timed(step, before=None, budget=0.6, min_iters=3, max_iters=50):
    """Median seconds of ``step`` (after two warm-up calls); runs about ``budget`` seconds.
    ``before`` runs untimed ahead of every call."""
    return _interleaved([(before, step)], budget, min_iters, max_iters)[0]


#: timed calls a runner gets at least where the slowest runner of its round-robin allows it
#: (see ``_interleaved``)
MIN_SAMPLES = 15


def _interleaved(runners, budget=0.6, min_iters=3, max_iters=50, min_samples=MIN_SAMPLES):
    """Median seconds per call of each ``(before, step)`` runner, timed round-robin so that
    load from other processes on the machine falls on all of them alike. Two warm-up calls
    each (they create the optimizer states).

    The number of rounds follows the budget, so one slow runner (a reference update on
    ResNet-50 shapes takes seconds) leaves ``min_iters`` rounds. A runner faster than the
    slowest is then called several times in a row per round, up to ``min_samples`` timed
    calls in all and never longer per round than the slowest runner takes: a median of three
    calls is at the mercy of this machine's swings (measured: Adafactor's ``of_copy`` moved
    from 0.56 to 0.76 between three runs of the same command)."""
    def once(before, step):
        if before:
            before()
        t0 = time.perf_counter()
        step()
        return time.perf_counter() - t0
    firsts = []
    for before, step in runners:
        once(before, step)
        firsts.append(once(before, step))
    rounds = int(min(max_iters, max(min_iters, budget * len(runners) / max(sum(firsts), 1e-6))))
    wanted = -(-min_samples // rounds)  # calls per round that make min_samples
    slowest = max(firsts)
    repeats = [max(1, min(wanted, int(slowest / max(first, 1e-9)))) for first in firsts]
    times = [[] for _ in runners]
    for _ in range(rounds):
        for k, (before, step) in enumerate(runners):
            for _ in range(repeats[k]):
                times[k].append(once(before, step))
    return [statistics.median(t) for t in times]


def trainer_runner(params, optimizer, hp, trainer_kwargs=None):
    """``(before, step)`` for one ``Trainer.step`` (waiting for MXNet's asynchronous engine);
    ``trainer_kwargs``: a ``gluon_opt.Trainer`` with these options instead of ``gluon.Trainer``.
    ``step.trainer`` is the trainer (its states exist after the first step)."""
    trainer = _trainer(params, optimizer, hp, trainer_kwargs)
    arrays = [a for p in params for a in p.list_data()]

    def fresh():  # as if backward had computed the gradients, so Trainer.step takes them
        for a in arrays:
            a._fresh_grad = True

    def step():
        trainer.step(1)
        mx.nd.waitall()
    step.trainer = trainer
    return fresh, step


def state_bytes_held(trainer):
    """Bytes of the optimizer states ``trainer`` holds (its first updater's arrays, as they
    are stored; a float16 weight's float32 master counts too)."""
    from ..optimizers import lowprec
    return sum(lowprec.state_nbytes(s) for s in trainer._updaters[0].states.values())


def torch_runner(shapes, cls_name, hp, mode):
    import torch
    rng = np.random.RandomState(0)
    params = []
    for shape in shapes:
        p = torch.nn.Parameter(torch.from_numpy(rng.uniform(-0.1, 0.1, size=shape)
                                                .astype(np.float32)))
        p.grad = torch.from_numpy(rng.uniform(-1, 1, size=shape).astype(np.float32))
        params.append(p)
    kw = {'lr': hp['learning_rate']}
    if 'momentum' in hp:
        kw['momentum'] = hp['momentum']
    if 'wd' in hp:
        kw['weight_decay'] = hp['wd']
    kw[mode] = True
    opt = getattr(torch.optim, cls_name)(params, **kw)
    return None, opt.step


def _copy_step(nbytes=256 << 20):
    """``(step, how)``: one multi-threaded copy of ``nbytes`` (bandwidth = 2 * nbytes / time)."""
    from .. import kernels
    src = mx.nd.ones((nbytes // 4,))
    dst = mx.nd.zeros((nbytes // 4,))
    if kernels.available():
        copy = kernels.op('gopt_copy')
        how = 'gopt_copy (OpenMP, streaming stores, %d threads)' % _omp_threads()

        def step():
            copy(src, out=dst)
            mx.nd.waitall()
    else:
        how = 'mx.nd.copyto'

        def step():
            src.copyto(dst)
            mx.nd.waitall()
    return step, how


def copy_bandwidth(nbytes=256 << 20):
    """(multi-threaded GB/s, how it was measured, single-threaded numpy GB/s): bytes read plus
    bytes written per second."""
    src_np = np.ones(nbytes // 4, dtype=np.float32)
    dst_np = np.empty_like(src_np)
    single = 2 * nbytes / _timed(lambda: np.copyto(dst_np, src_np), budget=1.0,
                                 min_iters=8) / 1e9
    step, how = _copy_step(nbytes)
    multi = 2 * nbytes / _timed(step, budget=1.0, min_iters=8) / 1e9
    return multi, how, single


def _omp_threads():
    return int(os.environ.get('OMP_NUM_THREADS', os.cpu_count() or 1))


# ---------------------------------------------------------------------------------------------
# The end-to-end MLP loop

def mlp_training_runner(optimizer, hp, batches=10, batch_size=256, trainer_kwargs=None):
    """``(None, step)`` for ``_interleaved``: ``step`` runs ``batches`` iterations of the course
    MLP's training loop (forward, backward, ``Trainer.step``) on random data, ``batches *
    batch_size`` samples, and waits for MXNet's engine. Five iterations run untimed first.
    ``trainer_kwargs``: a ``gluon_opt.Trainer`` with these options instead of ``gluon.Trainer``."""
    mx.random.seed(0)
    rng = np.random.RandomState(0)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(256, activation='relu', in_units=784),
            gluon.nn.Dense(256, activation='relu', in_units=256),
            gluon.nn.Dense(10, in_units=256))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = _trainer(net.collect_params(), optimizer, hp, trainer_kwargs)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    xs = [mx.nd.array(rng.rand(batch_size, 784)) for _ in range(8)]
    ys = [mx.nd.array(rng.randint(0, 10, size=batch_size)) for _ in range(8)]

    def one(i):
        with autograd.record():
            loss = loss_fn(net(xs[i % 8]), ys[i % 8])
        loss.backward()
        trainer.step(batch_size)
    for i in range(5):
        one(i)
    mx.nd.waitall()

    def step():
        for i in range(batches):
            one(i)
        mx.nd.waitall()
    return None, step


# ---------------------------------------------------------------------------------------------
# Small entry points for the course (chapter 9)

#: the implementations ``step_times`` and ``operator_counts`` know, in plotting order
IMPLS = ('fused', 'reference', 'mxnet')


def _impl_spec(name, impl):
    """``(optimizer name, hyperparameters)`` of ``impl`` for ``name``, or None where it does
    not exist (MXNet 1.9.1 has no built-in AdamW)."""
    hp, builtin = ALGORITHMS[name][0], ALGORITHMS[name][1]
    if impl == 'fused':
        return _key(name), dict(hp, use_fused=True)
    if impl == 'reference':
        return _key(name), dict(hp, use_fused=False)
    if impl == 'mxnet':
        return (builtin, dict(hp)) if builtin else None
    raise ValueError('impl=%r is invalid; expected one of %s.' % (impl, ', '.join(IMPLS)))


def step_times(shapes, names=('sgd', 'adam', 'adamw'), impls=IMPLS, budget=0.2):
    """Median seconds of one ``Trainer.step`` over parameters of ``shapes``:
    ``{optimizer: {impl: seconds}}``. The implementations of one optimizer are timed
    round-robin (``_interleaved``), so load from other processes falls on all of them alike;
    an implementation that does not exist for an optimizer is left out."""
    out = {}
    for name in names:
        specs = [(impl, _impl_spec(name, impl)) for impl in impls]
        specs = [(impl, spec) for impl, spec in specs if spec is not None]
        runners = [trainer_runner(_params(shapes), opt, hp) for _, (opt, hp) in specs]
        out[name] = dict(zip([impl for impl, _ in specs], _interleaved(runners, budget)))
    return out


def operator_counts(shapes, name, impl):
    """``{operator: calls}`` that one ``Trainer.step`` of ``impl`` launches on parameters of
    ``shapes``, counted by MXNet's profiler (after two untimed steps that create the states).
    Deterministic: it counts operator launches, not time."""
    import json
    import tempfile
    spec = _impl_spec(name, impl)
    if spec is None:
        raise ValueError('%s has no %s implementation.' % (name, impl))
    before, step = trainer_runner(_params(shapes), *spec)
    for _ in range(2):
        before()
        step()
    before()
    with tempfile.TemporaryDirectory() as tmp:
        mx.profiler.set_config(profile_imperative=True, aggregate_stats=True,
                               filename=os.path.join(tmp, 'profile.json'))
        mx.profiler.set_state('run')
        try:
            step()
        finally:
            mx.profiler.set_state('stop')
        stats = json.loads(mx.profiler.dumps(reset=True, format='json'))
    ops = stats.get('Time', {}).get('operator', {})
    # DeleteVariable is the engine freeing temporaries: bookkeeping, not an operator launch
    return {op: int(v['Count']) for op, v in sorted(ops.items()) if op != 'DeleteVariable'}


# ---------------------------------------------------------------------------------------------

def _torch_available(args):
    if args.no_torch:
        return False
    try:
        import torch
    except Exception:
        return False
    torch.set_num_threads(_omp_threads())
    return True


class BenchError(ValueError):
    """An unknown set or optimizer name (``gluon-opt bench`` reports it in one line, exit 2)."""


def run(args):
    """``gluon-opt bench``: measure, print, save; returns the exit status."""
    benchmark(args)
    return 0


def benchmark(args):
    """Run the measurements ``args`` (from ``add_arguments``) ask for; returns the rows."""
    from .. import kernels
    sets = [s.strip() for s in args.sets.split(',') if s.strip()]
    names = [s.strip() for s in args.optimizers.split(',') if s.strip()]
    if names == ['all']:
        names = list(ALGORITHMS)
    for s in sets:
        if s not in SETS:
            raise BenchError('unknown set %r; choose from %s' % (s, ', '.join(SETS)))
    for n in names:
        if n not in ALGORITHMS:
            raise BenchError('unknown optimizer %r; choose from %s (or all)'
                             % (n, ', '.join(ALGORITHMS)))
    dtypes = [s.strip() for s in getattr(args, 'state_dtype', 'float32').split(',') if s.strip()]
    for d in dtypes:
        if d not in STATE_DTYPES:
            raise BenchError('unknown state dtype %r; choose from %s' % (d, ', '.join(STATE_DTYPES)))
    budget = args.budget if args.budget is not None else (0.1 if args.quick else 0.3)
    out = Output(args.out or os.path.join('runs', 'bench-' + time.strftime('%Y%m%d-%H%M%S')),
                 'bench', overwrite=getattr(args, 'overwrite', False))  # checked before timing
    fused_ok = kernels.prebuild()  # a build never falls inside a timing
    has_torch = _torch_available(args)

    bw, bw_how, bw_single = copy_bandwidth()
    print('copy bandwidth: %.1f GB/s multi-threaded [%s]; %.1f GB/s numpy single-threaded'
          % (bw, bw_how, bw_single))
    # The copy is timed again inside every optimizer's round-robin, and that optimizer's
    # of_copy is against it: this machine's bandwidth drifts (19-33 GB/s between runs), so a copy
    # measured minutes earlier is a looser yardstick than one measured beside the steps.
    copy_step, _ = _copy_step(COPY_BYTES)
    print('machine: %d cores; MXNet %s%s' % (os.cpu_count() or 1, mx.__version__,
                                               '' if fused_ok else '; FUSED KERNELS UNAVAILABLE'))
    rows = []
    shape_sets = {'mlp': mlp_shapes, 'resnet50': resnet50_shapes, 'small500': small_shapes}
    for set_name in sets:
        if set_name == 'e2e':
            rows.extend(_run_e2e(names, fused_ok, budget))
            continue
        if set_name == 'nonfinite':
            rows.extend(_run_nonfinite(names, budget))
            continue
        shapes = shape_sets[set_name]()
        numel = sum(int(np.prod(s)) for s in shapes)
        print('\n%s: %d tensors, %.2fM parameters' % (set_name, len(shapes), numel / 1e6))
        for name in names:
            hp, builtin, torch_cls, _ = ALGORITHMS[name]
            nbytes = algorithm_bytes(name, shapes)
            impls = []
            if fused_ok:
                impls.append(('fused', _key(name), dict(hp, use_fused=True)))
            if not (args.quick and set_name == 'resnet50'):
                impls.append(('reference', _key(name), dict(hp, use_fused=False)))
            if builtin:
                impls.append(('mxnet', builtin, hp))
            variants = [d for d in dtypes if d != 'float32'] if (
                fused_ok and _low_precision(name)) else []
            for d in variants:  # the fused kernels with the states in low precision
                impls.append(('fused', _key(name), dict(hp, use_fused=True, state_dtype=d)))
            runners = [trainer_runner(_params(shapes), opt_name, opt_hp)
                       for _, opt_name, opt_hp in impls]
            if has_torch and torch_cls:
                for mode in ('fused', 'foreach'):
                    try:
                        runners.append(torch_runner(shapes, torch_cls, hp, mode))
                    except (RuntimeError, TypeError, ValueError):
                        continue  # e.g. no fused CPU implementation of this one in torch
                    impls.append(('torch-' + mode, torch_cls, {}))
            secs = _interleaved(runners + [(None, copy_step)], budget)
            bw_here = 2 * COPY_BYTES / secs.pop() / 1e9
            held = {opt_hp.get('state_dtype', 'float32'): state_bytes_held(step.trainer)
                    for (impl, _, opt_hp), (_, step) in zip(impls, runners)
                    if impl == 'fused' and variants}
            for (impl, _, opt_hp), sec in zip(impls, secs):
                dtype = opt_hp.get('state_dtype')
                # the states as stored are read and written once, instead of float32 ones
                moved = nbytes + (2 * (held[dtype] - held['float32']) if dtype else 0)
                row = _row(set_name, name + (':' + dtype if dtype else ''), impl, sec, moved,
                           bw_here, len(shapes), numel)
                if impl == 'fused' and variants:
                    row['state_MB'] = held[dtype or 'float32'] / 1e6
                rows.append(row)
            del runners
    _add_ratios(rows)
    _print(rows)
    csv_path = out.file('bench.csv')
    _save_csv(rows, csv_path, bw, bw_how, bw_single)
    png_path = out.file('bench.png')
    _plot(rows, png_path)
    out.finish()
    print('\nsaved %s and %s' % (os.path.join(out.given, 'bench.csv'),
                                 os.path.join(out.given, 'bench.png')))
    return rows


def _row(set_name, name, impl, sec, nbytes, bw, ntensors, numel):
    gbs = nbytes / sec / 1e9
    return {'set': set_name, 'optimizer': name, 'impl': impl, 'tensors': ntensors,
            'params': numel, 'ms': sec * 1e3, 'GB/s': gbs, 'of_copy': gbs / bw,
            'copy_GB/s': bw}


#: batches per timed call of the e2e loops, and their size
E2E_BATCHES = 10
E2E_BATCH_SIZE = 256


def _run_e2e(names, fused_ok, budget):
    """Rows of samples per second of the course MLP's loop: MXNet's built-in SGD alone, then
    per optimizer its fused and reference loops round-robin with that SGD loop again, whose
    samples per second (``sgd_samples/s``) its ``vs_mxnet_sgd`` divides by (as ``of_copy`` by
    the copy beside the steps: this machine's speed drifts within a run). A loop is ten steps
    with their forward and backward passes, so its round-robins get four times ``budget``."""
    print('\ne2e: course MLP training loop, batch %d' % E2E_BATCH_SIZE)
    samples = E2E_BATCHES * E2E_BATCH_SIZE

    def runner(optimizer, hp):
        return mlp_training_runner(optimizer, hp, E2E_BATCHES, E2E_BATCH_SIZE)
    sgd = ('sgd', {'learning_rate': 0.01})
    base = samples / _interleaved([runner(*sgd)], 4 * budget)[0]
    rows = [{'set': 'e2e', 'optimizer': 'sgd', 'impl': 'mxnet', 'samples/s': base,
             'vs_mxnet_sgd': 1.0, 'sgd_samples/s': base}]
    for name in names:
        hp = ALGORITHMS[name][0]
        impls = [impl for impl, fused in (('fused', True), ('reference', False))
                 if fused_ok or not fused]
        runners = [runner(_key(name), dict(hp, use_fused=impl == 'fused'))
                   for impl in impls]
        secs = _interleaved(runners + [runner(*sgd)], 4 * budget)
        here = samples / secs.pop()
        for impl, sec in zip(impls, secs):
            rows.append({'set': 'e2e', 'optimizer': name, 'impl': impl,
                         'samples/s': samples / sec, 'vs_mxnet_sgd': samples / sec / here,
                         'sgd_samples/s': here})
    return rows


#: gluon_opt.Trainer's ``nonfinite`` modes the ``nonfinite`` set times, baseline first
NONFINITE_MODES = ('ignore', 'raise', 'skip')


def _trainer(params, optimizer, hp, trainer_kwargs):
    if trainer_kwargs is None:
        return gluon.Trainer(params, optimizer, dict(hp), kvstore=None)
    from ..trainer import Trainer
    return Trainer(params, optimizer, dict(hp), kvstore=None, **trainer_kwargs)


def _run_nonfinite(names, budget):
    """The cost of ``gluon_opt.Trainer``'s gradient check: per optimizer, ``Trainer.step`` on
    ResNet-50's parameter shapes (ready gradients, as in the ``resnet50`` set; the three
    trainers share the parameters) and the course MLP's training loop of the ``e2e`` set, each
    with ``nonfinite='ignore'``, ``'raise'`` and ``'skip'`` timed round-robin. ``vs_ignore``
    divides each time by the ``'ignore'`` time beside it. The differences sought are a few
    percent, so the round-robins get eight times ``budget``."""
    shapes = resnet50_shapes()
    print('\nnonfinite: gluon_opt.Trainer(nonfinite=...) on ResNet-50 shapes (%d tensors) and '
          'on the course MLP loop (batch %d)' % (len(shapes), E2E_BATCH_SIZE))
    rows = []
    for name in names:
        hp = ALGORITHMS[name][0]
        for where in ('resnet50', 'e2e'):
            if where == 'resnet50':
                params = _params(shapes)
                runners = [trainer_runner(params, _key(name), hp, {'nonfinite': m})
                           for m in NONFINITE_MODES]
                per_call = 1
            else:
                runners = [mlp_training_runner(_key(name), hp, E2E_BATCHES,
                                               E2E_BATCH_SIZE, {'nonfinite': m})
                           for m in NONFINITE_MODES]
                per_call = E2E_BATCHES
            secs = _interleaved(runners, 8 * budget)
            for mode, sec in zip(NONFINITE_MODES, secs):
                rows.append({'set': 'nonfinite-' + where, 'optimizer': name, 'impl': mode,
                             'ms': sec / per_call * 1e3, 'vs_ignore': sec / secs[0]})
            del runners
    return rows


def _add_ratios(rows):
    """Each time divided by MXNet's built-in and by torch's fused, same set and optimizer
    (``adam:int8``'s by Adam's), and low-precision rows' by the float32 fused time beside them
    (``vs_float32``)."""
    index = {(r['set'], r['optimizer'], r['impl']): r for r in rows if 'ms' in r}
    for r in rows:
        if 'ms' not in r:
            continue
        base = r['optimizer'].split(':')[0]
        for ref, key in (('mxnet', 'vs_mxnet'), ('torch-fused', 'vs_torch_fused')):
            other = index.get((r['set'], base, ref))
            r[key] = r['ms'] / other['ms'] if other else None
        if 'state_MB' in r:
            other = index[(r['set'], base, 'fused')]
            r['vs_float32'] = r['ms'] / other['ms']


COLUMNS = ['set', 'optimizer', 'impl', 'tensors', 'params', 'ms', 'GB/s', 'of_copy',
           'copy_GB/s', 'vs_mxnet', 'vs_torch_fused', 'state_MB', 'vs_float32', 'samples/s', 'vs_mxnet_sgd',
           'sgd_samples/s', 'vs_ignore']


def _fmt(v):
    if v is None:
        return '-'
    if isinstance(v, float):
        return '%.3g' % v if abs(v) < 1000 else '%.0f' % v
    return str(v)


def _print(rows):
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    table = [cols] + [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    print()
    for k, row in enumerate(table):
        print('  '.join(v.rjust(w) for v, w in zip(row, widths)))
        if k == 0:
            print('  '.join('-' * w for w in widths))
    print('\nms: median time of one Trainer.step (torch: optimizer.step); GB/s: bytes the '
          'algorithm must move / time; of_copy: that as a fraction of copy_GB/s, the copy '
          'bandwidth timed in the same round-robin as these steps; vs_*: time ratio (< 1 is '
          'faster).')
    if any('state_MB' in r for r in rows):
        print('<optimizer>:<dtype>: the states stored in bfloat16 or 8 bits (state_dtype); '
              'state_MB: the states the trainer holds; GB/s counts them as stored; '
              'vs_float32: time / the float32 fused time in the same round-robin.')
    if any(r['set'] == 'e2e' for r in rows):
        print('e2e: samples/s: median of %d-batch loops; vs_mxnet_sgd: that / sgd_samples/s, '
              "MXNet's built-in SGD loop timed in the same round-robin (> 1 is faster)."
              % E2E_BATCHES)
    if any(r['set'].startswith('nonfinite') for r in rows):
        print("nonfinite: impl is gluon_opt.Trainer's nonfinite mode; ms: median step "
              "(nonfinite-e2e: per batch of the MLP loop, forward and backward included); "
              "vs_ignore: that / the 'ignore' time in the same round-robin (the check's cost).")


def _save_csv(rows, path, bw, bw_how, bw_single):
    with open(path, 'w', newline='') as f:
        f.write('# copy bandwidth %.2f GB/s at the start (%s; copy_GB/s: the same copy timed '
                'beside each optimizer); numpy single-threaded %.2f GB/s\n'
                % (bw, bw_how, bw_single))
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction='ignore')
        writer.writeheader()
        for r in rows:
            writer.writerow({c: r.get(c, '') for c in COLUMNS})


def _plot(rows, path):
    """One panel per set: ms per step by optimizer and implementation (log scale); the e2e
    set's panel shows samples per second relative to MXNet's SGD loop, with the 0.95 target."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    key = {r['set']: ('vs_mxnet_sgd' if r['set'] == 'e2e' else 'ms') for r in rows}
    shown = [r for r in rows if r.get(key[r['set']]) is not None
             and not (r['set'] == 'e2e' and r['impl'] == 'mxnet')]
    sets = list(dict.fromkeys(r['set'] for r in shown))
    fig, axes = plt.subplots(1, max(1, len(sets)), figsize=(5 * max(1, len(sets)), 4),
                             squeeze=False)
    impls = list(dict.fromkeys(r['impl'] for r in shown))
    colors = dict(zip(impls, plt.rcParams['axes.prop_cycle'].by_key()['color']))
    for ax, s in zip(axes[0], sets):
        opts = list(dict.fromkeys(r['optimizer'] for r in shown if r['set'] == s))
        width = 0.8 / max(1, len(impls))
        for k, impl in enumerate(impls):
            xs, ys = [], []
            for j, o in enumerate(opts):
                for r in shown:
                    if (r['set'], r['optimizer'], r['impl']) == (s, o, impl):
                        xs.append(j + k * width)
                        ys.append(r[key[s]])
            if xs:
                ax.bar(xs, ys, width, label=impl, color=colors[impl])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(opts))])
        ax.set_xticklabels(opts, rotation=90 if len(opts) > 6 else 0)
        if s == 'e2e':
            ax.axhline(1.0, color='0.3', lw=0.8)
            ax.axhline(0.95, color='0.3', lw=0.8, ls=':')
            ax.set_ylabel("samples/s / MXNet SGD's (target 0.95)")
        else:
            ax.set_yscale('log')
            ax.set_ylabel('ms per step (log)')
        ax.set_title(s)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = add_arguments(argparse.ArgumentParser(
        prog='gluon-opt bench', description=__doc__.split('\n\n')[0]))
    try:
        return run(parser.parse_args(argv))
    except (BenchError, OutputError) as err:
        parser.exit(2, 'gluon-opt bench: error: %s\n' % err)


if __name__ == '__main__':
    sys.exit(main())
