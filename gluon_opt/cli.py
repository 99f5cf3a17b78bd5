"""The ``gluon-opt`` command line: the front door to the library, the experiments and the
teaching, and the only module that knows all three.

Every subcommand is one ``Subcommand(name, help, add_arguments, run)`` in ``SUBCOMMANDS``,
whose two functions live in the subcommand's own module: ``add_arguments(parser)`` declares
its options, ``run(args)`` does the work and returns the exit status. Adding a subcommand is
adding one entry; ``main`` does the rest.

Errors the user can fix (a bad option, an unknown optimizer, an output folder that is not
the tool's to replace, see ``gluon_opt.experiments.outputs``) print one line,
``gluon-opt <command>: error: <what is wrong>``, and exit with status 2. SIGINT and SIGTERM
stop a command with one line and status 130 or 143 (``compare`` keeps the runs it finished);
a closed pipe (``gluon-opt list | head``) ends it quietly.
"""
import argparse
import collections
import importlib
import os
import signal
import sys
import threading

from .experiments.outputs import OutputError

__all__ = ['main', 'Subcommand', 'SUBCOMMANDS', 'UsageError']

Subcommand = collections.namedtuple('Subcommand', 'name help add_arguments run')


class UsageError(Exception):
    """A bad option or value: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), still exit status 2."""

    def error(self, message):
        self.exit(2, '%s: error: %s (see %s --help)\n' % (self.prog, message, self.prog))


def _command(module, usage_errors=()):
    """``(add_arguments, run)`` of the subcommand that lives in ``module``, imported when the
    parser is built. ``usage_errors`` names the module's exception classes that mean "the
    user asked for something impossible": one line, exit status 2."""
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
               'them (table, CSV/JSON history, plots)',
               *_command('gluon_opt.experiments.compare', ('OptionError', 'SpecError'))),
    Subcommand('list', 'list every gluon_opt optimizer with its family, paper and defaults',
               *_command('gluon_opt.experiments.listing', ('FamilyError',))),
    Subcommand('bench', 'time one optimizer step (fused, reference, MXNet built-in, torch) '
               'and report bandwidth', *_command('gluon_opt.experiments.bench', ('BenchError',))),
    Subcommand('benchmark', 'which optimizer trains small networks fastest, as AlgoPerf '
               'asks it: time to a validation target under a tuning budget, scored by '
               'performance profiles',
               *_command('gluon_opt.experiments.benchmark.command',
                         ('BenchmarkError', 'WorkloadError', 'SearchSpaceError',
                          'TargetError', 'LogError'))),
    Subcommand('launch', 'run a distributed (parameter-server) job on this machine: '
               'scheduler, servers and workers on 127.0.0.1',
               *_command('gluon_opt.experiments.distributed')),
    Subcommand('course', 'copy the course notebooks into a folder (default ./gluon-opt-course) '
               'and, with --open, start JupyterLab there',
               *_command('gluon_opt.teaching.course_copy', ('CourseError',))),
    Subcommand('quiz', "take a chapter's quiz in the terminal (no chapter: list the quizzes)",
               *_command('gluon_opt.teaching.quiz.cli')),
    Subcommand('assignment', 'classroom assignments with nbgrader: release the student '
               'version, grade submissions',
               *_command('gluon_opt.teaching.assignment', ('AssignmentError',))),
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
