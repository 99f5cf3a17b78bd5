"""Work-arounds for the pinned stack (mxnet 1.9.1, gluoncv 0.10.5)."""
import importlib
import os
import sys


def import_gluoncv():
    """Import gluoncv even when torch 2.x is installed beside it.

    gluoncv 0.10.5 raises ``RuntimeError: Legacy torch==2.x detected`` at import when any
    torch >= 2 is importable, although its MXNet half does not use torch at all. Hiding torch
    for the duration of the import makes gluoncv take its MXNet-only path; torch itself is
    left untouched for everybody else.
    """
    if 'gluoncv' in sys.modules:
        return sys.modules['gluoncv']
    saved = sys.modules.get('torch', None)
    had_torch = 'torch' in sys.modules
    sys.modules['torch'] = None  # makes ``import torch`` raise ImportError
    try:
        return importlib.import_module('gluoncv')
    finally:
        if had_torch:
            sys.modules['torch'] = saved
        else:
            del sys.modules['torch']


# ---------------------------------------------------------------------------------------------
# Importing gluon_opt on an MXNet parameter server.
#
# A process started with DMLC_ROLE=server (or scheduler) runs its whole kvstore loop *inside*
# ``import mxnet``: mxnet/__init__.py imports ``contrib`` -> ``onnx`` -> ``module`` -> ``model``
# -> ``kvstore``, and ``kvstore_server`` starts the loop at import and calls ``sys.exit()``
# when the job ends. The loop unpickles the optimizer the workers send (``update_on_kvstore``),
# which imports gluon_opt into a *half-initialised* mxnet: at that point ``mxnet.ndarray``,
# ``mxnet.optimizer`` and ``mxnet.symbol`` exist, but none of the names mxnet/__init__.py binds
# after ``contrib`` (``nd``, ``sym``, ``init``, ``gluon``, ``kv``, ``library``, ...). A
# module-level ``from mxnet import nd`` raises ImportError there, MXNet only prints
# "Exception ignored on calling ctypes callback function", and the server carries on without
# an optimizer: the weights become sums of gradients.
#
# ``finish_partial_mxnet()`` binds those names the way mxnet/__init__.py would have (importing
# the submodules it would have imported), so every gluon_opt module, written the ordinary way,
# imports and runs on a server. ``fail_loudly_on_server()`` makes an exception in a server's
# ctypes callbacks (building the optimizer, or an update) end the server process with a
# message, so that the job fails instead of training on without an optimizer.

# (name bound by mxnet/__init__.py, module it names), in mxnet/__init__.py's order: a later
# entry may need an earlier one (mxnet.gluon imports ``np_symbol`` from mxnet).
_MXNET_LATE_NAMES = (
    ('ndarray', 'mxnet.ndarray'), ('nd', 'mxnet.ndarray'),
    ('numpy', 'mxnet.numpy'), ('numpy_extension', 'mxnet.numpy_extension'),
    ('np', 'mxnet.numpy'), ('npx', 'mxnet.numpy_extension'),
    ('name', 'mxnet.name'), ('symbol', 'mxnet.symbol'), ('sym', 'mxnet.symbol'),
    ('np_symbol', 'mxnet.symbol.numpy._symbol'),
    ('io', 'mxnet.io'), ('recordio', 'mxnet.recordio'), ('operator', 'mxnet.operator'),
    ('random', 'mxnet.random'), ('rnd', 'mxnet.random'), ('optimizer', 'mxnet.optimizer'),
    ('metric', 'mxnet.metric'), ('initializer', 'mxnet.initializer'),
    ('init', 'mxnet.initializer'), ('callback', 'mxnet.callback'),
    ('lr_scheduler', 'mxnet.lr_scheduler'), ('monitor', 'mxnet.monitor'),
    ('mon', 'mxnet.monitor'), ('profiler', 'mxnet.profiler'), ('image', 'mxnet.image'),
    ('img', 'mxnet.image'), ('rnn', 'mxnet.rnn'), ('autograd', 'mxnet.autograd'),
    ('gluon', 'mxnet.gluon'), ('kvstore', 'mxnet.kvstore'), ('kv', 'mxnet.kvstore'),
    ('library', 'mxnet.library'),
)


def mxnet_is_partial():
    """True while ``import mxnet`` is still running, i.e. inside a kvstore server's loop."""
    mx = sys.modules.get('mxnet')
    return mx is not None and bool(getattr(getattr(mx, '__spec__', None), '_initializing',
                                           False))


def finish_partial_mxnet():
    """Bind the names a half-initialised ``mxnet`` lacks (see above). A no-op where mxnet is
    not being imported. Returns the names it could not bind (with the reason)."""
    if not mxnet_is_partial():
        return {}
    mx = sys.modules['mxnet']
    missing = {}
    for name, module in _MXNET_LATE_NAMES:
        if hasattr(mx, name):
            continue
        try:
            setattr(mx, name, importlib.import_module(module))
        except Exception as err:  # noqa: BLE001  (one missing extra must not stop the rest)
            missing[name] = '%s: %s' % (type(err).__name__, err)
    return missing


def in_server_role():
    return os.environ.get('DMLC_ROLE', '') in ('server', 'scheduler')


_SERVER_FAILURE = ('gluon_opt: the kvstore %s (DMLC_ROLE=%s) hit an error in %s; MXNet would '
                   'only print "Exception ignored" and go on %s. Stopping this process '
                   '(exit 1) so that the job fails.')


def _server_unraisable_hook(unraisable):
    import traceback
    role = os.environ.get('DMLC_ROLE', '?')
    where = getattr(unraisable.object, '__qualname__', repr(unraisable.object))
    consequence = ('without an optimizer (the weights would become sums of gradients)'
                   if 'controller' in where else 'with this update skipped')
    lines = traceback.format_exception(unraisable.exc_type, unraisable.exc_value,
                                       unraisable.exc_traceback)
    sys.stderr.write(''.join(lines))
    sys.stderr.write(_SERVER_FAILURE % ('server', role, where, consequence) + '\n')
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(1)


def fail_loudly_on_server():
    """On a kvstore server, make an exception raised in MXNet's ctypes callbacks (unpickling
    and setting the optimizer, or running an update) end the process with exit status 1.
    Does nothing in other roles. Idempotent."""
    if in_server_role() and sys.unraisablehook is not _server_unraisable_hook:
        sys.unraisablehook = _server_unraisable_hook


def import_mxnet_deferring_server():
    """``import mxnet``; where this process is a kvstore server or scheduler and mxnet is not
    imported yet, keep mxnet from running the server loop inside the import (it would
    unpickle our optimizer before gluon_opt is defined) by presenting the role as ``worker``
    for the duration of the import. Returns True where the loop was deferred: the caller then
    runs ``run_deferred_server()`` once it has finished importing."""
    if 'mxnet' in sys.modules or not in_server_role():
        import mxnet  # noqa: F401
        return False
    role = os.environ['DMLC_ROLE']
    os.environ['DMLC_ROLE'] = 'worker'  # ps-lite reads the role from the environment each time
    try:
        import mxnet  # noqa: F401
    finally:
        os.environ['DMLC_ROLE'] = role
    return True


def run_deferred_server():
    """Run the server (or scheduler) loop mxnet would have run at import; exits the process
    when the job ends, as mxnet does."""
    from mxnet.kvstore import kvstore_server
    kvstore_server._init_kvstore_server_module()  # pylint: disable=protected-access
