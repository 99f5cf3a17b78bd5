"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner.

Shampoo preconditions a matrix gradient ``G`` by Kronecker factors ``L = E[G G^T]`` and
``R = E[G^T G]``. SOAP keeps those factors, rotates the gradient into their eigenbases
(``Q_L^T G Q_R``), runs Adam there, and rotates the Adam direction back. The eigenbases change
slowly, so they are refreshed only every ``precondition_frequency`` steps, by one step of power
iteration and a QR factorisation (the first one by a full eigendecomposition); between
refreshes a step costs a few matrix products per tensor.

Follows the authors' code (github.com/nikhilvyas/SOAP, the version of the paper) as
pytorch-optimizer's ``SOAP`` transcribes it; that class is the oracle of
``tests/test_soap.py``.

Reference: Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson & Kakade, "SOAP:
Improving and Stabilizing Shampoo using Adam", ICLR 2025 (arXiv:2409.11321, 2024).
"""
import math
import os

import numpy as np
from mxnet import nd

from ..base import (GluonOptOptimizer, check_range, check_positive, check_int, check_bool,
                    IMPL_ENV)
from ..registry import register
from ... import kernels

__all__ = ['SOAP']


def _compute_dtype(dtype):
    """SOAP's states and matrices are float64 for float64 weights, else float32: MXNet's
    ``linalg`` has no float16 eigensolver, and float16 second moments of rotated gradients
    underflow."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def _canonical_signs(q):
    """``q`` with each column's sign chosen so that its entry of largest magnitude is
    positive. Eigenvectors and QR columns are defined up to sign, and LAPACK builds (MXNet's,
    NumPy's, cuSOLVER) choose differently; SOAP's update is the same for either sign (a column
    sign multiplies a rotated coordinate and its moment twice), so fixing it changes no
    weight, but makes the states a function of the data that tests can compare."""
    big = nd.argmax(nd.abs(q), axis=0)
    signs = nd.sign(nd.pick(q, big, axis=0))
    return nd.broadcast_mul(q, signs.reshape((1, -1)))


def _eigenbasis(gg):
    """Eigenvectors of the symmetric ``gg`` as columns, eigenvalues descending (as the paper's
    ``torch.flip(torch.linalg.eigh(m)[1], [1])``): MXNet's ``syevd`` returns them as rows,
    ascending."""
    rows, _ = nd.linalg.syevd(gg)
    return _canonical_signs(nd.flip(rows, axis=0).T)


def _qr_q(a):
    """The Q of a QR factorisation of the square ``a``, by MXNet's LQ factorisation of ``a^T``
    (``a^T = L Q'`` gives ``a = Q'^T L^T``, ``L^T`` upper triangular)."""
    q_rows, _ = nd.linalg.gelqf(a.T)
    return _canonical_signs(q_rows.T)


def _unfold(x, axis):
    """The mode-``axis`` unfolding of ``x``: axis ``axis`` first, the others flattened."""
    if axis:
        x = nd.moveaxis(x, axis, 0)
    return x.reshape((x.shape[0], -1))


def project(x, bases, back=False):
    """``x`` in the eigenbases (``back=False``: ``Q_L^T X Q_R`` for a matrix, each ``Q_i^T``
    applied along axis ``i`` in general) or back to the original one (``back=True``:
    ``Q_L X Q_R^T``). ``bases`` has one matrix per axis of ``x``, None for an axis left as it is
    (the identity). Matrix products on ``x``'s context."""
    if all(q is None for q in bases):
        return x
    if x.ndim == 2:
        left, right = bases
        if left is not None:
            x = nd.dot(left, x, transpose_a=not back)
        if right is not None:
            x = nd.dot(x, right, transpose_b=back)
        return x
    # as torch.tensordot(x, q, [[0], [0]]) along each axis in turn: contract axis 0, which
    # puts the rotated axis last, so after ndim rounds the axes are back in order
    for q in bases:
        rest = x.shape[1:]
        flat = x.reshape((x.shape[0], -1))
        if q is not None:
            flat = nd.dot(q, flat, transpose_a=not back)
        x = flat.T.reshape(rest + (flat.shape[0],))
    return x


def _state_bytes(shape, max_precond_dim=10000, precondition_1d=False):
    """Bytes of one float32 tensor's states with the defaults: Adam's two moments, and a
    Kronecker factor and its eigenbasis (two d x d matrices) for each preconditioned axis of
    length d (every axis of a tensor of two or more dimensions up to ``max_precond_dim``;
    vectors only with ``precondition_1d``), and the step counter."""
    n = int(np.prod(shape))
    dims = SOAP.preconditioned_axes(shape, max_precond_dim, precondition_1d)
    return 4 * (2 * n + sum(2 * shape[i] ** 2 for i in dims) + 1)


def _step_bytes(shape):
    """The elementwise traffic of a step (read w, g and the two moments, write w and the
    moments: 7 float32 arrays, as Adam) and of the Kronecker factors (read and write each, read
    its basis: 3 d x d per preconditioned axis). The matrix products' intermediates (the
    rotated gradient and update) and the refresh every ``precondition_frequency`` steps come
    on top and are not counted."""
    n = int(np.prod(shape))
    dims = SOAP.preconditioned_axes(shape, 10000, False)
    return 4 * (7 * n + sum(3 * shape[i] ** 2 for i in dims))


@register
class SOAP(GluonOptOptimizer):
    r"""SOAP: Adam in the eigenbasis of Shampoo's Kronecker-factored preconditioner.

    Update rule for a matrix weight :math:`W` (:math:`G` the gradient, rescaled and clipped;
    :math:`k` counts this tensor's steps, the first of which only sets up the bases;
    :math:`\eta` = ``learning_rate``, :math:`\lambda` = ``wd``, :math:`\beta_s` =
    ``shampoo_beta``, :math:`f` = ``precondition_frequency``):

    .. math::

        k = 0&: \quad L \leftarrow (1 - \beta_s) G G^\top, \;
            R \leftarrow (1 - \beta_s) G^\top G, \;
            Q_L, Q_R \leftarrow \operatorname{eigh}(L), \operatorname{eigh}(R)
            \text{ (eigenvalues descending); no update} \\
        k \ge 1&: \quad G' = Q_L^\top G \, Q_R \qquad \text{(the gradient in the eigenbasis)} \\
        M &\leftarrow \beta_1 M + (1 - \beta_1) G', \quad
        V \leftarrow \beta_2 V + (1 - \beta_2) G'^2 \\
        W &\leftarrow \Bigl(W - \eta \, \frac{\sqrt{1 - \beta_2^k}}{1 - \beta_1^k} \,
            Q_L \frac{M}{\sqrt{V} + \epsilon} Q_R^\top\Bigr) (1 - \eta \lambda) \\
        L &\leftarrow \beta_s L + (1 - \beta_s) G G^\top, \quad
        R \leftarrow \beta_s R + (1 - \beta_s) G^\top G \\
        \text{if } k \bmod f = 0&: \quad \text{for } (P, Q) \in \{(L, Q_L), (R, Q_R)\}:
            \; \pi = \operatorname{argsort}_\downarrow \operatorname{diag}(Q^\top P Q), \;
            Q \leftarrow \operatorname{qr}(P \, Q_{:, \pi}), \;
            V \leftarrow V \text{ permuted by } \pi \text{ along that axis}; \;
            M \text{ rotated exactly into the new bases}

    A tensor of any number of dimensions takes one factor per axis (``P_i`` the EMA of its
    mode-``i`` unfolding times its transpose, ``Q_i^T`` applied along axis ``i``). An axis
    longer than ``max_precond_dim`` keeps the identity (no factor, no matrix products on it).
    Vectors take plain Adam with these conventions (bias correction, epsilon, first step
    skipped) unless ``precondition_1d``. The defaults are the paper's code's.

    Parameters
    ----------
    learning_rate : float, default 3e-3
    beta1, beta2 : float in [0, 1), default 0.95, 0.95 (Adam's moments in the eigenbasis)
    epsilon : float > 0, default 1e-8 (added to the uncorrected ``sqrt(V)``, as the code)
    shampoo_beta : float in [0, 1) or None, default None (use ``beta2``): the EMA rate of the
        Kronecker factors
    precondition_frequency : int >= 1, default 10: steps between refreshes of the bases
    max_precond_dim : int >= 1, default 10000: longer axes are not preconditioned
    precondition_1d : bool, default False: precondition vectors with one factor too
    correct_bias : bool, default True: Adam's bias corrections, folded into the step size
    wd : float >= 0, default 0.01; decoupled, after the step: ``W <- W (1 - lr * wd)``

    Implementation: every matrix product (the factors' updates, the rotations) is ``nd.dot``
    on the weight's context, and so is the refresh (``nd.linalg.syevd`` for the first bases,
    ``nd.linalg.gelqf`` for the QR factorisations, ``nd.argsort``/``nd.take`` for the
    reordering). The fused path (opt-in: ``use_fused=True`` or ``GLUON_OPT_IMPL=fused``; the
    default ``auto`` takes the reference, which measured as fast or faster, see
    docs/performance.md) runs the same products and does the elementwise parts in two kernel
    passes over all tensors of a call: Adam in the eigenbasis (``gopt_adam`` on the rotated
    gradient, writing ``M / (sqrt(V) + eps)``) and the step with the decay
    (``gopt_muon_apply``); it repeats the reference's float32 operations, so the two paths
    agree to the last bit.

    Conventions, against the paper's code (and pytorch-optimizer's ``SOAP``, the oracle):

    * MXNet names: ``learning_rate``, ``beta1``/``beta2`` (``betas``), ``epsilon`` (``eps``),
      ``wd`` (``weight_decay``), ``max_precond_dim`` (pytorch-optimizer:
      ``max_precondition_dim``).
    * The first moment is kept in the eigenbasis and rotated exactly (back with the old bases,
      forward with the new) at each refresh; pytorch-optimizer keeps it in the original basis
      and projects it every step. The two are equal (the rotations are linear and orthogonal),
      and ours needs two rotations per step instead of three. The second moment is only
      reordered at a refresh, as in the paper's code.
    * The step counter ``k`` is SOAP's own, per tensor, in the state ``step`` (the paper's code
      keeps it per tensor, pytorch-optimizer per parameter group): the setup step happens on a
      state's first update whatever MXNet's update count (``begin_num_update``), and resumes
      with the state.
    * The bases' column signs are canonical (largest entry positive); see ``_canonical_signs``.
    * Weight decay multiplies the weight after the step: ``W <- W d - (s d) U`` with
      ``d = 1 - lr * wd``, which is the code's ``(W - s U) d`` in one pass.
    * Not offered: ``merge_dims`` (an axis is preconditioned on its own or not at all; code
      default False), ``normalize_gradient`` (code default False), ``data_format``.
    * The later refactoring of the authors' code (``beta_debias`` moving averages, epsilon as
      ``max(sqrt(V), eps)``, factors averaged at ``beta2``'s debiased rate, decay before the
      step) is not followed: the paper's and pytorch-optimizer's version is.
    * A rank-deficient factor (``L = G G^T`` of one (m, n) gradient with m > n at the first
      step, or any factor of a vector with ``precondition_1d``) has a degenerate eigenspace,
      whose basis is whatever the eigensolver returns: implementations then agree on the
      weights only in that subspace's invariants, not elementwise. It fills up in a few steps.
    * A direction no gradient ever has (an exact null direction of a factor: a softmax
      classifier's gradient rows sum to zero over the classes) gets rotated gradients of
      rounding noise, which Adam's ``M / (sqrt(V) + eps)`` turns into steps of about ``lr``
      unless ``epsilon`` is above that noise. The paper's code does the same; for a softmax
      output layer the step along the all-ones direction does not change the predictions.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.soap',
                                {'learning_rate': 3e-3, 'precondition_frequency': 10})
    """
    name = 'soap'
    label = 'SOAP'
    family = 'shampoo'
    paper = ('Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson & Kakade, "SOAP: '
             'Improving and Stabilizing Shampoo using Adam", ICLR 2025')
    oracle = "pytorch_optimizer.SOAP (the authors' code, github.com/nikhilvyas/SOAP)"
    default_learning_rate = 3e-3
    # best of {1e-3, 3e-3, 1e-2} on the course MLP (gluon-opt compare, 3 epochs, seed 0): test
    # accuracy 89.74, 89.95, 88.56% (Adam at its tuned 1e-3: 87.44%); 3e-3 is also the paper's
    tuned = {'SOAP': {'learning_rate': 3e-3}}
    bench_hyperparameters = {'learning_rate': 3e-3}
    step_bytes = staticmethod(_step_bytes)
    state_bytes = staticmethod(_state_bytes)
    # gopt_adam in the eigenbasis, then gopt_muon_apply writes the weight (_fused_update)
    fused_op = 'gopt_muon_apply'

    def __init__(self, learning_rate=None, beta1=0.95, beta2=0.95, epsilon=1e-8,
                 shampoo_beta=None, precondition_frequency=10, max_precond_dim=10000,
                 precondition_1d=False, correct_bias=True, wd=0.01, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.shampoo_beta = None if shampoo_beta is None else check_range(
            owner, 'shampoo_beta', shampoo_beta, 0.0, 1.0)
        self.precondition_frequency = check_int(owner, 'precondition_frequency',
                                                precondition_frequency, 1)
        self.max_precond_dim = check_int(owner, 'max_precond_dim', max_precond_dim, 1)
        self.precondition_1d = check_bool(owner, 'precondition_1d', precondition_1d)
        self.correct_bias = check_bool(owner, 'correct_bias', correct_bias)
        super(SOAP, self).__init__(learning_rate=learning_rate, wd=wd, **kwargs)

    # -- states ----------------------------------------------------------------------------
    @staticmethod
    def preconditioned_axes(shape, max_precond_dim, precondition_1d):
        """The axes of a tensor of ``shape`` that take a Kronecker factor."""
        if len(shape) == 1 and not precondition_1d:
            return ()
        return tuple(i for i, d in enumerate(shape) if d <= max_precond_dim)

    def axes(self, shape):
        return self.preconditioned_axes(tuple(shape), self.max_precond_dim,
                                        self.precondition_1d)

    state_names = ('exp_avg', 'exp_avg_sq', 'step')

    def state_names_for(self, shape):
        mats = tuple(n for i in self.axes(shape) for n in ('gg%d' % i, 'q%d' % i))
        return ('exp_avg', 'exp_avg_sq') + mats + ('step',)

    def create_state(self, index, weight):
        dtype = _compute_dtype(weight.dtype)
        ctx = weight.context
        moments = tuple(nd.zeros(weight.shape, ctx=ctx, dtype=dtype) for _ in range(2))
        mats = tuple(nd.zeros((weight.shape[i],) * 2, ctx=ctx, dtype=dtype)
                     for i in self.axes(weight.shape) for _ in range(2))
        return moments + mats + (nd.zeros((1,), ctx=ctx, dtype=dtype),)

    def _parts(self, shape, state):
        """``(M, V, factors, bases, counter)``; factors and bases list one entry per axis
        (None where the axis is not preconditioned)."""
        factors, bases = [None] * len(shape), [None] * len(shape)
        for j, i in enumerate(self.axes(shape)):
            factors[i], bases[i] = state[2 + 2 * j], state[3 + 2 * j]
        return state[0], state[1], factors, bases, state[-1]

    # -- the update ------------------------------------------------------------------------
    @property
    def _shampoo_beta(self):
        return self.beta2 if self.shampoo_beta is None else self.shampoo_beta

    def step_size(self, lr, k):
        """``lr * sqrt(1 - beta2^k) / (1 - beta1^k)`` (``lr`` without ``correct_bias``)."""
        if not self.correct_bias:
            return lr
        return lr * math.sqrt(1.0 - self.beta2 ** k) / (1.0 - self.beta1 ** k)

    def step(self, weight, grad, state, lr, wd, t):
        # t (MXNet's count) is not used: SOAP counts its own steps in the state (see Conventions)
        mean, var, factors, bases, counter = self._parts(weight.shape, state)
        grad = grad.astype(mean.dtype, copy=False)
        k = self._begin(counter)
        if k == 0:
            self._setup(grad, factors, bases)
            return
        rotated = project(grad, bases)
        mean[:] = self.beta1 * mean + (1 - self.beta1) * rotated
        var[:] = self.beta2 * var + (1 - self.beta2) * nd.square(rotated)
        update = project(mean / (nd.sqrt(var) + self.epsilon), bases, back=True)
        decay, coef = self._apply_scalars(lr, wd, k)
        if weight.dtype != mean.dtype:  # float16 weights without master copies
            weight[:] = (weight.astype(mean.dtype) * decay - coef * update).astype(weight.dtype)
        else:
            weight[:] = weight * decay - coef * update
        self._precondition(grad, state, factors, bases, k)

    def _begin(self, counter):
        """SOAP's step ``k`` of this tensor (0: the setup step), counted in the state."""
        k = int(counter.asscalar())
        counter[:] = k + 1
        return k

    def _apply_scalars(self, lr, wd, k):
        """``(d, s d)``, ``d = 1 - lr * wd``: the code's ``W <- (W - s U) d`` as
        ``W d - (s d) U``, one pass."""
        decay = 1.0 - lr * wd
        return decay, self.step_size(lr, k) * decay

    def _accumulate(self, grad, factors, rate):
        """``P_i <- beta_s P_i + (1 - beta_s) G_(i) G_(i)^T`` for every preconditioned axis."""
        beta = self._shampoo_beta
        for i, factor in enumerate(factors):
            if factor is None:
                continue
            if grad.ndim == 2:
                outer = nd.dot(grad, grad, transpose_b=i == 0, transpose_a=i == 1)
            else:
                unfolded = _unfold(grad, i)
                outer = nd.dot(unfolded, unfolded, transpose_b=True)
            factor[:] = beta * factor + (1 - beta) * outer if rate else (1 - beta) * outer

    def _setup(self, grad, factors, bases):
        """The first step: the factors of one gradient, their eigenbases; no update (the
        paper's code never projects a gradient onto bases it helped build)."""
        self._accumulate(grad, factors, rate=False)
        for factor, basis in zip(factors, bases):
            if factor is not None:
                basis[:] = _eigenbasis(factor)

    def _precondition(self, grad, state, factors, bases, k):
        """After the step: the factors take the gradient; every ``precondition_frequency``
        steps the bases are refreshed (one power iteration and QR per axis, eigenvalues kept
        descending by reordering, the second moment reordered alike) and the first moment
        rotated into the new bases."""
        self._accumulate(grad, factors, rate=True)
        if k % self.precondition_frequency:
            return
        mean, var = state[0], state[1]
        original = project(mean, bases, back=True)
        sorted_var = var
        for i, (factor, basis) in enumerate(zip(factors, bases)):
            if factor is None:
                continue
            power = nd.dot(factor, basis)
            order = nd.argsort(nd.sum(basis * power, axis=0), is_ascend=False)
            sorted_var = nd.take(sorted_var, order, axis=i)
            basis[:] = _qr_q(nd.take(power, order, axis=1))
        var[:] = sorted_var
        mean[:] = project(original, bases)

    # -- the fused path --------------------------------------------------------------------
    def _fused_selected(self):
        # Opt-in (use_fused=True or GLUON_OPT_IMPL=fused): the matrix products dominate a step,
        # and with the kernels' OpenMP team beside OpenBLAS's threads the fused step measured
        # slower than the reference on the course MLP (51 against 35 ms, interleaved; equal
        # with OMP_NUM_THREADS=1), so 'auto' keeps the reference.
        if self.use_fused is None and os.environ.get(IMPL_ENV, 'auto').strip().lower() in (
                '', 'auto'):
            return False
        return super(SOAP, self)._fused_selected()

    def _fused_update(self, items):
        """The same update as ``step`` with its elementwise parts in two kernel passes over
        all the call's tensors (the matrix products as in ``step``); returns the items the
        kernels do not take (float64, or a context without the kernels), which the reference
        updates, and those at their setup step (no elementwise work)."""
        rest, taken = [], []
        for item in items:
            if not (self.fusable(item, 'gopt_adam') and self.fusable(item, 'gopt_muon_apply')):
                rest.append(item)
                continue
            k = int(item.state[-1].asscalar())
            if k == 0:
                rest.append(item)
            else:
                taken.append((item, k))
        if not taken:
            return rest
        adam_calls, work = [], []
        for item, k in taken:
            mean, var, factors, bases, counter = self._parts(item.weight.shape, item.state)
            grad = item.grad if item.master is None else item.grad.astype(np.float32)
            grad = self.prepare_grad(grad)
            counter[:] = k + 1
            # scratch weight 0: gopt_adam's 0 - (-1 * M) / (sqrt(V / 1) + eps) is exactly the
            # reference's M / (sqrt(V) + eps)
            scratch = nd.zeros(item.weight.shape, ctx=item.weight.context)
            adam_calls.append(([scratch, project(grad, bases), mean, var], scratch,
                               (-1.0, 1.0, 0.0, 1.0)))
            work.append((item, grad, factors, bases, k, scratch))
        kernels.call('gopt_adam', adam_calls, ns=2, mp=0, beta1=self.beta1, beta2=self.beta2,
                     epsilon=self.epsilon, rescale='1.0', clip='-1')
        apply_calls = []
        for item, grad, factors, bases, k, scratch in work:
            fast = item.weight if item.master is None else item.master
            apply_calls.append(([fast, project(scratch, bases, back=True)], fast,
                                self._apply_scalars(item.lr, item.wd, k)))
        kernels.call('gopt_muon_apply', apply_calls, ns=0, mp=0, rescale='1.0', clip='-1')
        for item, grad, factors, bases, k, _ in work:
            if item.master is not None:
                nd.cast(item.master, dtype=item.weight.dtype, out=item.weight)
            self._precondition(grad, item.state, factors, bases, k)
        return rest
