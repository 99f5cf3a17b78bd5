"""Small helpers the optimizer tests share."""
import contextlib

import numpy as np
import mxnet as mx
from mxnet import nd, gluon, autograd

import gluon_opt  # noqa: F401  (registers the optimizers)


def create(name, **kwargs):
    return mx.optimizer.create('gluon_opt.' + name, **kwargs)


def random_problem(seed, shape=(5, 4), steps=25, scale=1.0):
    """A start weight and a sequence of random gradients (float32-representable)."""
    rng = np.random.RandomState(seed)
    w0 = rng.randn(*shape).astype(np.float32)
    grads = [(scale * rng.randn(*shape)).astype(np.float32) for _ in range(steps)]
    return w0, grads


def flat_states(state):
    """The state tensors of one weight as a list of numpy arrays, master weight excluded."""
    if state is None:
        return []
    if isinstance(state, nd.NDArray):
        return [state.asnumpy()]
    out = []
    for s in state:
        out.extend(flat_states(s))
    return out


def state_values(opt, state, shape):
    """The values of one weight's states as float32 numpy arrays, master weight excluded,
    in ``state_names_for(shape)`` order: the arrays themselves, or what the bfloat16 or 8-bit
    storage of ``state_dtype`` holds."""
    if getattr(opt, 'state_dtype', 'float32') == 'float32':
        return flat_states(state)
    from gluon_opt.optimizers import lowprec
    return lowprec.float_states(opt, state, shape)


def run_updates(opt, w0, grads, dtype='float32', ctx=None, index=0):
    """Apply ``opt`` to one weight for every gradient; return (weight, state)."""
    ctx = ctx or mx.cpu()
    w = nd.array(w0, ctx=ctx, dtype=dtype)
    state = opt.create_state_multi_precision(index, w)
    for g in grads:
        opt.update_multi_precision(index, w, nd.array(g, ctx=ctx, dtype=dtype), state)
    return w, state


def classification_data(seed=0, n=256, features=20, classes=3):
    rng = np.random.RandomState(seed)
    centers = rng.randn(classes, features) * 2
    y = rng.randint(0, classes, size=n)
    x = centers[y] + rng.randn(n, features)
    return x.astype(np.float32), y.astype(np.float32)


def small_mlp(seed=0, ctx=None, hidden=16, classes=3, features=20, prefix=None):
    """``prefix``: the same parameter names in every net built with it (else Gluon's global
    counters name them, e.g. ``dense99_``, ``dense100_``)."""
    mx.random.seed(seed)
    np.random.seed(seed)
    net = gluon.nn.HybridSequential(prefix=prefix)
    with net.name_scope() if prefix is not None else contextlib.nullcontext():
        net.add(gluon.nn.Dense(hidden, activation='relu', in_units=features),
                gluon.nn.Dense(classes, in_units=hidden))
    net.initialize(mx.init.Xavier(), ctx=ctx or mx.cpu())
    return net


def train_steps(net, trainer, x, y, steps, ctx_list=None, batch=64, start=0):
    """``steps`` minibatch steps over (x, y) in a fixed order; returns the losses."""
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    ctx_list = ctx_list or [mx.cpu()]
    losses = []
    n = len(x)
    for s in range(start, start + steps):
        i = (s * batch) % n
        xb, yb = nd.array(x[i:i + batch]), nd.array(y[i:i + batch])
        xs = gluon.utils.split_and_load(xb, ctx_list, even_split=False)
        ys = gluon.utils.split_and_load(yb, ctx_list, even_split=False)
        with autograd.record():
            ls = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
        for l in ls:
            l.backward()
        trainer.step(len(xb))
        losses.append(sum(l.sum().asscalar() for l in ls) / len(xb))
    return losses


def params_numpy(net):
    """The parameters' values keyed by position and role (``0_weight``, ``1_bias``, ...):
    two nets built alike compare key by key even though Gluon names them apart."""
    return {'%d_%s' % (i, k.rsplit('_', 1)[-1]): v.data(v.list_ctx()[0]).asnumpy()
            for i, (k, v) in enumerate(net.collect_params().items())}
