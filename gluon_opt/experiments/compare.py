"""The main job: train one model with several optimizers (and seeds) and compare them.

* ``parse_spec('adam:learning_rate=3e-4')`` reads an optimizer spec into an ``OptimizerSpec``;
  names resolve through MXNet's optimizer registry, ``gluon_opt.<name>`` first;
* ``default_specs()`` is the default line-up, each entry with a tuned learning rate, limited
  to the optimizers registered in this build (so it grows as optimizers land);
* ``run_comparison(...)`` trains every spec under every seed with ``training.train`` and
  returns one ``RunResult`` per run (a diverged run is a result too, not a crash);
* ``summarize``/``format_table`` aggregate the runs (mean and spread over seeds), and
  ``write_tables`` saves the history (CSV, JSON) and the summary after every finished run,
  ``write_plots`` the plots, into an ``outputs.Output`` folder (marked incomplete until the
  end, so an interrupted comparison keeps every run it finished);
* ``add_arguments``/``run``: the ``gluon-opt compare`` command, which does all of the above on
  Fashion-MNIST and prints the table.
"""
import ast
import csv
import datetime
import functools
import json
import math
import os
import re
import signal
import sys
import time

import numpy as np
import mxnet as mx

from ..optimizers import info, infos
from . import data, models, outputs, training

__all__ = ['SpecError', 'OptimizerSpec', 'LINEUP', 'MXNET_LABELS', 'resolve_name',
           'parse_spec', 'default_specs', 'RunResult', 'run_comparison', 'summarize',
           'format_table', 'write_tables', 'write_plots', 'write_outputs', 'OptionError',
           'add_arguments', 'run']


class OptionError(ValueError):
    """A ``gluon-opt compare`` option that cannot work (``gluon-opt compare: error: ...``,
    exit status 2), found before anything is trained or written."""


class SpecError(ValueError):
    """An optimizer spec that cannot be used: unknown name, malformed or rejected
    hyperparameter. The message is one line naming the problem."""


#: display names of MXNet's own optimizers (gluon_opt's come from their records' ``label``)
MXNET_LABELS = {'nag': 'NAG', 'signum': 'Signum'}

#: the default line-up, in the order of its table: labels of the course MLP's tuned settings
#: that the optimizers' records declare (``tuned``, with how they were tuned); labels whose
#: optimizer is not registered in this build are left out at run time
LINEUP = ('SGD', 'Momentum', 'Nesterov', 'RMSprop', 'Adam', 'AdamW', 'Lion',
          'Schedule-free AdamW')


class OptimizerSpec(object):
    """One optimizer to run: display ``label``, registry ``name``, hyperparameter ``params``."""

    def __init__(self, label, name, params=None):
        self.label, self.name, self.params = label, name, dict(params or {})

    @property
    def cls(self):
        return mx.optimizer.Optimizer.opt_registry[self.name]

    def learning_rate(self):
        """The learning rate the run will start from (the spec's, else the class default)."""
        if 'learning_rate' in self.params:
            return float(self.params['learning_rate'])
        default = getattr(self.cls, 'default_learning_rate', None)
        return 0.01 if default is None else float(default)

    def check(self):
        """Instantiate the optimizer once so a rejected hyperparameter fails here, before any
        training, as ``SpecError``."""
        try:
            self.cls(**self.params)
        except (TypeError, ValueError) as err:
            raise SpecError('optimizer %r: %s' % (self.label, _one_line(err))) from None
        return self

    def __repr__(self):
        return 'OptimizerSpec(%r, %r, %r)' % (self.label, self.name, self.params)


def _one_line(err):
    return ' '.join(str(err).split())


def _registry():
    return mx.optimizer.Optimizer.opt_registry


def resolve_name(name):
    """A user's optimizer name to its registry key (``gluon_opt.optimizers.resolve``:
    ``gluon_opt.<name>`` first, then MXNet's own ``<name>``); ``SpecError`` listing close
    matches for an unknown name."""
    import gluon_opt  # noqa: F401  (registers our optimizers)
    from gluon_opt.optimizers import resolve
    try:
        return resolve(name)
    except ValueError as err:
        raise SpecError(str(err)) from None


_TRUE, _FALSE, _NONE = ('true', 'yes', 'on'), ('false', 'no', 'off'), ('none', 'null')


def _literal(text, item, spec):
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    if low in _NONE:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = Ellipsis
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    raise SpecError('hyperparameter %r in %r is malformed: %r is not a number, true/false, '
                    'none or a quoted string.' % (item, spec, text))


def _label(name, params):
    if name.startswith('gluon_opt.'):
        label = info(name).label
    else:
        label = MXNET_LABELS.get(name, name)
    if params:
        label += '(%s)' % ','.join('%s=%s' % (k, _fmt_value(v)) for k, v in params.items())
    return label


def _fmt_value(v):
    return '%g' % v if isinstance(v, float) else str(v)


def parse_spec(text):
    """``[LABEL=]NAME[:KEY=VALUE,KEY=VALUE...]`` -> a checked ``OptimizerSpec``.

    Values are literals: numbers (``3e-4``, ``10``), booleans (``true``/``false``), ``none``
    or quoted strings. Examples: ``adam``, ``adam:learning_rate=3e-4``,
    ``fast=sgd:learning_rate=0.1,momentum=0.9,nesterov=true``.
    """
    spec = text.strip()
    head, sep, rest = spec.partition(':')
    label = None
    if '=' in head:
        label, _, head = head.partition('=')
        label = label.strip()
        if not label:
            raise SpecError('optimizer spec %r is malformed: empty label before "=".' % text)
    if not head.strip():
        raise SpecError('optimizer spec %r is malformed: no optimizer name; expected '
                        'NAME[:KEY=VALUE,...], e.g. adam:learning_rate=3e-4.' % text)
    name = resolve_name(head)
    params = {}
    if sep:
        if not rest.strip():
            raise SpecError('optimizer spec %r is malformed: nothing after ":"; expected '
                            'KEY=VALUE,...' % text)
        for item in rest.split(','):
            key, eq, value = (s.strip() for s in item.partition('='))
            if not eq or not re.match(r'^[A-Za-z_][A-Za-z0-9_]*$', key) or not value:
                raise SpecError('hyperparameter %r in %r is malformed; expected KEY=VALUE, '
                                'e.g. learning_rate=3e-4.' % (item.strip(), text))
            if key in params:
                raise SpecError('hyperparameter %r is given twice in %r.' % (key, text))
            params[key] = _literal(value, item.strip(), text)
    return OptimizerSpec(label or _label(name, params), name, params).check()


def default_specs():
    """The default line-up (``LINEUP``): each label's tuned settings from the record of the
    optimizer that declares it, restricted to the optimizers registered now."""
    import gluon_opt  # noqa: F401
    tuned = {label: (record.key, params) for record in infos()
             for label, params in record.tuned.items()}
    return [OptimizerSpec(label, *tuned[label]) for label in LINEUP if label in tuned]


def unique_labels(specs):
    """Make the labels distinct (``Adam``, ``Adam#2``) so every row and curve is told apart."""
    seen = {}
    for spec in specs:
        n = seen.get(spec.label, 0) + 1
        seen[spec.label] = n
        if n > 1:
            spec.label = '%s#%d' % (spec.label, n)
    return specs


class RunResult(object):
    """One optimizer under one seed: its ``history`` (partial when it diverged) and
    ``diverged`` (the ``TrainingDiverged`` message, or None)."""

    def __init__(self, spec, seed, history, diverged=None):
        self.spec, self.seed, self.history, self.diverged = spec, seed, history, diverged

    def to_dict(self):
        out = {'label': self.spec.label, 'optimizer': self.spec.name,
               'hyperparameters': self.spec.params, 'seed': self.seed,
               'diverged': self.diverged}
        out.update(self.history.to_dict() if self.history is not None else {})
        return out


def run_comparison(specs, loaders, net_factory, epochs, seeds=(0,), ctx=None, schedule=None,
                   warmup_epochs=0.0, progress=True, log=None, on_result=None, **train_kwargs):
    """Train ``net_factory()`` with every spec under every seed; returns ``RunResult``s in
    spec-major order. A diverged run (non-finite or exploding loss, see ``training.train``)
    is reported (``log``) and kept as a result. ``on_result(result)`` is called as each run
    finishes (the command line saves it then)."""
    results = []
    steps_per_epoch = len(loaders.train)
    for spec in specs:
        for seed in seeds:
            scheduler = None
            if schedule is not None:
                scheduler = training.make_lr_scheduler(schedule, spec.learning_rate(),
                                                       steps_per_epoch, epochs, warmup_epochs)
            params = dict(spec.params)
            if scheduler is not None:
                params['learning_rate'] = spec.learning_rate()
            name = spec.label if len(seeds) == 1 else '%s/s%d' % (spec.label, seed)
            try:
                history = training.train(net_factory(), spec.name, loaders, epochs, ctx=ctx,
                                         seed=seed, optimizer_params=params,
                                         lr_scheduler=scheduler, progress=progress, name=name,
                                         **train_kwargs)
                history.meta['label'] = spec.label
                results.append(RunResult(spec, seed, history))
            except training.TrainingDiverged as err:
                if progress:
                    sys.stderr.write('\n')
                if log:
                    log('warning: %s' % err)
                if err.history is not None:
                    err.history.meta['label'] = spec.label
                results.append(RunResult(spec, seed, err.history, str(err)))
            if on_result is not None:
                on_result(results[-1])
    return results


def _mean_std(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None, None
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)


def summarize(results):
    """One row per label: the mean and spread (sample std over seeds) of the final train loss,
    test accuracy, generalisation gap (train minus test accuracy, both measured in prediction
    mode after the last epoch), mean time per epoch and optimizer-step time per epoch."""
    rows, order = {}, []
    for r in results:
        if r.spec.label not in rows:
            rows[r.spec.label] = []
            order.append(r.spec.label)
        rows[r.spec.label].append(r)
    out = []
    for label in order:
        runs = rows[label]
        done = [r for r in runs if r.diverged is None]
        row = {'label': label, 'optimizer': runs[0].spec.name,
               'hyperparameters': runs[0].spec.params, 'seeds': len(runs),
               'diverged': len(runs) - len(done),
               'diverged_message': next((r.diverged for r in runs if r.diverged), None)}
        metrics = {
            'train_loss': [r.history.final('train_loss') for r in done],
            'test_acc': [r.history.final('test_acc') for r in done],
            'gap': [r.history.final('train_acc') - r.history.final('test_acc') for r in done],
            'epoch_time': [float(np.mean(r.history.column('epoch_time')[1:])) for r in done],
            'step_time': [float(np.mean(r.history.column('step_time')[1:])) for r in done],
            # -- weight averaging: the EMA weights' accuracy (--ema), None without --ema --
            'ema_test_acc': [r.history.records[-1].get('ema_test_acc') for r in done],
        }
        for key, values in metrics.items():
            row[key], row[key + '_std'] = _mean_std(values)
        out.append(row)
    return out


def format_table(rows):
    """The terminal table of ``summarize``'s rows (spreads shown when there are several
    seeds)."""
    multi = any(r['seeds'] > 1 for r in rows)

    def cell(row, key, fmt, scale=1.0):
        if row[key] is None:
            return '-'
        text = fmt % (row[key] * scale)
        if multi:
            text += ' ±' + (fmt.replace('+', '') % (row[key + '_std'] * scale))
        return text

    header = ['optimizer', 'train loss', 'test acc %', 'gap (pts)', 's/epoch', 'step s/epoch']
    ema = any(r.get('ema_test_acc') is not None for r in rows)  # -- weight averaging --
    if ema:
        header.insert(3, 'EMA acc %')
    lines = []
    for row in rows:
        if row['diverged'] == row['seeds']:
            lines.append([row['label'], 'diverged: ' + _short_divergence(row)] +
                         [''] * (len(header) - 2))
            continue
        label = row['label'] + (' (%d/%d diverged)' % (row['diverged'], row['seeds'])
                                if row['diverged'] else '')
        lines.append([label, cell(row, 'train_loss', '%.4f'),
                      cell(row, 'test_acc', '%.2f', 100), cell(row, 'gap', '%+.2f', 100),
                      cell(row, 'epoch_time', '%.2f'), cell(row, 'step_time', '%.2f')])
        if ema:
            lines[-1].insert(3, cell(row, 'ema_test_acc', '%.2f', 100))
    widths = [max([len(header[i])] + [len(l[i]) for l in lines if l[2] or i < 1])
              for i in range(len(header))]  # (every run diverged: the header's widths)
    out = ['  '.join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(header, widths)))]
    out.append('  '.join('-' * w for w in widths))
    for l in lines:
        if not l[2]:
            out.append(l[0].ljust(widths[0]) + '  ' + l[1])
        else:
            out.append('  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(l, widths))))
    return '\n'.join(out)


def _short_divergence(row):
    msg = row['diverged_message'] or ''
    m = re.search(r'(?:became|exploded to) (\S+) at epoch (\d+), batch (\d+)', msg)
    if m:
        return 'loss %s at epoch %s, batch %s' % m.groups()
    m = re.search(r'(gradients|weights) became NaN or inf (?:at|by) epoch (\d+), batch (\d+)',
                  msg)
    return ('%s NaN/inf at epoch %s, batch %s' % m.groups()) if m else msg


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return str(obj)


def write_tables(out, results, rows, config, complete=True):
    """Write (each atomically) into the ``outputs.Output`` ``out``: ``history.csv`` (one line
    per run and epoch), ``summary.csv`` and ``history.json`` (config, summary, every run's
    epochs and loss samples; ``complete`` false while runs are missing). Called after every
    finished run, so an interrupted comparison keeps the runs it finished."""
    fields = training.History.FIELDS
    if any('ema_test_acc' in rec for r in results for rec in (r.history.records if r.history
                                                              is not None else [])):
        fields += ('ema_test_loss', 'ema_test_acc')  # -- weight averaging (--ema) --
    with out.open('history.csv', newline='') as f:
        w = csv.writer(f)
        w.writerow(['label', 'optimizer', 'seed', 'diverged'] + list(fields))
        for r in results:
            for rec in (r.history.records if r.history is not None else []):
                w.writerow([r.spec.label, r.spec.name, r.seed, int(r.diverged is not None)]
                           + ['' if rec[k] is None else rec[k] for k in fields])
    with out.open('summary.csv', newline='') as f:
        keys = ['label', 'optimizer', 'seeds', 'diverged', 'train_loss', 'train_loss_std',
                'test_acc', 'test_acc_std', 'gap', 'gap_std', 'epoch_time', 'epoch_time_std',
                'step_time', 'step_time_std', 'ema_test_acc', 'ema_test_acc_std',
                'hyperparameters']
        w = csv.writer(f)
        w.writerow(keys)
        for row in rows:
            w.writerow(['' if row[k] is None else
                        (json.dumps(row[k]) if isinstance(row[k], dict) else row[k])
                        for k in keys])
    with out.open('history.json') as f:
        json.dump(outputs.finite_json({'config': config, 'complete': complete, 'summary': rows,
                           'runs': [r.to_dict() for r in results]}), f, indent=1,
                  default=_json_default, allow_nan=False)
    return ['history.csv', 'history.json', 'summary.csv']


def write_plots(out, results):
    """Draw the plots of ``results`` into ``out``; returns their file names."""
    from . import plotting
    return out.drawn(lambda folder: plotting.plot_comparison(results, folder))


def write_outputs(out, results, rows, config):
    """``write_plots`` and ``write_tables``: every output of a finished comparison, the
    tables last (``history.json`` says ``complete`` once all is there). Returns the list of
    written file names."""
    plots = write_plots(out, results)
    return write_tables(out, results, rows, config) + plots


def reached(history, target):
    """Where a run's running minibatch loss first fell to ``target`` or below:
    ``(update step, wall time in seconds)`` of the first ``History.steps`` sample at or under
    it, or None when it never did. The samples are means over ``check_every`` batches, so the
    step is exact to that many updates; the wall time excludes evaluation."""
    for step, _, wall, loss in (history.steps if history is not None else ()):
        if loss <= target:
            return step, wall
    return None


__all__ += ['reached']


# -------------------------------------------------------------------------------------------
# gluon-opt compare

def add_arguments(parser):
    p = parser
    p.add_argument('--opt', dest='opts', action='append', nargs='+', metavar='SPEC',
                   help='optimizer spec [LABEL=]NAME[:KEY=VALUE,...], e.g. '
                        'adam:learning_rate=3e-4 (repeatable; default: the tuned line-up)')
    p.add_argument('--epochs', type=int, default=3, help='epochs per run (default 3)')
    p.add_argument('--batch-size', type=int, default=128, help='minibatch size (default 128)')
    p.add_argument('--hidden', default='256',
                   help="hidden layer widths, e.g. 256 or 128,128; 'none' for softmax "
                        'regression (default 256)')
    p.add_argument('--activation', default='relu', choices=models.ACTIVATIONS)
    p.add_argument('--dropout', type=float, default=0.0, help='dropout after each hidden layer')
    p.add_argument('--batch-norm', action='store_true', help='BatchNorm in each hidden layer')
    p.add_argument('--normalize', action='store_true',
                   help='standardise pixels (mean/std) after scaling to [0, 1]')
    p.add_argument('--train-subset', type=int, default=None,
                   help='train on only this many examples (quick runs)')
    p.add_argument('--seeds', type=int, nargs='+', default=[0],
                   help='seeds (initialisation, dropout, batch order; the validation split stays '
                        'fixed); with several, the table shows mean ± std (default 0)')
    p.add_argument('--ctx', default='cpu', help='cpu, gpu:0, or several: cpu:0,cpu:1')
    p.add_argument('--schedule', default='constant', choices=training.SCHEDULES,
                   help='learning-rate schedule (default constant); wsd: constant, then '
                        'the last 20%% decaying as 1-sqrt; plateau: halved after each epoch '
                        'without a better validation loss')
    p.add_argument('--warmup-epochs', type=float, default=0.0,
                   help='linear warmup from 0, in epochs (default 0)')
    p.add_argument('--out', default=None,
                   help='output folder (default runs/compare-<timestamp>); an existing empty '
                        'folder is used as it is')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out folder, only if gluon-opt wrote it (its '
                        '.gluon-opt-output marker lists everything in it)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    # -- weight averaging --
    p.add_argument('--ema', type=float, default=None, metavar='DECAY',
                   help='also evaluate an exponential moving average of the weights with this '
                        'decay (e.g. 0.999; gluon_opt.averaging.EMA, warmed up): its test '
                        'accuracy is reported beside the raw weights\'')
    return parser


def _setup(args):
    """Validate every option before anything is trained or written: ``(specs, hidden,
    net_factory, ctx, out)``, else ``OptionError`` or ``SpecError``."""
    if args.epochs < 1:
        raise OptionError('--epochs %d is invalid; expected an integer >= 1.' % args.epochs)
    if args.batch_size < 1:
        raise OptionError('--batch-size %d is invalid; expected an integer >= 1.'
                          % args.batch_size)
    if args.train_subset is not None and args.train_subset < 1:
        raise OptionError('--train-subset %d is invalid; expected an integer >= 1.'
                          % args.train_subset)
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        raise OptionError('--seeds %s is invalid; expected distinct integers >= 0.'
                          % ' '.join(map(str, args.seeds)))
    try:
        hidden = models.parse_hidden(args.hidden)
        net_factory = functools.partial(models.mlp, hidden, activation=args.activation,
                                        dropout=args.dropout, batch_norm=args.batch_norm)
        net_factory()  # a shape the model cannot take fails here, before any work
    except ValueError as err:
        raise OptionError('model shape: %s' % err)
    if args.ema is not None and not 0 < args.ema < 1:  # -- weight averaging --
        raise OptionError('--ema %g is invalid; expected a decay in (0, 1), e.g. 0.999.'
                          % args.ema)
    if not 0 <= args.warmup_epochs < args.epochs:
        raise OptionError('--warmup-epochs %g is invalid; expected 0 <= warmup < --epochs (%d).'
                          % (args.warmup_epochs, args.epochs))
    # -- schedules: WSD's warmup and decay must fit in the run --
    if args.schedule == 'wsd' and args.warmup_epochs > (1 - training.WSD_DECAY_FRACTION) \
            * args.epochs:
        raise OptionError('--warmup-epochs %g is invalid with --schedule wsd; expected at '
                          'most %g (its decay takes the last %d%% of the %d epochs).'
                          % (args.warmup_epochs, (1 - training.WSD_DECAY_FRACTION)
                             * args.epochs, 100 * training.WSD_DECAY_FRACTION, args.epochs))
    try:
        ctx = training.parse_ctx(args.ctx)
    except ValueError as err:
        raise OptionError('--ctx: %s' % err)
    if args.opts:
        specs = [parse_spec(s) for group in args.opts for s in group]
    else:
        specs = []
        for spec in default_specs():
            try:
                specs.append(spec.check())
            except SpecError as err:  # a default that does not fit this build
                print('note: leaving %s out of the default line-up: %s'
                      % (spec.label, err), file=sys.stderr)
    if not specs:
        raise OptionError('no optimizer to compare.')
    unique_labels(specs)
    out = outputs.Output(args.out or os.path.join(
        'runs', 'compare-' + datetime.datetime.now().strftime('%Y%m%d-%H%M%S')),
        'compare', overwrite=args.overwrite)
    return specs, hidden, net_factory, ctx, out


def run(args):
    """``gluon-opt compare``: train, save each run as it finishes, print the table; returns
    the exit status (128 + the signal when SIGINT or SIGTERM stopped it)."""
    specs, hidden, net_factory, ctx, out = _setup(args)
    progress = not args.no_progress
    t0 = time.perf_counter()
    try:
        loaders = data.load_fashion_mnist(batch_size=args.batch_size, normalize=args.normalize,
                                          train_subset=args.train_subset, seed=0)
    except data.DataFileError as err:
        print('gluon-opt compare: error: %s' % err, file=sys.stderr)
        return 1
    except ValueError as err:
        raise OptionError(str(err))
    shape = '-'.join(str(w) for w in (784,) + hidden + (10,))
    print('Comparing %d optimizer%s on Fashion-MNIST (%d train / %d val / %d test): MLP %s '
          '(%s%s%s), %d epoch%s, batch %d, seed%s %s, %s, lr schedule %s%s.' % (
              len(specs), '' if len(specs) == 1 else 's', loaders.train.num_examples,
              loaders.val.num_examples if loaders.val else 0, loaders.test.num_examples, shape,
              args.activation, ', dropout %g' % args.dropout if args.dropout else '',
              ', batch norm' if args.batch_norm else '', args.epochs,
              '' if args.epochs == 1 else 's', args.batch_size,
              '' if len(args.seeds) == 1 else 's', ','.join(map(str, args.seeds)),
              ','.join(str(c) for c in ctx), args.schedule,
              ' (warmup %g epochs)' % args.warmup_epochs if args.warmup_epochs else ''))
    from .. import kernels
    kernels.prebuild()  # before the first timed step: a build never falls inside a timing
    config = {k: v for k, v in vars(args).items() if k not in ('func', 'opts', 'prog')}
    config.update({'hidden': list(hidden), 'ctx': [str(c) for c in ctx],
                   'optimizers': [{'label': s.label, 'name': s.name, 'params': s.params}
                                  for s in specs],
                   'train_examples': loaders.train.num_examples})
    results = []

    def keep(result):  # every finished run is saved at once: an interruption keeps it
        results.append(result)
        write_tables(out, results, summarize(results), config, complete=False)
    total = len(specs) * len(args.seeds)
    try:
        run_comparison(
            specs, loaders, net_factory, args.epochs, seeds=args.seeds, ctx=ctx,
            schedule=None if args.schedule == 'constant' and not args.warmup_epochs
            else args.schedule, warmup_epochs=args.warmup_epochs, progress=progress,
            log=lambda msg: print(msg, file=sys.stderr), on_result=keep, ema=args.ema)
        rows = summarize(results)
        config['total_time_s'] = time.perf_counter() - t0
        files = write_outputs(out, results, rows, config)
        out.finish()
    except KeyboardInterrupt as stop:  # SIGINT, or SIGTERM (gluon_opt.cli.main raises it)
        signum = getattr(stop, 'signum', signal.SIGINT)
        if progress:
            sys.stderr.write('\n')
        if results:  # the tables are rewritten whole: a write the signal cut short is redone
            write_tables(out, results, summarize(results), config, complete=False)
            write_plots(out, results)
            out.finish(complete=False)
        print('%s: interrupted by %s after %d of %d run%s; %s' % (
            args.prog, signal.Signals(signum).name, len(results), total,
            '' if total == 1 else 's', 'the finished ones are in %s/ (marked incomplete)'
            % out.given if results else 'nothing was written.'), file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:
        raise  # stdout closed: gluon_opt.cli.main ends quietly
    except OSError as err:  # the folder checked writable at the start no longer is
        print('%s: error: cannot write %s: %s' % (args.prog, out.given, err.strerror or err),
              file=sys.stderr)
        return 1
    print()
    print(format_table(rows))
    print()
    print('train loss and gap (train minus test accuracy, in points) are measured after the '
          'last epoch;\ns/epoch is training time, step s/epoch the part of it in Trainer.step.')
    print('Wrote %s/: %s' % (out.given, ', '.join(files)))
    print('Total time %.1f s.' % (time.perf_counter() - t0))
    return 0
