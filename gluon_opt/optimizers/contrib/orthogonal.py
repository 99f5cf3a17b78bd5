"""Orthogonalised updates: Muon.

Muon keeps SGD momentum for every 2-D weight and replaces the update by the nearest
semi-orthogonal matrix (``U V^T`` of its SVD ``U S V^T``), approximated by a few quintic
Newton-Schulz iterations that run as matrix products only. Every singular direction of the
momentum then moves by about the same amount, which speeds up the rare directions a gradient
step barely touches. Tensors that are not matrices (biases, norm scales, and any parameter the
``adamw_params`` selector picks, typically embeddings and the classifier head) go through AdamW
inside the same optimizer.

Follows Keller Jordan's reference implementation (github.com/KellerJordan/Muon) and, for the
``scaling='moonshot'`` option, Moonshot AI's (github.com/MoonshotAI/Moonlight).

References: Jordan, Jin, Boza, You, Cesista, Newhouse & Bernstein, "Muon: An optimizer for
hidden layers in neural networks", blog post, 2024; Liu et al. (Moonshot AI), "Muon is Scalable
for LLM Training", arXiv:2502.16982, 2025.
"""
import re

import numpy as np
from mxnet import nd

from ..base import (GluonOptOptimizer, check_range, check_positive, check_int, check_choice,
                    check_bool, decay_weight, zeros_like, _fail, UpdateItem)
from ..registry import register
from ..adam import AdamW
from ... import kernels

__all__ = ['Muon', 'newton_schulz']

#: coefficients (a, b, c) of the quintic p(x) = a x + b x^3 + c x^5 (Jordan et al. 2024),
#: chosen to push every singular value in (0, 1] quickly into roughly [0.7, 1.2]
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(matrix, steps=5, eps=1e-7):
    """Approximately orthogonalise a 2-D NDArray: ``U V^T`` for ``matrix = U S V^T``.

    ``X <- matrix / (||matrix||_F + eps)`` (all singular values in [0, 1]), then ``steps``
    times ``A = X X^T``, ``X <- a X + (b A + c A A) X``. Works on the wide orientation
    (transposes when rows > cols) so that ``A`` is the smaller Gram matrix. The singular
    values come out in about [0.7, 1.2], not exactly 1: the coefficients trade exactness for
    speed, which does not hurt training (Jordan et al. 2024). Runs in the matrix's dtype
    (float32 here; Keller's reference uses bfloat16 on GPU)."""
    a, b, c = NS_COEFFICIENTS
    x = matrix
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    x = nd.broadcast_div(x, nd.norm(x).reshape((1, 1)) + eps)
    for _ in range(steps):
        gram = nd.dot(x, x, transpose_b=True)
        x = a * x + nd.dot(b * gram + c * nd.dot(gram, gram), x)
    return x.T if transposed else x


def _state_bytes(shape):
    """Bytes of the states of one float32 tensor of ``shape`` with the defaults: one momentum
    buffer for matrices (and flattened tensors of more dimensions), AdamW's two moments for
    the others."""
    return 4 * int(np.prod(shape)) * (1 if len(shape) >= 2 else 2)


def _name_selector(owner, adamw_params):
    """``adamw_params`` as a predicate on parameter names (None, a callable, a regular
    expression, or a collection of names)."""
    if adamw_params is None or callable(adamw_params):
        return adamw_params
    if isinstance(adamw_params, str):
        try:
            re.compile(adamw_params)
        except re.error as exc:
            _fail(owner, 'adamw_params', adamw_params, 'not a regular expression (%s)' % exc)
        return adamw_params
    if isinstance(adamw_params, (list, tuple, set, frozenset)) and all(
            isinstance(n, str) for n in adamw_params):
        return frozenset(adamw_params)
    _fail(owner, 'adamw_params', adamw_params, 'expected None, a callable taking a parameter '
          'name, a regular expression or a collection of parameter names')


@register
class Muon(GluonOptOptimizer):
    r"""Muon: momentum, orthogonalised by Newton-Schulz, for matrices; AdamW for the rest.

    Update rule for a weight :math:`W` of shape (rows, cols) (:math:`g` the gradient, rescaled
    and clipped; tensors of more than two dimensions are seen as (shape[0], prod(shape[1:]))
    when ``flatten``; :math:`\eta` = ``learning_rate``, :math:`\mu` = ``momentum``,
    :math:`\lambda` = ``wd``):

    .. math::

        B &\leftarrow \mu B + g \qquad \text{(momentum buffer)} \\
        D &\leftarrow g + \mu B \ \text{ with nesterov, else } \ B \\
        O &\leftarrow \operatorname{NewtonSchulz5}(D)
            \qquad (\approx U V^\top \text{ for } D = U S V^\top) \\
        W &\leftarrow W (1 - \eta \lambda) \qquad \text{(decoupled weight decay)} \\
        W &\leftarrow W - \eta \, s \, O \\
        s &= \sqrt{\max(1, \text{rows} / \text{cols})} \qquad \text{(scaling='keller')} \\
        s &= 0.2 \sqrt{\max(\text{rows}, \text{cols})} \qquad \text{(scaling='moonshot')}

    Every other tensor (fewer than two dimensions, more than two with ``flatten=False``, or
    selected by ``adamw_params``) takes a ``gluon_opt.adamw`` step with ``adamw_beta1``,
    ``adamw_beta2``, ``adamw_epsilon``, learning rate ``adamw_lr`` and weight decay
    ``adamw_wd``.

    Parameters
    ----------
    learning_rate : float, default 0.02 (Keller's; with scaling='moonshot' use AdamW-like
        rates, e.g. 1e-3, which the AdamW tensors then share)
    momentum : float in [0, 1), default 0.95
    nesterov : bool, default True
    ns_steps : int >= 1, default 5 (Newton-Schulz iterations)
    scaling : 'keller' (default) or 'moonshot'. Keller's factor keeps the update's spectral
        norm ~sqrt(rows/cols) for tall matrices; Moonshot's 0.2*sqrt(max(rows, cols)) gives
        the update an RMS of about 0.2, AdamW's typical RMS, so that one learning rate and
        weight decay suit both kinds of tensor.
    flatten : bool, default True: orthogonalise >2-D tensors (convolution kernels) as
        (shape[0], -1) matrices, as Keller's reference does; False sends them to AdamW.
    wd : float >= 0, default 0; decoupled, scaled by the learning rate (``lr * wd``).
    adamw_params : None, a callable ``name -> bool``, a regular expression (``re.search`` on
        the parameter name) or a collection of names: matrices that take AdamW instead (the
        papers keep embeddings and the output layer on AdamW). A lambda cannot be pickled,
        so ``Trainer.save_states`` needs a regular expression, a name list or a module-level
        function.
    adamw_lr : float or None, default None: None uses the same learning rate; a number is the
        AdamW tensors' own base learning rate (Keller's reference: 3e-4 beside 0.02), and
        the schedule and ``lr_mult`` scale it in proportion to ``learning_rate``.
    adamw_beta1, adamw_beta2 : default 0.9, 0.95 (Moonshot's; Keller's uses 0.95, 0.95);
        ``adamw_betas=(b1, b2)`` sets both, PyTorch-style.
    adamw_epsilon : default 1e-8
    adamw_wd : float or None, default None: None uses ``wd``; a number is the AdamW tensors'
        own decoupled decay (still multiplied by each parameter's ``wd_mult``).

    Fused path (``use_fused``, ``GLUON_OPT_IMPL``): the momentum buffer and the Nesterov blend
    in one kernel pass (``gopt_muon_momentum``), Newton-Schulz as above (the same ``nd.dot``
    code as the reference), the decay and the scaled step in one pass (``gopt_muon_apply``);
    the AdamW tensors through ``gopt_adam``. Same float32 operations in the same order as the
    reference, so the two paths agree to the last bit in practice.

    Conventions: the momentum buffer accumulates ``g`` without dampening (Moonshot's and
    Keller's original code; Keller's later code keeps an EMA, which only rescales the update
    before orthogonalisation makes the scale irrelevant, except through Nesterov's mix).
    Newton-Schulz runs in float32 (Keller: bfloat16). The orthogonalised update ignores
    ``wd`` in the gradient; the decay is decoupled, as in both references.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.muon',
                                {'learning_rate': 0.02, 'adamw_lr': 3e-4,
                                 'adamw_params': r'(embedding|output)'})
    """
    name = 'muon'
    family = 'orthogonal'
    paper = ('Jordan et al., "Muon", blog post 2024; Liu et al. (Moonshot AI), '
             '"Muon is Scalable for LLM Training", 2025')
    # the elementwise traffic of the matrices (read w, g, B; write w, B); Newton-Schulz's matrix
    # products come on top and are not counted (the vectors are AdamW's 7 * 4)
    step_bytes = 5 * 4
    state_bytes = staticmethod(_state_bytes)
    oracle = "numpy transcription of Keller Jordan's reference (github.com/KellerJordan/Muon)"
    default_learning_rate = 0.02
    # gopt_muon_momentum, Newton-Schulz by nd.dot, then gopt_muon_apply writes the weight
    # (the AdamW tensors: gopt_adam), in _fused_update
    fused_op = 'gopt_muon_apply'

    def __init__(self, learning_rate=None, momentum=0.95, nesterov=True, ns_steps=5,
                 scaling='keller', flatten=True, adamw_params=None, adamw_lr=None,
                 adamw_beta1=0.9, adamw_beta2=0.95, adamw_betas=None, adamw_epsilon=1e-8,
                 adamw_wd=None, **kwargs):
        owner = type(self).__name__
        self.momentum = check_range(owner, 'momentum', momentum, 0.0, 1.0)
        self.nesterov = check_bool(owner, 'nesterov', nesterov)
        self.ns_steps = check_int(owner, 'ns_steps', ns_steps, 1)
        self.scaling = check_choice(owner, 'scaling', scaling, ('keller', 'moonshot'))
        self.flatten = check_bool(owner, 'flatten', flatten)
        self.adamw_params = _name_selector(owner, adamw_params)
        if adamw_betas is not None:
            if not isinstance(adamw_betas, (tuple, list)) or len(adamw_betas) != 2:
                _fail(owner, 'adamw_betas', adamw_betas, 'expected a pair (beta1, beta2)')
            adamw_beta1, adamw_beta2 = adamw_betas
        self.adamw_beta1 = check_range(owner, 'adamw_beta1', adamw_beta1, 0.0, 1.0)
        self.adamw_beta2 = check_range(owner, 'adamw_beta2', adamw_beta2, 0.0, 1.0)
        self.adamw_epsilon = check_positive(owner, 'adamw_epsilon', adamw_epsilon)
        self.adamw_lr = None if adamw_lr is None else check_range(
            owner, 'adamw_lr', adamw_lr, 0.0, np.inf)
        self.adamw_wd = None if adamw_wd is None else check_range(
            owner, 'adamw_wd', adamw_wd, 0.0, np.inf)
        super(Muon, self).__init__(learning_rate=learning_rate, **kwargs)
        base_lr = self.lr if self.lr is not None else self.lr_scheduler.base_lr
        if self.adamw_lr is not None and not base_lr > 0:
            _fail(owner, 'adamw_lr', adamw_lr, 'a separate AdamW learning rate is set relative '
                  'to learning_rate, which must then be > 0')
        self._adamw_lr_ratio = None if self.adamw_lr is None else self.adamw_lr / base_lr
        # The AdamW tensors' step, factored once in gluon_opt.adam (its lr and wd come per
        # call, so only the moment hyperparameters live in it).
        self.adamw = AdamW(learning_rate=0.0, beta1=self.adamw_beta1, beta2=self.adamw_beta2,
                           epsilon=self.adamw_epsilon, wd=0.0)

    # -- which tensors are orthogonalised ----------------------------------------------------
    def _param_name(self, index):
        if index in self.param_dict:
            return self.param_dict[index].name
        return self.idx2name.get(index, None)

    def orthogonalises(self, index, weight):
        """True where ``weight`` (parameter ``index``) takes the Muon update, False where it
        takes AdamW."""
        if weight.ndim < 2 or (weight.ndim > 2 and not self.flatten):
            return False
        if self.adamw_params is None:
            return True
        name = self._param_name(index)
        if name is None:
            return True
        sel = self.adamw_params
        if isinstance(sel, frozenset):
            return name not in sel
        if isinstance(sel, str):
            return re.search(sel, name) is None
        return not sel(name)

    def state_names_for(self, shape):
        ndim = len(shape)
        return ('momentum',) if ndim >= 2 and (ndim == 2 or self.flatten) \
            else self.adamw.state_names

    @property
    def state_names(self):
        return ('momentum',)

    def create_state(self, index, weight):
        if self.orthogonalises(index, weight):
            return (zeros_like(weight),)
        return self.adamw.init_state(weight)

    # -- the AdamW tensors' learning rate and decay ------------------------------------------
    def _wd_mult(self, index):
        if index in self.param_dict:
            return self.param_dict[index].wd_mult
        if index in self.wd_mult:
            return self.wd_mult[index]
        if index in self.idx2name:
            return self.wd_mult.get(self.idx2name[index], 1.0)
        return 1.0

    def _adamw_item(self, item):
        """``item`` with the AdamW tensors' own learning rate and decay (a new item; the
        Muon tensors, which keep one buffer, are returned as they are)."""
        if len(item.state) == 1:
            return item
        lr, wd = item.lr, item.wd
        if self._adamw_lr_ratio is not None:
            lr = lr * self._adamw_lr_ratio
        if self.adamw_wd is not None:
            wd = self.adamw_wd * self._wd_mult(item.index)
        return UpdateItem(item.index, item.weight, item.grad, item.state, lr, wd, item.t,
                          item.master)

    def _reference_update(self, item):
        super(Muon, self)._reference_update(self._adamw_item(item))

    # -- the update ----------------------------------------------------------------------------
    def scale(self, rows, cols):
        if self.scaling == 'keller':
            return max(1.0, rows / cols) ** 0.5
        return 0.2 * max(rows, cols) ** 0.5

    def step(self, weight, grad, state, lr, wd, t):
        if len(state) != 1:
            self.adamw.step(weight, grad, state, lr, wd, t)
            return
        buf, = state
        buf[:] = self.momentum * buf + grad
        direction = grad + self.momentum * buf if self.nesterov else buf
        rows = weight.shape[0]
        cols = weight.size // rows
        ortho = newton_schulz(direction.reshape((rows, cols)), self.ns_steps)
        decay_weight(weight, lr * wd)
        weight[:] -= (lr * self.scale(rows, cols)) * ortho.reshape(weight.shape)

    def _fused_update(self, items):
        """The fused path: the same update as ``step``, elementwise parts in kernels,
        Newton-Schulz in between; returns the items the kernels do not take (the reference
        updates those)."""
        adamw, matrices, rest = [], [], []
        for item in items:
            if len(item.state) != 1:
                adamw.append(item)
            elif self.fusable(item, 'gopt_muon_momentum'):
                matrices.append(item)
            else:
                rest.append(item)
        if adamw:
            # self.adamw holds only the moment hyperparameters; gradient preprocessing is ours
            self.adamw.rescale_grad, self.adamw.clip_gradient = (self.rescale_grad,
                                                                  self.clip_gradient)
            own = [self._adamw_item(item) for item in adamw]
            left = set(map(id, self.adamw._fused_update(own)))
            rest.extend(item for item, mine in zip(adamw, own) if id(mine) in left)
        if matrices:
            self._fused_muon(matrices)
        return rest

    def _fused_muon(self, items):
        # B <- momentum B + g and the direction D, one pass (float16 gradients cast first,
        # as the reference does, so that one kernel layout serves both)
        directions = [nd.empty(item.weight.shape, ctx=item.weight.context) for item in items]
        kernels.call('gopt_muon_momentum',
                     [([d, item.grad if item.master is None else item.grad.astype('float32'),
                        item.state[0]], d, ()) for d, item in zip(directions, items)],
                     ns=1, mp=0, momentum=self.momentum, nesterov=int(self.nesterov),
                     **self.kernel_grad_attrs())
        updates = []
        for d, item in zip(directions, items):
            rows = d.shape[0]
            cols = d.size // rows
            ortho = newton_schulz(d.reshape((rows, cols)), self.ns_steps).reshape(d.shape)
            fast = item.weight if item.master is None else item.master
            updates.append(([fast, ortho], fast,
                            (1.0 - item.lr * item.wd, item.lr * self.scale(rows, cols))))
        # W <- W (1 - lr wd) - lr s O, one pass; then the float16 copy of a master weight
        kernels.call('gopt_muon_apply', updates, ns=0, mp=0, rescale='1.0', clip='-1')
        for item in items:
            if item.master is not None:
                nd.cast(item.master, dtype=item.weight.dtype, out=item.weight)
