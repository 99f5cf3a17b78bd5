"""``gluon-opt list``: every registered optimizer with its family, paper and defaults."""
import gluon_opt

__all__ = ['add_arguments', 'run', 'FamilyError']


class FamilyError(ValueError):
    """``--family`` names no family (``gluon-opt list: error: ...``, exit status 2)."""


def add_arguments(parser):
    parser.add_argument('--family', help='only the optimizers of this family')
    return parser


def run(args):
    """Print the optimizers (of ``args.family``, if given); returns the exit status."""
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
        raise FamilyError('no optimizer of family %r; families: %s.'
                          % (args.family, ', '.join(families)))
    return 0
