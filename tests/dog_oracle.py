"""A float64 NumPy transcription of DoG (Ivgi, Hinder & Carmon, ICML 2023) as optax implements
it in ``optax.contrib.dog`` (``scale_by_dog`` with ``init_step=('heuristic', reps_rel)``,
``layer_wise=False``, then ``scale_by_learning_rate``), written from the paper's Algorithm 1 and
optax's documented algorithm, since jax and optax cannot be installed beside MXNet 1.9.1 here.
Deliberately shares no code with ``gluon_opt``.

optax's documented update, with ``x`` the list of parameter arrays (a pytree):

    init:    r_eps = reps_rel * (1 + ||x_0||)          (the authors' ``reps_rel`` rule)
             estim_dist = r_eps, sum_sq_norm_grads = 0
    update:  estim_dist = max(estim_dist, ||x_0 - x_t||)
             sum_sq_norm_grads += ||g_t||^2
             eta_t = estim_dist / sqrt(sum_sq_norm_grads + eps)
             x_{t+1} = x_t - learning_rate * eta_t * g_t

all norms global over the pytree; ``weight_decay`` (``add_decayed_weights``, before DoG) adds
``wd * x_t`` to ``g_t``.
"""
import numpy as np


class DoG(object):
    """Stateful like an optax transformation: ``init(params)``, then ``update(grads,
    params) -> new params``."""

    def __init__(self, learning_rate=1.0, reps_rel=1e-6, eps=1e-8, weight_decay=0.0):
        self.lr, self.reps_rel, self.eps, self.wd = learning_rate, reps_rel, eps, weight_decay

    @staticmethod
    def _norm(arrays):
        return np.sqrt(sum(float(np.sum(np.asarray(a, np.float64) ** 2)) for a in arrays))

    def init(self, params):
        self.x0 = [np.array(p, np.float64) for p in params]
        self.estim_dist = self.reps_rel * (1.0 + self._norm(self.x0))
        self.sum_sq_norm_grads = 0.0

    def update(self, grads, params):
        params = [np.asarray(p, np.float64) for p in params]
        grads = [np.asarray(g, np.float64) + self.wd * p for g, p in zip(grads, params)]
        self.estim_dist = max(self.estim_dist,
                              self._norm([x0 - p for x0, p in zip(self.x0, params)]))
        self.sum_sq_norm_grads += self._norm(grads) ** 2
        eta = self.estim_dist / np.sqrt(self.sum_sq_norm_grads + self.eps)
        return [p - self.lr * eta * g for p, g in zip(params, grads)]
