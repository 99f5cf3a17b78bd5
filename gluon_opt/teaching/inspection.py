"""Looking inside a step, for the course: how noisy minibatch gradients are, and what learning
rate each element of a parameter gets from an adaptive optimizer.

* ``flat_gradient(net, data, label)``: every trained parameter's gradient, as one vector
  (chapter 8);
* ``gradient_noise(net, data, label, batch_sizes)``: minibatch against full-batch gradients
  (chapter 2);
* ``effective_learning_rates(trainer)``: per-element rates read from the optimizer's state
  (chapter 6).
"""
import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

__all__ = ['flat_gradient', 'gradient_noise', 'effective_learning_rates']


def flat_gradient(net, data, label, loss_fn=None):
    """The gradient of the mean loss of ``net`` on ``(data, label)`` with respect to every
    trained parameter, concatenated into one float64 numpy vector (parameters in
    ``collect_params`` order). ``net`` must be initialised; its gradients are overwritten."""
    loss_fn = loss_fn or gluon.loss.SoftmaxCrossEntropyLoss()
    params = [p for p in net.collect_params().values() if p.grad_req != 'null']
    with autograd.record():
        loss = loss_fn(net(data), label).mean()
    loss.backward()
    return np.concatenate([p.grad().asnumpy().ravel().astype(np.float64) for p in params])


def gradient_noise(net, data, label, batch_sizes, samples=20, seed=0, loss_fn=None):
    """How far minibatch gradients stray from the full-batch gradient, per batch size.

    ``g`` is the gradient of the mean loss over all of ``(data, label)`` (the "full batch");
    for each ``B`` in ``batch_sizes``, ``samples`` minibatches of ``B`` distinct examples are
    drawn (a seeded ``RandomState(seed)``) and their gradients ``g_B`` compared with ``g``.
    Returns ``{B: {'relative_variance': mean ||g_B - g||^2 / ||g||^2,
    'cosine': mean cos(g_B, g)}}``. Sampling theory predicts a relative variance proportional
    to ``(1/B) (N - B) / (N - 1)`` for ``N`` examples.
    """
    n = data.shape[0]
    full = flat_gradient(net, data, label, loss_fn)
    norm2 = float(full @ full)
    rng = np.random.RandomState(seed)
    out = {}
    for b in batch_sizes:
        if not 1 <= int(b) <= n:
            raise ValueError('batch size %r is invalid; expected 1..%d.' % (b, n))
        dev, cos = [], []
        for _ in range(samples):
            idx = mx.nd.array(rng.choice(n, int(b), replace=False), dtype='int64')
            g = flat_gradient(net, mx.nd.take(data, idx), mx.nd.take(label, idx), loss_fn)
            diff = g - full
            dev.append(float(diff @ diff) / norm2)
            cos.append(float(g @ full) / np.sqrt(float(g @ g) * norm2))
        out[int(b)] = {'relative_variance': float(np.mean(dev)), 'cosine': float(np.mean(cos))}
    return out


def effective_learning_rates(trainer):
    """The learning rate every element of every parameter gets at the next step, read from the
    optimizer's state: one float64 numpy array per parameter, ``{name: array}``.

    For ``gluon_opt.adam``/``adamw`` it is ``lr / (sqrt(v_hat) + eps)`` with ``v_hat`` the
    bias-corrected second moment (``lr / (sqrt(v_max_hat) + eps)`` with AMSGrad); for
    ``gluon_opt.rmsprop`` ``lr / (sqrt(v) + eps)`` (centred: ``sqrt(v - gbar^2)``); for
    ``gluon_opt.adagrad`` ``lr_t / (sqrt(sum g^2) + eps)``; for ``gluon_opt.sgd`` the scalar
    learning rate broadcast to the parameter's shape (momentum multiplies every element's step
    alike). ``lr`` includes the schedule and each parameter's ``lr_mult``. The update of an
    element is this rate times the first moment (Adam) or the gradient (RMSprop, AdaGrad, SGD).
    Only parameters that have been updated at least once are reported. Elements whose
    accumulated squared gradient is exactly 0 (they never received a gradient, e.g. weights
    of always-black pixels) are NaN for the adaptive optimizers: their rate ``lr / eps`` is
    never used.
    """
    opt = trainer._optimizer
    kind = getattr(opt, 'name', None)
    if kind not in ('adam', 'adamw', 'rmsprop', 'adagrad', 'sgd'):
        raise ValueError('effective_learning_rates reads gluon_opt.adam, adamw, rmsprop, '
                         'adagrad and sgd states; got %s.' % type(opt).__name__)
    states = trainer._updaters[0].states if trainer._updaters else {}
    out = {}
    for index, state in sorted(states.items()):
        t = opt._index_update_count.get(index, 0)
        if not t:
            continue
        name = trainer._params[index].name
        lr = opt._get_lr(index)
        if kind in ('adam', 'adamw'):
            var = state[2] if opt.amsgrad else state[1]
            v_hat = var.asnumpy().astype(np.float64) / (1 - opt.beta2 ** t)
            rate = _unused_nan(lr / (np.sqrt(v_hat) + opt.epsilon), v_hat)
        elif kind == 'rmsprop':
            v = state[0].asnumpy().astype(np.float64)
            if opt.centered:
                v = np.maximum(v - np.square(state[1].asnumpy().astype(np.float64)), 0)
            rate = _unused_nan(lr / (np.sqrt(v) + opt.epsilon), state[0].asnumpy())
        elif kind == 'adagrad':
            history = state[0].asnumpy().astype(np.float64)
            # the next step is step t + 1, whose decayed rate is lr / (1 + t * lr_decay)
            rate = _unused_nan(lr / (1 + t * opt.lr_decay) / (np.sqrt(history) + opt.epsilon),
                               history - opt.initial_accumulator_value)
        else:
            weight = trainer._params[index]
            rate = np.full(weight.shape, lr, dtype=np.float64)
        out[name] = rate
    if not out:
        raise ValueError('the trainer has not made a step yet (no optimizer state).')
    return out


def _unused_nan(rate, accumulated):
    return np.where(accumulated == 0, np.nan, rate)
