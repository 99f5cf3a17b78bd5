r"""Sharpness-aware minimisation (SAM), wrapping any first-order optimizer.

SAM looks for weights whose whole neighbourhood has low loss: it takes the gradient at the
worst point of a small ball around ``w`` (to first order) and gives it to an ordinary
optimizer. Two gradient evaluations per step, hence the closure.

References: Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware Minimization for
Efficiently Improving Generalization", ICLR 2021 (original code: google-research/sam);
Kwon, Kim, Park & Choi, "ASAM: Adaptive Sharpness-Aware Minimization", ICML 2021.
"""
import mxnet as mx
from mxnet import nd

from ..base import (check_positive, check_nonnegative, check_bool, check_clip_gradient,
                    check_lr_scheduler, _fail)
from ..closure import ClosureOptimizer
from ..registry import register
from ...hvp import global_norm

__all__ = ['SAM']


@register
class SAM(ClosureOptimizer):
    r"""SAM around a first-order base optimizer.

    One step (:math:`g` the rescaled loss gradient, summed over contexts; :math:`\rho` =
    ``rho``):

    .. math::

        g &= \nabla L(w) \\
        e &= \rho \, g / \lVert g \rVert
            \qquad \text{(SAM; } \lVert \cdot \rVert \text{ over all parameters)} \\
        e &= \rho \, w^2 g / \lVert w g \rVert
            \qquad \text{(adaptive=True: ASAM, } T_w = |w|) \\
        g_{\text{SAM}} &= \nabla L(w + e) \\
        w &\leftarrow \text{base\_update}(w, g_{\text{SAM}})
            \qquad \text{(at } w \text{, not at } w + e)

    Parameters
    ----------
    learning_rate : float or None, default None (the base optimizer's default)
    rho : float > 0, default 0.05 (radius; ASAM uses larger ones, e.g. 0.5 to 2)
    adaptive : bool, default False (ASAM)
    base : str, default 'gluon_opt.sgd' (any registered optimizer that needs no closure)
    base_params : dict or None (the base's other hyperparameters, e.g. momentum)
    wd : float, default 0 (passed to the base, which applies it as it documents)

    ``clip_gradient``, ``lr_mult``/``wd_mult`` and learning-rate schedulers act through the
    base optimizer as usual; the Trainer's ``clip_global_norm`` clips both gradients.

    Conventions: the original code's (the perturbation uses the loss gradient without weight
    decay; the base optimizer adds decay to ``g_sam``). ``e`` is computed on the device with
    no host synchronisation.

    Example::

        trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.sam',
                                    {'learning_rate': 0.05, 'rho': 0.05,
                                     'base': 'gluon_opt.sgd', 'base_params': {'momentum': 0.9}})
        loss = trainer.step(batch_size, closure)
    """
    name = 'sam'
    family = 'sam'
    paper = 'Foret et al., ICLR 2021; ASAM: Kwon et al., ICML 2021'
    state_bytes = 0  # the base optimizer's (SGD without momentum: none)
    oracle = 'numpy transcription of the paper\'s Algorithm 1 (and of ASAM\'s perturbation)'
    default_learning_rate = None
    exact_gradient = False

    def __init__(self, learning_rate=None, rho=0.05, adaptive=False, base='gluon_opt.sgd',
                 base_params=None, wd=0.0, clip_gradient=None, lr_scheduler=None,
                 multi_precision=False, **kwargs):
        owner = type(self).__name__
        self.rho = check_positive(owner, 'rho', rho)
        self.adaptive = check_bool(owner, 'adaptive', adaptive)
        if not isinstance(base, str) or base.lower() not in mx.optimizer.Optimizer.opt_registry:
            _fail(owner, 'base', base, 'expected the name of a registered optimizer')
        if base_params is not None and not isinstance(base_params, dict):
            _fail(owner, 'base_params', base_params, "expected a dict of the base optimizer's "
                  "hyperparameters (e.g. {'momentum': 0.9}) or None")
        # the shared hyperparameters are checked here, before they reach the base optimizer,
        # so that errors name SAM (the base class checks them again)
        if learning_rate is not None:
            learning_rate = check_nonnegative(owner, 'learning_rate', learning_rate)
        wd = check_nonnegative(owner, 'wd', wd)
        clip_gradient = check_clip_gradient(owner, clip_gradient)
        lr_scheduler = check_lr_scheduler(owner, lr_scheduler)
        multi_precision = check_bool(owner, 'multi_precision', multi_precision)
        base_params = dict(base_params or {})
        for key in ('learning_rate', 'wd', 'clip_gradient', 'lr_scheduler', 'rescale_grad'):
            if key in base_params:
                _fail(owner, 'base_params', base_params,
                      '%s is SAM\'s own hyperparameter: pass it to SAM, not in base_params'
                      % key)
        base_kwargs = dict(base_params, wd=wd, multi_precision=multi_precision)
        if clip_gradient is not None:
            base_kwargs['clip_gradient'] = clip_gradient
        if learning_rate is not None:
            base_kwargs['learning_rate'] = learning_rate
        try:
            self.base = mx.optimizer.create(base, **base_kwargs)
        except (ValueError, TypeError) as exc:
            raise type(exc)('%s: base=%r rejected base_params=%r: %s'
                            % (owner, base, base_params, exc))
        if getattr(self.base, 'needs_closure', False):
            _fail(owner, 'base', base, 'expected a first-order optimizer that needs no closure')
        self.base_name = base
        self.base_params = base_params
        if learning_rate is None and lr_scheduler is None:
            learning_rate = self.base.lr
        super(SAM, self).__init__(learning_rate=learning_rate, wd=wd, lr_scheduler=lr_scheduler,
                                  multi_precision=multi_precision, **kwargs)
        # clip_gradient is applied by the base; SAM's own copy stays None
        self.states = {}

    def closure_step(self, problem):
        loss, grads = problem.evaluate(with_wd=False)
        indices = problem.indices
        weights = problem.copy_weights()
        # the perturbation e, on the device
        if self.adaptive:
            scaled = [w * w * g for w, g in zip(weights, grads)]
            norm = global_norm([nd.abs(w) * g for w, g in zip(weights, grads)])
        else:
            scaled = grads
            norm = global_norm(grads)
        factor = self.rho / (norm + 1e-12)
        perturbed = [w + nd.broadcast_mul(s, factor.astype(s.dtype))
                     for w, s in zip(weights, scaled)]
        _, sam_grads = problem.evaluate_at(perturbed, with_wd=False)

        # the base step from w, with SAM's learning rate, schedule and the Trainer's lr_mult
        self._update_count(indices)
        base = self.base
        base.param_dict = self.param_dict
        base.lr = self.learning_rate
        base.wd = self.wd
        base.rescale_grad = 1.0  # the problem rescaled already
        for idx, w, g in zip(indices, weights, sam_grads):
            if idx not in self.states:
                self.states[idx] = base.create_state_multi_precision(idx, w)
            base.update_multi_precision(idx, w, g, self.states[idx])
        # the weights and gradients above are new arrays every step: let the base's caches of
        # prepared kernel calls and checked arrays go, so that they do not keep old ones alive
        for key in base.cache_attributes:
            base.__dict__.pop(key, None)
        problem.set_weights(weights)
        return loss
