"""Does a submission implement the algorithm, or call an implementation that already exists?

An exercise such as "write Adam as a registered optimizer" is passed by numbers: the weights
after every step. A submission can produce the right numbers without the work, by handing the
step to an implementation of the same algorithm that is at hand: ``gluon_opt``'s own Adam
(subclassed, created by name, or reached through a factory such as ``mx.optimizer.create``),
MXNet's ``adam_update`` operator or optimizer classes, another library's optimizer. This
module reads the student's code (never runs it) and lists every such use::

    violations(student_sources, setup_sources) -> [Violation(cell, line, what), ...]

Student code may use numpy, math and MXNet's NDArray operators, subclass the course's base
classes (``mx.optimizer.Optimizer``, ``GluonOptOptimizer``) and call the course's teaching
helpers (data, plots, ``grading.logistic_regression``). It may not, in an exercise that asks
for an implementation:

* name an optimizer class, an optimizer factory or an ``*_update`` operator of gluon-opt or
  MXNet (``gluon_opt.optimizers.Adam``, ``mx.optimizer.create``, ``mx.nd.adam_update``,
  ``gluon.Trainer``, ``landscapes.make_optimizer``), a learning-rate schedule or gradient
  clipping of MXNet, gluoncv or gluon-opt (``mx.lr_scheduler.CosineScheduler``,
  ``gluon.utils.clip_global_norm``), or a function of gluon-opt's optimizer modules
  (``bias_corrections``) or of its checkers;
* import a module outside a short allow-list (``torch``, ``optax``, ``importlib``, ``os``...);
* use code the reader cannot follow: ``exec``, ``eval``, ``compile``, ``__import__``,
  ``getattr`` and friends, ``globals()``, dunder attributes (``__class__``, ``__dict__``;
  ``__init__`` is fine), ``get_ipython`` or IPython magics, the optimizer registry
  (``opt_registry``); or bind one of the modules above to a name (``m = mx.optimizer``).

The names are resolved against the real modules (imported here, in the grader's process), so
``from mxnet import optimizer as o; o.Adam`` is found as ``mxnet.optimizer.Adam``. What this
cannot see (and does not claim to): an algorithm copied by hand from the package's source or
a textbook, which is the student's own typing, and code shared between students.
"""
import ast
import importlib
import inspect
import types

__all__ = ['Violation', 'violations', 'ALLOWED_IMPORTS']

#: top-level modules student code may import
ALLOWED_IMPORTS = frozenset([
    'numpy', 'math', 'cmath', 'mxnet', 'gluon_opt', 'functools', 'itertools', 'operator',
    'collections', 'typing', 'dataclasses', 'fractions', 'decimal', 'statistics', 'random',
    'time', 'matplotlib', 'IPython', 'pandas'])
#: builtins that reach code or names dynamically
_DYNAMIC = frozenset(['exec', 'eval', 'compile', '__import__', 'getattr', 'setattr', 'delattr',
                      'globals', 'locals', 'vars', 'breakpoint', 'open', 'input', 'help',
                      'get_ipython', '__builtins__', '__loader__', '__spec__'])
_ATTRIBUTES = frozenset(['opt_registry', 'create_optimizer', '_updaters', '_optimizer',
                         'get_updater'])
#: modules that hold implementations: bound to a name, they could be used unseen
_MODULE_PREFIXES = ('gluon_opt', 'mxnet.optimizer', 'mxnet.gluon', 'mxnet.ndarray.contrib',
                    'mxnet.contrib', 'mxnet.kvstore', 'mxnet.ndarray.op', 'mxnet.ndarray.gen_')
#: functions of gluon-opt's teaching helpers that build or run an optimizer from a name
_FACTORIES = frozenset(['make_optimizer', 'compare_optimizers', 'create', 'resolve',
                        'resolve_reference', 'diagnose', 'mistakes_for'])
_ALLOWED_GLUON_OPT_FUNCTIONS = frozenset(['logistic_regression', 'train_mlp'])


class Violation(object):
    """One use of an existing implementation: ``cell`` (a label), ``line`` and ``what``."""

    def __init__(self, cell, line, what):
        self.cell, self.line, self.what = cell, line, what

    def __str__(self):
        return '%s, line %d: %s' % (self.cell, self.line, self.what)

    __repr__ = __str__


def _allowed_bases():
    import mxnet as mx
    from ..optimizers.base import GluonOptOptimizer
    return (mx.optimizer.Optimizer, GluonOptOptimizer)


def _resolve(dotted):
    """The object a dotted path names in the real modules, or None."""
    parts = dotted.split('.')
    obj = None
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:i]))
        except Exception:  # noqa: BLE001 (not a module: try a shorter prefix)
            continue
        for name in parts[i:]:
            try:
                obj = inspect.getattr_static(obj, name)
            except AttributeError:
                return None
            if isinstance(obj, (staticmethod, classmethod)):
                obj = obj.__func__
        return obj
    return None


def _judge_object(obj, dotted, as_value):
    """Why using ``obj`` (found as ``dotted``) delegates, or None."""
    import mxnet as mx
    if obj is None:
        return None
    if isinstance(obj, types.ModuleType):
        if as_value and obj.__name__.startswith(_MODULE_PREFIXES):
            return 'binds the module %s to a name' % obj.__name__
        return None
    if inspect.isclass(obj):
        if (obj.__module__ or '').startswith(('mxnet.lr_scheduler', 'gluon_opt')) and \
                'schedul' in obj.__name__.lower():
            return 'uses %s, an existing schedule' % dotted
        if issubclass(obj, mx.optimizer.Optimizer) and obj not in _allowed_bases():
            return 'uses %s, an optimizer that already exists' % dotted
        if obj.__name__ in ('Trainer', 'Updater') or obj.__module__.startswith(
                ('mxnet.optimizer', 'mxnet.kvstore')) and obj.__name__ != 'Optimizer':
            return 'uses %s, which runs an existing optimizer' % dotted
        return None
    name = getattr(obj, '__name__', '') or dotted.rsplit('.', 1)[-1]
    module = getattr(obj, '__module__', '') or ''
    if module.startswith(('mxnet', 'gluon_opt', 'gluoncv')) and (
            'schedul' in name.lower() or 'clip' in name.lower()
            or module.startswith(('mxnet.lr_scheduler', 'gluoncv.utils.lr_scheduler'))):
        return 'uses %s, an existing schedule or clipping' % dotted
    if 'update' in name.lower() and (module.startswith(('mxnet', 'ndarray', 'symbol'))
                                     or dotted.startswith('mxnet')):
        return 'uses %s, an existing update operator' % dotted
    if module.startswith('mxnet.optimizer') and name != 'register':
        return 'uses %s, which creates an existing optimizer' % dotted
    if module.startswith('gluon_opt'):
        if name in _ALLOWED_GLUON_OPT_FUNCTIONS:
            return None
        if module.startswith(('gluon_opt.optimizers', 'gluon_opt.kernels',
                              'gluon_opt.teaching.grading', 'gluon_opt.teaching.checking')) \
                or name in _FACTORIES or name.startswith('_'):
            return 'uses %s, part of gluon-opt\'s own implementations or checkers' % dotted
    return None


def _installed(module):
    """Whether ``module`` can be imported here (one that cannot fails in the student's run
    anyway: an error, not a delegation)."""
    import importlib.util
    try:
        return importlib.util.find_spec(module.split('.')[0]) is not None
    except (ImportError, ValueError):
        return True


def _chain(node):
    """``(root Name, [attr, ...])`` of an attribute chain ``a.b.c``, or None."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return node, attrs[::-1]
    return None


class _Reader(ast.NodeVisitor):
    def __init__(self, aliases, cell, found):
        self.aliases, self.cell, self.found = aliases, cell, found
        self.parents = {}

    def add(self, node, what):
        self.found.append(Violation(self.cell, getattr(node, 'lineno', 0), what))

    def visit_Import(self, node):
        for a in node.names:
            if a.name.split('.')[0] not in ALLOWED_IMPORTS and _installed(a.name):
                self.add(node, 'imports %s (allowed: %s)' % (a.name, ', '.join(
                    sorted(ALLOWED_IMPORTS - {'IPython', 'pandas', 'gluon_opt'}))))
                continue
            if a.asname:
                self.aliases[a.asname] = a.name
            else:
                root = a.name.split('.')[0]
                self.aliases[root] = root

    def visit_ImportFrom(self, node):
        module = node.module or ''
        if node.level or module.split('.')[0] not in ALLOWED_IMPORTS and _installed(module):
            self.add(node, 'imports from %s' % ('.' * node.level + module))
            return
        for a in node.names:
            if a.name == '*':
                self.add(node, 'imports * from %s (name what you use)' % module)
                continue
            dotted = module + '.' + a.name
            why = _judge_object(_resolve(dotted), dotted, as_value=False)
            if why:
                self.add(node, why)
            self.aliases[a.asname or a.name] = dotted

    def visit_Attribute(self, node):
        if node.attr.startswith('__') and node.attr.endswith('__') and node.attr != '__init__':
            self.add(node, 'uses the attribute %s' % node.attr)
        if node.attr in _ATTRIBUTES:
            self.add(node, 'uses %s' % node.attr)
        chain = _chain(node)
        if chain is not None and self.parents.get(id(node)) != 'attr':
            root, attrs = chain
            if root.id in self.aliases:
                dotted = '.'.join([self.aliases[root.id]] + attrs)
                if isinstance(node.ctx, ast.Load):
                    why = _judge_object(_resolve(dotted), dotted, as_value=True)
                    if why:
                        self.add(node, why)
                else:
                    self.add(node, 'assigns to %s' % dotted)
        self.parents[id(node.value)] = 'attr'
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in _DYNAMIC:
            self.add(node, 'uses %s (code the grader cannot follow)' % node.id)
        elif node.id.startswith('__') and node.id.endswith('__'):
            self.add(node, 'uses %s' % node.id)
        elif isinstance(node.ctx, ast.Load) and self.parents.get(id(node)) != 'attr' \
                and node.id in self.aliases:
            dotted = self.aliases[node.id]
            why = _judge_object(_resolve(dotted), dotted, as_value=True)
            if why:
                self.add(node, why)
        elif isinstance(node.ctx, ast.Store):
            self.aliases.pop(node.id, None)  # rebound by the student: no longer the module


def _python(source):
    """The cell as Python (IPython magics and shell escapes become ``get_ipython()`` calls,
    which are then reported)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001
        return source


def _imports(sources):
    aliases = {}
    for source in sources:
        try:
            tree = ast.parse(_python(source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    aliases[a.asname or a.name.split('.')[0]] = a.name if a.asname else \
                        a.name.split('.')[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if a.name != '*':
                        aliases[a.asname or a.name] = node.module + '.' + a.name
    return aliases


def violations(student_cells, setup_sources=()):
    """Every use of an existing implementation in ``student_cells`` (``[(label, source)]``,
    in notebook order), with the names the instructor's ``setup_sources`` import known."""
    aliases = _imports(setup_sources)
    found = []
    for label, source in student_cells:
        try:
            tree = ast.parse(_python(source))
        except SyntaxError as err:
            found.append(Violation(label, err.lineno or 0, 'is not valid Python (%s)' % err.msg))
            continue
        _Reader(aliases, label, found).visit(tree)
    return found
