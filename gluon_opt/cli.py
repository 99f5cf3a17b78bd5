"""The ``gluon-opt`` command line.

Every subcommand is one ``Subcommand(name, help, add_arguments, run)`` in ``SUBCOMMANDS``:
``add_arguments(parser)`` declares its options, ``run(args)`` does the work and returns the
exit status. Adding a subcommand is adding one entry; ``main`` does the rest.

Errors the user can fix (a bad option, an unknown optimizer, an output folder that is not
the tool's to replace, see ``gluon_opt.outputs``) print one line,
``gluon-opt <command>: error: <what is wrong>``, and exit with status 2. SIGINT and SIGTERM
stop a command with one line and status 130 or 143 (``compare`` keeps the runs it finished);
a closed pipe (``gluon-opt list | head``) ends it quietly.
"""
import argparse
import collections
import datetime
import os
import signal
import sys
import threading
import time

from .outputs import Output, OutputError

__all__ = ['main', 'Subcommand', 'SUBCOMMANDS', 'UsageError']

Subcommand = collections.namedtuple('Subcommand', 'name help add_arguments run')


class UsageError(Exception):
    """A bad option or value: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), still exit status 2."""

    def error(self, message):
        self.exit(2, '%s: error: %s (see %s --help)\n' % (self.prog, message, self.prog))


# ------------------------------------------------------------------------------- list

def _list_arguments(parser):
    parser.add_argument('--family', help='only the optimizers of this family')


def _run_list(args):
    import gluon_opt
    shown = 0
    for name, cls in gluon_opt.REGISTRY.items():
        if args.family and cls.family != args.family:
            continue
        shown += 1
        defaults = ', '.join('%s=%r' % kv for kv in sorted(cls.hyperparameters().items()))
        print('gluon_opt.%s' % name)
        print('    family:  %s' % (cls.family or '-'))
        print('    paper:   %s' % (cls.paper or '-'))
        print('    defaults: %s' % defaults)
    if args.family and not shown:
        families = sorted({c.family for c in gluon_opt.REGISTRY.values() if c.family})
        raise UsageError('no optimizer of family %r; families: %s.'
                         % (args.family, ', '.join(families)))
    return 0


# ---------------------------------------------------------------------------- compare

def _compare_arguments(parser):
    from .models import ACTIVATIONS
    from .training import SCHEDULES
    p = parser
    p.add_argument('--opt', dest='opts', action='append', nargs='+', metavar='SPEC',
                   help='optimizer spec [LABEL=]NAME[:KEY=VALUE,...], e.g. '
                        'adam:learning_rate=3e-4 (repeatable; default: the tuned line-up)')
    p.add_argument('--epochs', type=int, default=3, help='epochs per run (default 3)')
    p.add_argument('--batch-size', type=int, default=128, help='minibatch size (default 128)')
    p.add_argument('--hidden', default='256',
                   help="hidden layer widths, e.g. 256 or 128,128; 'none' for softmax "
                        'regression (default 256)')
    p.add_argument('--activation', default='relu', choices=ACTIVATIONS)
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
    p.add_argument('--schedule', default='constant', choices=SCHEDULES,
                   help='learning-rate schedule (default constant)')
    p.add_argument('--warmup-epochs', type=float, default=0.0,
                   help='linear warmup from 0, in epochs (default 0)')
    p.add_argument('--out', default=None,
                   help='output folder (default runs/compare-<timestamp>); an existing empty '
                        'folder is used as it is')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out folder, only if gluon-opt wrote it (its '
                        '.gluon-opt-output marker lists everything in it)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')


def _compare_setup(args):
    """Validate every option before anything is trained or written; UsageError otherwise."""
    from . import compare, models, training
    if args.epochs < 1:
        raise UsageError('--epochs %d is invalid; expected an integer >= 1.' % args.epochs)
    if args.batch_size < 1:
        raise UsageError('--batch-size %d is invalid; expected an integer >= 1.'
                         % args.batch_size)
    if args.train_subset is not None and args.train_subset < 1:
        raise UsageError('--train-subset %d is invalid; expected an integer >= 1.'
                         % args.train_subset)
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        raise UsageError('--seeds %s is invalid; expected distinct integers >= 0.'
                         % ' '.join(map(str, args.seeds)))
    try:
        hidden = models.parse_hidden(args.hidden)
        models.mlp(hidden, activation=args.activation, dropout=args.dropout,
                   batch_norm=args.batch_norm)
    except ValueError as err:
        raise UsageError('model shape: %s' % err)
    if not 0 <= args.warmup_epochs < args.epochs:
        raise UsageError('--warmup-epochs %g is invalid; expected 0 <= warmup < --epochs (%d).'
                         % (args.warmup_epochs, args.epochs))
    try:
        ctx = training.parse_ctx(args.ctx)
    except ValueError as err:
        raise UsageError('--ctx: %s' % err)
    try:
        if args.opts:
            specs = [compare.parse_spec(s) for group in args.opts for s in group]
        else:
            specs = []
            for spec in compare.default_specs():
                try:
                    specs.append(spec.check())
                except compare.SpecError as err:  # a default that does not fit this build
                    print('note: leaving %s out of the default line-up: %s'
                          % (spec.label, err), file=sys.stderr)
    except compare.SpecError as err:
        raise UsageError(str(err))
    if not specs:
        raise UsageError('no optimizer to compare.')
    compare.unique_labels(specs)
    out = Output(args.out or os.path.join(
        'runs', 'compare-' + datetime.datetime.now().strftime('%Y%m%d-%H%M%S')),
        'compare', overwrite=args.overwrite)
    return specs, hidden, ctx, out


def _run_compare(args):
    from . import compare, data, models
    specs, hidden, ctx, out = _compare_setup(args)
    progress = not args.no_progress
    t0 = time.perf_counter()
    try:
        loaders = data.load_fashion_mnist(batch_size=args.batch_size, normalize=args.normalize,
                                          train_subset=args.train_subset, seed=0)
    except data.DataFileError as err:
        print('gluon-opt compare: error: %s' % err, file=sys.stderr)
        return 1
    except ValueError as err:
        raise UsageError(str(err))
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
    config = {k: v for k, v in vars(args).items() if k not in ('func', 'opts', 'prog')}
    config.update({'hidden': list(hidden), 'ctx': [str(c) for c in ctx],
                   'optimizers': [{'label': s.label, 'name': s.name, 'params': s.params}
                                  for s in specs],
                   'train_examples': loaders.train.num_examples})
    factory = lambda: models.mlp(hidden, activation=args.activation,  # noqa: E731
                                 dropout=args.dropout, batch_norm=args.batch_norm)
    results = []

    def keep(result):  # every finished run is saved at once: an interruption keeps it
        results.append(result)
        compare.write_tables(out, results, compare.summarize(results), config, complete=False)
    total = len(specs) * len(args.seeds)
    try:
        compare.run_comparison(
            specs, loaders, factory, args.epochs, seeds=args.seeds, ctx=ctx,
            schedule=None if args.schedule == 'constant' and not args.warmup_epochs
            else args.schedule, warmup_epochs=args.warmup_epochs, progress=progress,
            log=lambda msg: print(msg, file=sys.stderr), on_result=keep)
        rows = compare.summarize(results)
        config['total_time_s'] = time.perf_counter() - t0
        files = compare.write_outputs(out, results, rows, config)
        out.finish()
    except KeyboardInterrupt as stop:  # SIGINT, or SIGTERM (see main)
        signum = getattr(stop, 'signum', signal.SIGINT)
        if progress:
            sys.stderr.write('\n')
        if results:  # the tables are rewritten whole: a write the signal cut short is redone
            compare.write_tables(out, results, compare.summarize(results), config,
                                 complete=False)
            compare.write_plots(out, results)
            out.finish(complete=False)
        print('%s: interrupted by %s after %d of %d run%s; %s' % (
            args.prog, signal.Signals(signum).name, len(results), total,
            '' if total == 1 else 's', 'the finished ones are in %s/ (marked incomplete)'
            % out.given if results else 'nothing was written.'), file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:
        raise  # stdout closed: main ends quietly
    except OSError as err:  # the folder checked writable at the start no longer is
        print('%s: error: cannot write %s: %s' % (args.prog, out.given, err.strerror or err),
              file=sys.stderr)
        return 1
    print()
    print(compare.format_table(rows))
    print()
    print('train loss and gap (train minus test accuracy, in points) are measured after the '
          'last epoch;\ns/epoch is training time, step s/epoch the part of it in Trainer.step.')
    print('Wrote %s/: %s' % (out.given, ', '.join(files)))
    print('Total time %.1f s.' % (time.perf_counter() - t0))
    return 0


def _delegate(module, usage_errors=()):
    """(add_arguments, run) of a subcommand that lives in its own module, imported only when
    that subcommand is used or its options are declared. ``usage_errors`` names the module's
    exception classes that mean "the user asked for something impossible" (one line, exit 2)."""
    import importlib

    def add_arguments(parser):
        return importlib.import_module(module).add_arguments(parser)

    def run(args):
        mod = importlib.import_module(module)
        errors = tuple(getattr(mod, name) for name in usage_errors)
        try:
            return mod.run(args)
        except errors as err:
            raise UsageError(str(err)) from None
    return add_arguments, run


SUBCOMMANDS = [
    Subcommand('compare', 'train an MLP on Fashion-MNIST with several optimizers and compare '
               'them (table, CSV/JSON history, plots)', _compare_arguments, _run_compare),
    Subcommand('list', 'list every gluon_opt optimizer with its family, paper and defaults',
               _list_arguments, _run_list),
    Subcommand('bench', 'time one optimizer step (fused, reference, MXNet built-in, torch) '
               'and report bandwidth', *_delegate('gluon_opt.bench', ('BenchError',))),
    Subcommand('launch', 'run a distributed (parameter-server) job on this machine: '
               'scheduler, servers and workers on 127.0.0.1', *_delegate('gluon_opt.distributed')),
    Subcommand('quiz', "take a chapter's quiz in the terminal (no chapter: list the quizzes)",
               *_delegate('gluon_opt.quiz.cli')),
    Subcommand('assignment', 'classroom assignments with nbgrader: release the student '
               'version, grade submissions', *_delegate('gluon_opt.assignment',
                                                        ('AssignmentError',))),
]


def build_parser():
    parser = _Parser(prog='gluon-opt', description='Optimizers for Apache MXNet Gluon.')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for cmd in SUBCOMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(func=cmd.run, prog=p.prog)
    return parser


class Interrupted(KeyboardInterrupt):
    """Raised by the SIGTERM handler ``main`` installs, so a terminated command cleans up as
    after Ctrl-C; ``signum`` is the signal."""

    def __init__(self, signum):
        super(Interrupted, self).__init__(signum)
        self.signum = signum


def _terminate(signum, _frame):
    raise Interrupted(signum)


def main(argv=None):
    """Entry point of the ``gluon-opt`` console script; returns the exit status."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # inside the try: a closed pipe shows here at the latest
        return status
    except BrokenPipeError:
        # the reader went away (gluon-opt list | head): as the Python docs advise, point
        # stdout at devnull so that the interpreter's final flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or argparse's one-line error: return its status
        return exit_.code
    if not getattr(args, 'func', None):
        parser.print_help()
        return 2
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        old_handler = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except (UsageError, OutputError) as err:
        print('%s: error: %s' % (args.prog, err), file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        signum = getattr(stop, 'signum', signal.SIGINT)
        print('%s: interrupted by %s' % (args.prog, signal.Signals(signum).name),
              file=sys.stderr)
        return 128 + signum
    finally:
        if main_thread and old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)


if __name__ == '__main__':
    sys.exit(main())
