"""Fused optimizer kernels: C++ through MXNet's external-operator API (``mx.library.load``).

An optimizer step is memory-bound; composed from ``mx.nd`` operations it reads and writes
every tensor many times and pays Python dispatch per operation. Each kernel here updates a
tensor in one pass (OpenMP across cores, vectorised loops), and one call takes many tensors,
so that small tensors do not pay MXNet's dispatch each.

This package is a runtime that knows no optimizer: it builds the library (``build.py``), loads
it and calls its ops (``runtime.py``), and runs an op over many tensors with calls prepared
once (``plans.py``). Which op runs an optimizer's update, with which attributes and per-tensor
scalars, is declared on the optimizer's class, beside its reference ``step`` (``fused_op``,
``fused_attrs``, ``fused_scalars`` in ``gluon_opt.optimizers.base``).

* ``available()``: True when the kernel library is built (or cached) and loaded; the first
  call builds it and, where that fails, warns once and returns False;
* ``require()``: the same, raising ``KernelBuildError`` with the compiler's message instead
  (``use_fused=True`` or ``GLUON_OPT_IMPL=fused``);
* ``update(op_name, items, attrs, scalars, plans)``: run a rule op over the update items it
  takes and return the others (the reference updates those);
* ``call(op_name, tensors, **attrs)`` and ``fusable``: for updates made of several kernels with
  other work between them (Muon, Lookahead);
* ``op(name)``: one loaded op as ``mx.nd`` exposes it (``gopt_copy`` for the benchmarks).

Taken by the kernels: dense float32 weights with float32 states, and float16 weights with
float32 master weights and states (``multi_precision``), on CPU, with the states also in
bfloat16 or 8 bits (``LOWPREC_OPS``, CPU only: ``gluon_opt.optimizers.lowprec``); on GPU too for the ops of
``GPU_OPS`` where the library was built with its CUDA kernels (a CUDA build of MXNet and nvcc,
see ``build.py``). Anything else (float16 without master weights, other contexts, Adafactor and
Lookahead's synchronisation on a GPU) falls back to the reference per item.
"""
from .build import KernelBuildError, cuda_enabled
from .runtime import (RULE_OPS, CPU_ONLY_OPS, GPU_OPS, LOWPREC_OPS, MAX_TENSORS_PER_CALL,
                      KernelBuildWarning, available, prebuild, require, has_op, op, call,
                      grad_attrs, _Call)
from .plans import update, fusable, state_kind, rounding_key

__all__ = ['available', 'prebuild', 'require', 'has_op', 'op', 'update', 'fusable', 'call',
           'grad_attrs',
           'RULE_OPS', 'CPU_ONLY_OPS', 'GPU_OPS', 'MAX_TENSORS_PER_CALL', 'KernelBuildError',
           'KernelBuildWarning', 'cuda_enabled', 'LOWPREC_OPS', 'state_kind', 'rounding_key']
