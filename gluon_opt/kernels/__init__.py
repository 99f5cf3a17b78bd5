"""Fused optimizer kernels (C++ through MXNet's external-operator API).

Not built yet: every optimizer runs its reference ``mx.nd`` update. The interface the
optimizers call is fixed here so the kernels can land without touching them:

* ``available()``: True when the kernel library is built and loaded;
* ``require()``: raise a clear error where it is not (``use_fused=True``);
* ``fused_update(optimizer, items)``: run the items it can through the fused kernel named by
  ``optimizer.fused_op`` and return the items it could not take (the reference runs those).
"""

__all__ = ['available', 'require', 'fused_update']


def available():
    return False


def require():
    raise RuntimeError('gluon_opt fused kernels are not available in this build; '
                       'use use_fused=None/False or GLUON_OPT_IMPL=reference.')


def fused_update(optimizer, items):
    return items
