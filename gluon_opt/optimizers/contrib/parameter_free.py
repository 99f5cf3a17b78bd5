"""Learning-rate-free methods: the step size is estimated from the run itself.

Each of these estimates the distance ``D = ||x0 - x*||`` to a solution (or a lower bound on
it) from the gradients seen so far, and scales its steps by it, so that ``learning_rate``
stays at 1.0 (it multiplies the estimate, as a schedule would). The estimates are *global*:
sums over every parameter tensor of the model, one set of scalars per step.

* Prodigy (``prodigy``): Adam whose step is scaled by ``d``, a lower bound on ``D`` that
  grows with ``sum <g, x0 - x>`` weighted by ``d`` itself. Follows the authors' package
  ``prodigyopt`` 1.1.2 (``prodigyopt.Prodigy``).
* D-Adaptation Adam (``dadapt_adam``): the earlier bound, without Prodigy's ``d``
  weighting. Follows the authors' package ``dadaptation`` 3.2 (``dadaptation.DAdaptAdam``).
* DoG (``dog``): SGD with step ``r_t / sqrt(sum_i ||g_i||^2)``, ``r_t`` the largest distance
  from ``x0`` so far. Follows optax's ``optax.contrib.dog`` (global, not layer-wise) and the
  authors' formulas (``reps_rel``).

One step, one call
------------------
The scalars of step ``t`` (``d``, ``||s||_1``, ``||g||``, ``max ||x - x0||``) are sums over
*all* tensors, and every tensor's update of step ``t`` uses them: no tensor can be updated
before the last gradient of the step has been read. So these optimizers take a whole step in
one ``update`` call: they set ``aggregate_num`` so that MXNet's ``Updater`` (``gluon.Trainer``,
``gluon_opt.Trainer``) hands them every parameter of a context in one call. Each tensor's state
carries a copy of the step's scalars (the ``scalars`` state), identical in every tensor: so
each context's copy of a model (``ctx=[cpu(0), cpu(1)]``) has its own and gets exactly the
one-context result, and save/load and pickling carry them with the other states.

A step split over several calls is refused with a ``ValueError``, before anything is touched:

* ``update_on_kvstore=True`` (a local kvstore or ``dist_*`` servers) updates each key in its
  own call, and servers may hold different keys: no correct step exists there. Every key is
  refused (it is not one of the Trainer's parameter arrays, but the kvstore's copy), with the
  remedy ``update_on_kvstore=False``. MXNet runs the kvstore's updater from C and only prints
  the exception, so with ``gluon.Trainer`` (which picks True by default for several contexts)
  the symptom is that message and weights that do not move; ``gluon_opt.Trainer`` implies
  ``update_on_kvstore=False`` for these optimizers and refuses True up front. With
  ``update_on_kvstore=False`` on ``dist_sync`` every worker runs the whole step on the summed
  gradients (docs/distributed.md).
* Otherwise, a call whose tensors all reach the update count that the previous call's tensors
  reached on that context, none of them among those, continues that step: parameters of
  several dtypes in one model (the Updater calls once per dtype; use one dtype,
  ``multi_precision=True`` for float16), or one tensor per call.

The fused kernels (``gopt_prodigy``, ``gopt_dadapt_adam``, ``gopt_dog``, CPU only) take the
whole step in one op call: a reduction pass over every tensor, the scalars once, the update
pass. Where any tensor of the step is not fusable (float64, a GPU), the reference takes them
all.

Updating a tensor alone at its own count (a parameter that starts late) is a step of its own,
with its own scalars, as ``tests/test_optimizers.py::test_update_counts_are_per_parameter``
asks of every optimizer.

References: Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free
Learner", ICML 2024; Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML
2023; Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
Schedule", ICML 2023.
"""
import math

import numpy as np
from mxnet import nd

from ... import kernels
from ...kernels.runtime import format_scalars
from ..base import (GluonOptOptimizer, check_range, check_positive, check_bool, check_float,
                    _as_lists, UpdateItem)
from ..registry import register

__all__ = ['Prodigy', 'DAdaptAdam', 'DoG', 'WholeStepOptimizer']

#: tensors per ``update`` call: every parameter of a model (MXNet's Updater hands at most
#: ``aggregate_num`` at once, and a step must arrive whole)
WHOLE_STEP_AGGREGATE = 1 << 30
#: length of the ``scalars`` state (the step's global scalars, one copy per tensor)
N_SCALARS = 4


def _growth_rate(owner, value):
    """None or ``float('inf')`` (unbounded, prodigyopt's default) or a number >= 1."""
    if value is None:
        return None
    if not isinstance(value, str) and isinstance(value, float) and value == float('inf'):
        return None
    value = check_float(owner, 'growth_rate', value)
    if value < 1.0:
        raise ValueError('%s: growth_rate=%r is invalid; expected a number >= 1, or None or '
                         "float('inf') (unbounded)." % (owner, value))
    return value


class WholeStepOptimizer(GluonOptOptimizer):
    """The machinery the three share: one call per step (checked), the ``scalars`` state, the
    per-context step tracking. Subclasses write ``whole_step(items)``: the reference update of
    one step of every item's tensor (``item.weight`` is the float32 master where there is one,
    ``item.grad`` is prepared), and ``initial_scalars()``."""
    #: the Trainer must hand every parameter in one call (gluon_opt.Trainer reads it)
    whole_step = True
    cache_attributes = GluonOptOptimizer.cache_attributes + ('_step_in_progress',
                                                             '_kvstore_refusal')

    def __init__(self, **kwargs):
        super(WholeStepOptimizer, self).__init__(**kwargs)
        self.aggregate_num = WHOLE_STEP_AGGREGATE

    # A kvstore calls ``update`` from C, where MXNet only prints the exception and training
    # goes on with weights that never move. ``gluon.Trainer.step`` sets ``rescale_grad`` on
    # the optimizer in Python before each step: the next step raises the refusal there.
    @property
    def rescale_grad(self):
        return self.__dict__.get('_rescale_grad', 1.0)

    @rescale_grad.setter
    def rescale_grad(self, value):
        refusal = self.__dict__.get('_kvstore_refusal')
        if refusal:
            raise ValueError(refusal + ' (This was refused in the previous step, where MXNet '
                             'only printed it.)')
        self.__dict__['_rescale_grad'] = value

    def initial_scalars(self):
        raise NotImplementedError

    def init_state(self, weight):
        names = self.state_names_for(weight.shape)
        out = []
        for name in names:
            if name == 'scalars':
                out.append(nd.array(self.initial_scalars(), ctx=weight.context,
                                    dtype=weight.dtype))
            elif name in ('p0', 'x0'):
                out.append(weight.copy())
            else:
                out.append(nd.zeros(weight.shape, ctx=weight.context, dtype=weight.dtype))
        return tuple(out)

    def _check_whole_step(self, indices, weights, context):
        """Refuse the rest of a step arriving in another call (module docstring): a call whose
        tensors all reach the count that the last call's tensors reached on this context, none
        of them among those, continues that step. Runs before anything is touched."""
        owner = type(self).__name__
        param_dict = getattr(self, 'param_dict', None) or {}
        for i, w in zip(indices, weights):
            param = param_dict.get(i)
            if param is not None and not any(w is d for d in param.list_data()):
                # gluon.Trainer hands us its parameters' own arrays; another array is a
                # kvstore's copy: update_on_kvstore=True, one key per call
                self._kvstore_refusal = (
                    '%s: parameter %r arrived alone from a kvstore (update_on_kvstore=True); '
                    '%s sums over every parameter of a step, so a step must come in one call: '
                    'pass update_on_kvstore=False to the Trainer (gluon_opt.Trainer implies it).'
                    ' Nothing was updated.' % (owner, param.name, owner))
                raise ValueError(self._kvstore_refusal)
        progress = self.__dict__.setdefault('_step_in_progress', {})
        key = str(context)
        after = {self._index_update_count.get(i, self.begin_num_update) + 1 for i in indices}
        seen = progress.get(key)
        if seen is not None and after == {seen[0]} and not seen[1] & set(indices):
            raise ValueError(
                '%s: parameters %s arrived in a separate update call of the step that updated '
                'parameters %s; %s sums over every parameter of a step, so a step must come in '
                'one call. With gluon.Trainer pass update_on_kvstore=False (a kvstore updates '
                'each key alone, and kvstore servers cannot run %s), and keep every parameter '
                'in one dtype (multi_precision=True for float16 weights).'
                % (owner, sorted(indices), sorted(seen[1]), owner, owner))
        progress[key] = (max(after), set(indices))

    def _update(self, index, weight, grad, state, multi_precision):
        indices, weights, grads, states = _as_lists(index, weight, grad, state)
        self._check_inputs(indices, weights, grads)
        self._check_whole_step(indices, weights, weights[0].context)
        self._update_count(indices)
        lrs = self._get_lrs(indices)
        wds = self._get_wds(indices)
        items = []
        for idx, w, g, s, lr, wd in zip(indices, weights, grads, states, lrs, wds):
            master = None
            if multi_precision and w.dtype == np.float16:
                master, s = s
            items.append(UpdateItem(idx, w, g, s, lr, wd, self._index_update_count[idx],
                                    master))
        if self._fused_selected():
            items = self._fused_update(items)
        if items:
            self._reference_whole_step(items)

    def _fused_update(self, items):
        """The whole step in one ``fused_op`` call, or nothing: a step cannot be split between
        the kernel and the reference, so where any item is not fusable (float64, float16
        without master weights, a GPU) the reference takes them all. The call is prepared
        once and replayed while the same arrays come back (as ``kernels.update``); a plan is
        only made for fusable items, so while it replays the items need no other check (which
        costs about as much as the replay itself)."""
        if not kernels.has_op(self.fused_op):
            return items
        mp = items[0].master is not None
        plans = self.__dict__.setdefault('_fused_plans', {})
        arrays = [a for item in items
                  for a in (item.weight, item.grad, item.master) + tuple(item.state)]
        key = (id(items[0].weight),) + tuple(item.index for item in items)
        plan = plans.get(key)
        if plan is None or len(plan[0]) != len(arrays) or any(
                a is not b for a, b in zip(plan[0], arrays)):
            if any((item.master is not None) != mp or not self.fusable(item, self.fused_op)
                   for item in items):
                return items
            if len(plans) >= 64:  # arrays replaced again and again: let the old ones go
                plans.clear()
            inputs, outputs = [], []
            for item in items:
                inputs.extend([item.master if mp else item.weight, item.grad])
                inputs.extend(item.state)
                outputs.append(item.weight)
            plan = plans[key] = (arrays, kernels._Call(self.fused_op, inputs, outputs,
                                                       ns=len(items[0].state), mp=int(mp)))
        attrs = {k: str(v) for k, v in
                 dict(self.fused_attrs(), **self.kernel_grad_attrs()).items()}
        memo = {}
        for item in items:
            if (item.lr, item.wd) not in memo:
                memo[(item.lr, item.wd)] = format_scalars((item.lr, item.wd))
        plan[1](attrs, ','.join(memo[(item.lr, item.wd)] for item in items))
        return []

    def _reference_whole_step(self, items):
        prepared = []
        for item in items:
            if item.master is not None:
                grad = self.prepare_grad(item.grad.astype(np.float32))
                prepared.append(UpdateItem(item.index, item.master, grad, item.state, item.lr,
                                           item.wd, item.t, None))
            else:
                prepared.append(UpdateItem(item.index, item.weight, self.prepare_grad(item.grad),
                                           item.state, item.lr, item.wd, item.t, None))
        self.whole_step(prepared)
        for item in items:
            if item.master is not None:
                nd.cast(item.master, dtype=item.weight.dtype, out=item.weight)

    def step(self, weight, grad, state, lr, wd, t):
        """One tensor alone is a whole step of its own."""
        self.whole_step([UpdateItem(None, weight, grad, state, lr, wd, t, None)])

    def whole_step(self, items):
        raise NotImplementedError

    @staticmethod
    def _store_scalars(items, new):
        """Write the step's new scalars (an NDArray of ``N_SCALARS``) into every copy."""
        for item in items:
            item.state[-1][:] = new


def _sum(x):
    return nd.sum(x).reshape((1,))


def _bias_correction(beta1, beta2, k, on):
    """prodigyopt's and dadaptation's ``sqrt(1 - beta2^(k+1)) / (1 - beta1^(k+1))`` at the
    global 0-based step ``k`` (an NDArray), or 1."""
    if not on:
        return 1.0
    return nd.sqrt(1.0 - beta2 ** (k + 1)) / (1.0 - beta1 ** (k + 1))


@register
class Prodigy(WholeStepOptimizer):
    r"""Prodigy: Adam scaled by a learned distance estimate ``d``, no learning rate to tune.

    Update rule at global step :math:`k` (0-based; sums over every tensor of the model;
    :math:`g` the gradient, rescaled and clipped, plus :math:`\lambda x` when
    ``decouple=False``; :math:`\eta` = ``learning_rate`` (times the tensor's ``lr_mult``),
    :math:`\lambda` = ``wd``, :math:`d_0` = ``d0``):

    .. math::

        \hat\eta &= d \, \eta \, \beta_c \qquad (\beta_c = \sqrt{1-\beta_2^{k+1}} /
            (1-\beta_1^{k+1}) \text{ with use\_bias\_correction, else } 1) \\
        r &\leftarrow \beta_3 r + \tfrac{d}{d_0} \hat\eta \sum \langle g, x_0 - x \rangle \\
        m &\leftarrow \beta_1 m + d (1-\beta_1) g, \quad
        v \leftarrow \beta_2 v + d^2 (1-\beta_2) g^2 \\
        s &\leftarrow \beta_3 s + \tfrac{d}{d_0} \hat\eta \, g
            \qquad (\tfrac{d}{d_0} d \, g \text{ with safeguard\_warmup}) \\
        \hat d &= d_{\text{coef}} \, r / \textstyle\sum \lVert s \rVert_1, \quad
        d_{\max} \leftarrow \max(d_{\max}, \hat d), \quad
        d \leftarrow \min(d_{\max}, \ \gamma \cdot (\max(d, \hat d) \text{ if } d = d_0
            \text{ else } d)) \\
        x &\leftarrow x - \hat\eta \lambda x - \hat\eta \, m / (\sqrt v + d \epsilon)

    (:math:`\hat\eta` is the step's, from :math:`d` before its update; :math:`\gamma` =
    ``growth_rate``; the decoupled decay only with ``decouple=True``.) Where
    :math:`\sum \lVert s \rVert_1 = 0` (no gradient yet) the step stops after the moments:
    ``d``, ``r``, ``k`` and the weights are left as they are, as in prodigyopt.

    Parameters
    ----------
    learning_rate : float, default 1.0 (a multiplier of the estimate; leave it at 1)
    beta1, beta2 : float in [0, 1), default 0.9, 0.999
    beta3 : float in [0, 1) or None, default None (``sqrt(beta2)``)
    epsilon : float > 0, default 1e-8 (prodigyopt's ``eps``; scaled by ``d``)
    d0 : float > 0, default 1e-6 (the initial estimate)
    d_coef : float > 0, default 1.0
    growth_rate : float >= 1, None or ``float('inf')`` (default: unbounded)
    decouple : bool, default True (AdamW-style decay ``x <- x - d lr wd x``; False adds
        ``wd * x`` to the gradient)
    use_bias_correction : bool, default False
    safeguard_warmup : bool, default False
    wd : float, default 0 (prodigyopt's ``weight_decay``)

    States per tensor: ``exp_avg``, ``exp_avg_sq``, ``s``, ``p0`` (the initial weight) and
    ``scalars`` = (``d``, ``d_max``, ``r``, ``k``), the same in every tensor.

    Conventions: prodigyopt 1.1.2 with ``slice_p=1`` (``s`` and ``p0`` are kept whole; no
    slicing) and without FSDP. prodigyopt allows parameter groups whose ``lr`` is the same or
    0; here each tensor's ``lr`` (``lr_mult``, schedules) scales its own ``d * lr`` in the sums
    and its step, which is prodigyopt's rule when they are all equal (a tensor with
    ``lr_mult=0`` does not move and adds nothing to ``r``, but its ``m``, ``v`` and ``s``
    still move, where prodigyopt skips a group with ``lr=0`` altogether). ``beta1=0`` is
    prodigyopt's no-momentum path: the step is ``dlr * d_new * g / (sqrt(v) + d_new eps)``
    with the updated ``d`` (``m`` then holds ``d g`` with the old one, unused). The scalars
    are kept in the weight's dtype (float32 for float32 weights, where prodigyopt keeps Python
    floats); in float32 the first steps (~``d0`` = 1e-6 of weights of size 1) are a few ulps
    of the weight, so ``x0 - x`` and hence ``d`` carry percent-level rounding early on, as
    prodigyopt's own float32 runs do. One
    step must come in one ``update`` call (module docstring): with ``gluon.Trainer`` on several
    contexts pass ``update_on_kvstore=False``; kvstore servers cannot run it.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.prodigy',
                                {'learning_rate': 1.0, 'wd': 0.01},
                                update_on_kvstore=False)
    """
    name = 'prodigy'
    label = 'Prodigy'
    family = 'parameter_free'
    paper = ('Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free '
             'Learner", ICML 2024')
    # learning-rate-free: no grid, the defaults (learning_rate 1.0) are the setting; on the
    # course MLP (3 epochs, seed 0) 86.68% test accuracy with the kernel, 87.04% with the
    # reference (float32 rounding of the sums, amplified over 1290 steps of a chaotic run)
    tuned = {'Prodigy': {'learning_rate': 1.0}}
    bench_hyperparameters = {'learning_rate': 1.0}
    # Two passes over memory (the update needs the new d, known only once every tensor has been
    # summed): the sums read x, g, m, v, s, p0 and write m, v, s; the update reads x, m, v and
    # writes x (and reads g with beta1 = 0, not the bench's 0.9)
    step_bytes = (9 + 4) * 4
    state_bytes = staticmethod(lambda shape: 4 * (4 * int(np.prod(shape)) + N_SCALARS))
    oracle = 'prodigyopt.Prodigy (the authors\' package, 1.1.2)'
    default_learning_rate = 1.0
    state_names = ('exp_avg', 'exp_avg_sq', 's', 'p0', 'scalars')
    fused_op = 'gopt_prodigy'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, beta3=None, epsilon=1e-8,
                 d0=1e-6, d_coef=1.0, growth_rate=None, decouple=True,
                 use_bias_correction=False, safeguard_warmup=False, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.beta3 = None if beta3 is None else check_range(owner, 'beta3', beta3, 0.0, 1.0)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.d0 = check_positive(owner, 'd0', d0)
        self.d_coef = check_positive(owner, 'd_coef', d_coef)
        self.growth_rate = _growth_rate(owner, growth_rate)
        self.decouple = check_bool(owner, 'decouple', decouple)
        self.use_bias_correction = check_bool(owner, 'use_bias_correction',
                                              use_bias_correction)
        self.safeguard_warmup = check_bool(owner, 'safeguard_warmup', safeguard_warmup)
        super(Prodigy, self).__init__(learning_rate=learning_rate, **kwargs)

    def initial_scalars(self):
        return [self.d0, self.d0, 0.0, 0.0]  # d, d_max, r (d_numerator), k

    def fused_attrs(self):
        return {'beta1': self.beta1, 'beta2': self.beta2,
                'beta3': math.sqrt(self.beta2) if self.beta3 is None else self.beta3,
                'epsilon': self.epsilon, 'd0': self.d0, 'd_coef': self.d_coef,
                'growth_rate': -1.0 if self.growth_rate is None else self.growth_rate,
                'decouple': int(self.decouple),
                'use_bias_correction': int(self.use_bias_correction),
                'safeguard_warmup': int(self.safeguard_warmup)}

    def whole_step(self, items):
        b1, b2 = self.beta1, self.beta2
        b3 = math.sqrt(b2) if self.beta3 is None else self.beta3
        old = items[0].state[-1].copy()
        d, d_max, numerator, k = (old[i:i + 1] for i in range(N_SCALARS))
        bc = _bias_correction(b1, b2, k, self.use_bias_correction)
        delta, denom, dlrs = 0.0, 0.0, []
        for item in items:
            m, v, s, p0, _ = item.state
            x, g = item.weight, item.grad
            if item.wd and not self.decouple:
                g = g + item.wd * x
            dlr = d * item.lr * bc
            dlrs.append((dlr, g))
            delta = delta + (d / self.d0) * dlr * _sum(g * (p0 - x))
            m[:] = b1 * m + (d * (1 - b1)) * g
            v[:] = b2 * v + (d * d * (1 - b2)) * (g * g)
            s[:] = b3 * s + ((d / self.d0) * (d if self.safeguard_warmup else dlr)) * g
            denom = denom + _sum(nd.abs(s))
        live = denom > 0  # prodigyopt returns before the weights while sum |s| = 0
        numerator_new = b3 * numerator + delta
        d_hat = self.d_coef * numerator_new / nd.where(live, denom, nd.ones_like(denom))
        d_grown = nd.where(d == self.d0, nd.maximum(d, d_hat), d)
        d_max_new = nd.maximum(d_max, d_hat)
        d_new = (d_max_new if self.growth_rate is None
                 else nd.minimum(d_max_new, d_grown * self.growth_rate))
        for item, (dlr, g) in zip(items, dlrs):
            m, v = item.state[0], item.state[1]
            x = item.weight
            step = live * dlr
            if item.wd and self.decouple:
                x[:] = x - (step * item.wd) * x
            # prodigyopt's beta1 = 0 path steps along d_new * g, where m holds d_old * g
            direction = m if self.beta1 > 0 else d_new * g
            x[:] = x - step * (direction / (nd.sqrt(v) + d_new * self.epsilon))
        new = nd.concat(d_new, d_max_new, numerator_new, k + 1, dim=0)
        self._store_scalars(items, nd.where(live.broadcast_to((N_SCALARS,)), new, old))


@register
class DAdaptAdam(WholeStepOptimizer):
    r"""D-Adaptation Adam: Adam whose step is a learned distance estimate ``d``.

    Update rule at global step :math:`k` (0-based; sums over every tensor of the model;
    :math:`g` the gradient, rescaled and clipped, plus :math:`\lambda x` when
    ``decouple=False``; :math:`\eta` = ``learning_rate`` times the tensor's ``lr_mult``):

    .. math::

        \hat\eta &= d \, \eta \, \beta_c \qquad (\beta_c = \sqrt{1-\beta_2^{k+1}} /
            (1-\beta_1^{k+1}) \text{ with use\_bias\_correction, else } 1) \\
        a &= \textstyle\sum \hat\eta \, \langle g, s / (\sqrt v + \epsilon) \rangle
            \qquad (v \text{ before its update}) \\
        m &\leftarrow \beta_1 m + \hat\eta (1-\beta_1) g, \quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
        s \leftarrow \sqrt{\beta_2} s + \hat\eta (1 - \sqrt{\beta_2}) g \\
        r &\leftarrow \sqrt{\beta_2} r + (1-\sqrt{\beta_2}) a, \quad
        \hat d = \frac{r}{(1-\sqrt{\beta_2}) \sum \lVert s \rVert_1}, \quad
        d \leftarrow \max(d, \min(\hat d, \gamma d)) \\
        x &\leftarrow x - \hat\eta \lambda x - m / (\sqrt v + \epsilon)

    (:math:`m` already carries :math:`\hat\eta`; the decoupled decay only with
    ``decouple=True``; :math:`\gamma` = ``growth_rate``.) Where :math:`\sum \lVert s
    \rVert_1 = 0` the step stops after the moments (``d``, ``r``, ``k`` and the weights are
    left as they are), as in dadaptation.

    Parameters
    ----------
    learning_rate : float, default 1.0 (a multiplier of the estimate; leave it at 1)
    beta1, beta2 : float in [0, 1), default 0.9, 0.999
    epsilon : float > 0, default 1e-8
    d0 : float > 0, default 1e-6
    growth_rate : float >= 1, None or ``float('inf')`` (default: unbounded)
    decouple : bool, default False (dadaptation's default: ``wd * x`` added to the gradient;
        True: AdamW-style ``x <- x - d lr wd x``)
    use_bias_correction : bool, default False
    wd : float, default 0 (dadaptation's ``weight_decay``)

    States per tensor: ``exp_avg``, ``exp_avg_sq``, ``s`` and ``scalars`` = (``d``, ``r``
    (``numerator_weighted``), ``k``, unused), the same in every tensor.

    Conventions: dadaptation 3.2's ``DAdaptAdam`` with ``layer_scale=1`` and without FSDP or
    logging. Each tensor's ``lr`` scales its own ``d * lr`` (dadaptation's parameter groups
    must share one ``lr`` or have 0). Scalars in the weight's dtype. One step per ``update``
    call (module docstring); kvstore servers cannot run it.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.dadapt_adam',
                                {'learning_rate': 1.0}, update_on_kvstore=False)
    """
    name = 'dadapt_adam'
    label = 'D-Adapt Adam'
    family = 'parameter_free'
    paper = ('Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", '
             'ICML 2023')
    # learning-rate-free, defaults: 87.55% on the course MLP (3 epochs, seed 0; kernel),
    # 87.63% with the reference
    tuned = {'D-Adapt Adam': {'learning_rate': 1.0}}
    bench_hyperparameters = {'learning_rate': 1.0}
    # Two passes (the update must know whether the step is live; parameter_free.cc): the sums
    # read g, m, v, s (x too with the coupled decay, wd != 0; bench settings: wd = 0) and write
    # m, v, s; the update reads x, m, v and writes x
    step_bytes = (7 + 4) * 4
    state_bytes = staticmethod(lambda shape: 4 * (3 * int(np.prod(shape)) + N_SCALARS))
    oracle = 'dadaptation.DAdaptAdam (the authors\' package, 3.2)'
    default_learning_rate = 1.0
    state_names = ('exp_avg', 'exp_avg_sq', 's', 'scalars')
    fused_op = 'gopt_dadapt_adam'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-8, d0=1e-6,
                 growth_rate=None, decouple=False, use_bias_correction=False, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.d0 = check_positive(owner, 'd0', d0)
        self.growth_rate = _growth_rate(owner, growth_rate)
        self.decouple = check_bool(owner, 'decouple', decouple)
        self.use_bias_correction = check_bool(owner, 'use_bias_correction',
                                              use_bias_correction)
        super(DAdaptAdam, self).__init__(learning_rate=learning_rate, **kwargs)

    def initial_scalars(self):
        return [self.d0, 0.0, 0.0, 0.0]  # d, numerator_weighted, k, (unused)

    def fused_attrs(self):
        return {'beta1': self.beta1, 'beta2': self.beta2, 'epsilon': self.epsilon,
                'growth_rate': -1.0 if self.growth_rate is None else self.growth_rate,
                'decouple': int(self.decouple),
                'use_bias_correction': int(self.use_bias_correction)}

    def whole_step(self, items):
        b1, b2 = self.beta1, self.beta2
        sb2 = math.sqrt(b2)
        old = items[0].state[-1].copy()
        d, numerator, k = old[0:1], old[1:2], old[2:3]
        bc = _bias_correction(b1, b2, k, self.use_bias_correction)
        acc, sk_l1, dlrs = 0.0, 0.0, []
        for item in items:
            m, v, s, _ = item.state
            x, g = item.weight, item.grad
            if item.wd and not self.decouple:
                g = g + item.wd * x
            dlr = d * item.lr * bc
            dlrs.append(dlr)
            acc = acc + dlr * _sum(g * (s / (nd.sqrt(v) + self.epsilon)))
            m[:] = b1 * m + (dlr * (1 - b1)) * g
            v[:] = b2 * v + (1 - b2) * (g * g)
            s[:] = sb2 * s + (dlr * (1 - sb2)) * g
            sk_l1 = sk_l1 + _sum(nd.abs(s))
        live = sk_l1 > 0
        numerator_new = sb2 * numerator + (1 - sb2) * acc
        d_hat = numerator_new / ((1 - sb2) * nd.where(live, sk_l1, nd.ones_like(sk_l1)))
        capped = d_hat if self.growth_rate is None else nd.minimum(d_hat, d * self.growth_rate)
        d_new = nd.maximum(d, capped)
        for item, dlr in zip(items, dlrs):
            m, v = item.state[0], item.state[1]
            x = item.weight
            if item.wd and self.decouple:
                x[:] = x - (live * dlr * item.wd) * x
            x[:] = x - live * (m / (nd.sqrt(v) + self.epsilon))
        new = nd.concat(d_new, numerator_new, k + 1, old[3:4], dim=0)
        self._store_scalars(items, nd.where(live.broadcast_to((N_SCALARS,)), new, old))


@register
class DoG(WholeStepOptimizer):
    r"""DoG ("Distance over Gradients"): SGD whose step is the distance travelled so far over
    the root of the summed squared gradient norms. Global DoG (one step size for the model).

    Update rule (sums and norms over every tensor of the model; :math:`g` the gradient,
    rescaled and clipped, plus :math:`\lambda x` (``wd``, coupled); :math:`\eta` =
    ``learning_rate`` times the tensor's ``lr_mult``):

    .. math::

        \bar r_0 &= r_\epsilon = \text{reps\_rel} \cdot (1 + \lVert x_0 \rVert) \\
        \bar r_t &= \max(\bar r_{t-1}, \lVert x_t - x_0 \rVert), \quad
        G_t = G_{t-1} + \lVert g_t \rVert^2 \\
        x_{t+1} &= x_t - \eta \, \frac{\bar r_t}{\sqrt{G_t + \epsilon}} \, g_t

    Parameters
    ----------
    learning_rate : float, default 1.0 (a multiplier of the DoG step; leave it at 1)
    reps_rel : float > 0, default 1e-6 (the initial distance, relative to ``1 + ||x0||``)
    epsilon : float > 0, default 1e-8 (inside the square root, as optax's ``eps``)
    wd : float, default 0 (added to the gradient before the norms, as optax's
        ``weight_decay``)

    States per tensor: ``x0`` (the initial weight) and ``scalars`` = (``r_bar``, ``G``,
    ``k``, unused), the same in every tensor; ``r_bar`` is set from ``||x0||`` at the first
    step.

    Conventions: optax 0.2's ``optax.contrib.dog`` with ``init_step=('heuristic',
    reps_rel)`` and ``layer_wise=False`` (the authors' ``reps_rel`` rule, Ivgi et al.'s
    ``DoG`` class without its per-layer variant or their polynomial-decay averaging). optax
    cannot be installed beside MXNet here: the tests check this against a float64 NumPy
    transcription of optax's documented algorithm (``tests/dog_oracle.py``). One step per
    ``update`` call (module docstring); kvstore servers cannot run it.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.dog',
                                {'learning_rate': 1.0}, update_on_kvstore=False)
    """
    name = 'dog'
    label = 'DoG'
    family = 'parameter_free'
    paper = ('Ivgi, Hinder & Carmon, "DoG is SGD\'s Best Friend: A Parameter-Free Dynamic '
             'Step Size Schedule", ICML 2023')
    # learning-rate-free, defaults: 86.03% on the course MLP (3 epochs, seed 0; kernel),
    # 86.05% with the reference
    tuned = {'DoG': {'learning_rate': 1.0}}
    bench_hyperparameters = {'learning_rate': 1.0}
    # Two passes (the update needs the new step size): the norms read x, g, x0; the update
    # reads x, g and writes x
    step_bytes = (3 + 3) * 4
    state_bytes = staticmethod(lambda shape: 4 * (int(np.prod(shape)) + N_SCALARS))
    oracle = 'float64 NumPy transcription of optax.contrib.dog (tests/dog_oracle.py)'
    default_learning_rate = 1.0
    state_names = ('x0', 'scalars')
    fused_op = 'gopt_dog'

    def __init__(self, learning_rate=None, reps_rel=1e-6, epsilon=1e-8, **kwargs):
        owner = type(self).__name__
        self.reps_rel = check_positive(owner, 'reps_rel', reps_rel)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        super(DoG, self).__init__(learning_rate=learning_rate, **kwargs)

    def initial_scalars(self):
        return [0.0, 0.0, 0.0, 0.0]  # r_bar (set at the first step), G, k, (unused)

    def fused_attrs(self):
        return {'reps_rel': self.reps_rel, 'epsilon': self.epsilon}

    def whole_step(self, items):
        old = items[0].state[-1].copy()
        r_bar, G, k = old[0:1], old[1:2], old[2:3]
        x0_sq, dist_sq, grad_sq, grads = 0.0, 0.0, 0.0, []
        for item in items:
            x0 = item.state[0]
            x, g = item.weight, item.grad
            if item.wd:
                g = g + item.wd * x
            grads.append(g)
            x0_sq = x0_sq + _sum(x0 * x0)
            dist_sq = dist_sq + _sum(nd.square(x - x0))
            grad_sq = grad_sq + _sum(g * g)
        r_eps = self.reps_rel * (1 + nd.sqrt(x0_sq))
        r_bar = nd.maximum(nd.where(k == 0, r_eps, r_bar), nd.sqrt(dist_sq))
        G_new = G + grad_sq
        eta = r_bar / nd.sqrt(G_new + self.epsilon)
        for item, g in zip(items, grads):
            x = item.weight
            x[:] = x - (item.lr * eta) * g
        self._store_scalars(items, nd.concat(r_bar, G_new, k + 1, old[3:4], dim=0))
