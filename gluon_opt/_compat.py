"""Work-arounds for the pinned stack (mxnet 1.9.1, gluoncv 0.10.5)."""
import importlib
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
