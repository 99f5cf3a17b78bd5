"""Independent implementations outside gluon_opt: MXNet's own fused update ops, ONNX's reference
training operators, and torch.optim.

Each oracle has the signature of the NumPy transcriptions (``oracle(w0, grads, lr, wd,
**hyper) -> (w, states)``), where ``states`` is a tuple in the optimizer's ``state_names``
order, or None where the oracle keeps its state in another form (then only the weights are
compared). Oracles register under the optimizer's name; an oracle that cannot express a
configuration raises ``Unsupported`` and the test skips that pair.
"""
import numpy as np
import mxnet as mx
from mxnet import nd

MXNET_OPS = {}
ONNX_OPS = {}
TORCH = {}


class Unsupported(Exception):
    pass


def _register(table, name):
    def deco(fn):
        table[name] = fn
        return fn
    return deco


# ------------------------------------------------------------------------------------------
# MXNet's fused ops. They take scalars per call; bias corrections are folded in as MXNet's own
# Python optimizers do.

@_register(MXNET_OPS, 'sgd')
def mxnet_sgd(w0, grads, lr, wd, momentum=0.0, dampening=0.0, nesterov=False):
    if dampening:
        raise Unsupported('MXNet has no dampening')
    w = nd.array(w0)
    if not momentum:
        for g in grads:
            nd.sgd_update(w, nd.array(g), lr=lr, wd=wd, out=w)
        return w.asnumpy(), ()
    mom = nd.zeros(w.shape)
    for g in grads:
        if nesterov:
            raise Unsupported('MXNet nag_mom_update uses another Nesterov form')
        # MXNet keeps mom = momentum*mom - lr*(g + wd*w), i.e. -lr times PyTorch's buffer
        nd.sgd_mom_update(w, nd.array(g), mom, lr=lr, momentum=momentum, wd=wd, out=w)
    return w.asnumpy(), (-mom.asnumpy() / lr,)


@_register(MXNET_OPS, 'adam')
def mxnet_adam(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8, amsgrad=False):
    if amsgrad:
        raise Unsupported('MXNet 1.9.1 adam_update has no AMSGrad')
    w, m, v = nd.array(w0), nd.zeros(w0.shape), nd.zeros(w0.shape)
    for t, g in enumerate(grads, 1):
        bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
        # MXNet's Adam adds epsilon to the uncorrected sqrt(v): scaling it by sqrt(bc2) gives
        # the paper's Algorithm 1 exactly
        nd.adam_update(w, nd.array(g), m, v, lr=lr * np.sqrt(bc2) / bc1, beta1=beta1,
                       beta2=beta2, epsilon=epsilon * np.sqrt(bc2), wd=wd, out=w)
    return w.asnumpy(), (m.asnumpy(), v.asnumpy())


# ------------------------------------------------------------------------------------------
# ONNX reference training operators (ai.onnx.preview.training), run through onnx.reference.

def _onnx_run(op, attrs, inputs, n_out):
    from onnx import helper, TensorProto
    from onnx.reference import ReferenceEvaluator
    names = ['i%d' % k for k in range(len(inputs))]
    outs = ['o%d' % k for k in range(n_out)]
    node = helper.make_node(op, names, outs, domain='ai.onnx.preview.training', **attrs)
    def vi(n, a):
        return helper.make_tensor_value_info(n, TensorProto.FLOAT if a.dtype == np.float32
                                             else TensorProto.INT64, list(a.shape))
    graph = helper.make_graph([node], 'g', [vi(n, a) for n, a in zip(names, inputs)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                               for o in outs])
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid('', 17), helper.make_opsetid('ai.onnx.preview.training', 1)])
    return ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))


@_register(ONNX_OPS, 'sgd')
def onnx_momentum(w0, grads, lr, wd, momentum=0.0, dampening=0.0, nesterov=False):
    if not momentum:
        raise Unsupported('ONNX Momentum with alpha=0 is plain SGD; covered elsewhere')
    w, v = w0.astype(np.float32), np.zeros_like(w0, dtype=np.float32)
    for t, g in enumerate(grads):
        # ONNX: v <- alpha*v + beta*(g + norm*x) with beta forced to 1 at t = 0: exactly
        # PyTorch's dampening convention (beta = 1 - dampening)
        w, v = _onnx_run('Momentum', dict(alpha=float(momentum), beta=float(1 - dampening),
                                          mode='nesterov' if nesterov else 'standard',
                                          norm_coefficient=float(wd)),
                         [np.array(lr, np.float32), np.array(t, np.int64), w,
                          g.astype(np.float32), v], 2)
    return w, (v,)


@_register(ONNX_OPS, 'adam')
def onnx_adam(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8, amsgrad=False,
              decoupled=False):
    if amsgrad:
        raise Unsupported('ONNX Adam has no AMSGrad')
    w = w0.astype(np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        # ONNX adds epsilon to the uncorrected sqrt(h), as MXNet does: scale it by sqrt(bc2)
        w_before = w
        w, m, v = _onnx_run('Adam', dict(alpha=float(beta1), beta=float(beta2),
                                         epsilon=float(epsilon * np.sqrt(1 - beta2 ** t)),
                                         norm_coefficient=0.0 if decoupled else float(wd),
                                         norm_coefficient_post=0.0),
                            [np.array(lr, np.float32), np.array(t, np.int64),
                             (w_before * (1 - lr * wd) if decoupled else w_before).astype(
                                 np.float32), g.astype(np.float32), m, v], 3)
    return w, (m, v)


@_register(ONNX_OPS, 'adamw')
def onnx_adamw(w0, grads, lr, wd, **hyper):
    # AdamW = decay the weight by (1 - lr*wd), then an Adam step without L2 (ONNX's
    # norm_coefficient_post decays *after* the step, which is not AdamW's order)
    return onnx_adam(w0, grads, lr, wd, decoupled=True, **hyper)


# ------------------------------------------------------------------------------------------
# torch.optim (optional).

def _torch_run(make, w0, grads, state_keys):
    import torch
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float32))
    opt = make([p])
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    st = opt.state[p]
    if state_keys is None:
        return p.detach().numpy().copy(), None
    return p.detach().numpy().copy(), tuple(st[k].numpy().copy() for k in state_keys)


@_register(TORCH, 'sgd')
def torch_sgd(w0, grads, lr, wd, momentum=0.0, dampening=0.0, nesterov=False):
    import torch
    return _torch_run(lambda ps: torch.optim.SGD(ps, lr=lr, momentum=momentum,
                                                 dampening=dampening, nesterov=nesterov,
                                                 weight_decay=wd),
                      w0, grads, ('momentum_buffer',) if momentum else ())


@_register(TORCH, 'adam')
def torch_adam(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8, amsgrad=False):
    import torch
    keys = ('exp_avg', 'exp_avg_sq') + (('max_exp_avg_sq',) if amsgrad else ())
    return _torch_run(lambda ps: torch.optim.Adam(ps, lr=lr, betas=(beta1, beta2), eps=epsilon,
                                                  weight_decay=wd, amsgrad=amsgrad),
                      w0, grads, keys)


@_register(TORCH, 'adamw')
def torch_adamw(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8, amsgrad=False):
    import torch
    keys = ('exp_avg', 'exp_avg_sq') + (('max_exp_avg_sq',) if amsgrad else ())
    return _torch_run(lambda ps: torch.optim.AdamW(ps, lr=lr, betas=(beta1, beta2),
                                                   eps=epsilon, weight_decay=wd,
                                                   amsgrad=amsgrad),
                      w0, grads, keys)


# ------------------------------------------------------------------------------------------
# layerwise family

@_register(MXNET_OPS, 'lamb')
def mxnet_lamb(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-6, lower_bound=None,
               upper_bound=None, bias_correction=True):
    # MXNet's two-phase LAMB: phase 1 returns r = m_hat / (sqrt(v_hat) + eps) + wd * w,
    # phase 2 applies lr * clip(||w||) / ||r|| (1 when a norm is 0); a bound <= 0 is "unset"
    w, m, v = nd.array(w0), nd.zeros(w0.shape), nd.zeros(w0.shape)
    bounds = {}
    if lower_bound is not None:
        bounds['lower_bound'] = lower_bound
    if upper_bound is not None:
        bounds['upper_bound'] = upper_bound
    for t, g in enumerate(grads, 1):
        r = nd.lamb_update_phase1(w, nd.array(g), m, v, beta1=beta1, beta2=beta2,
                                  epsilon=epsilon, t=t, bias_correction=bias_correction, wd=wd)
        nd.lamb_update_phase2(w, r, w.norm(), r.norm(), lr=lr, out=w, **bounds)
    return w.asnumpy(), (m.asnumpy(), v.asnumpy())


@_register(MXNET_OPS, 'lars')
def mxnet_lars(w0, grads, lr, wd, momentum=0.0, eta=0.001, epsilon=0.0):
    # MXNet's own LARS optimizer (multi_sum_sq + multi_lars + sgd_mom_update). Index 0 has
    # no name ending in bias/gamma/beta, so the local rate applies; the lr is constant, so
    # its momentum_correction (momentum * lr_t / lr_{t-1}) is a factor of 1. Its momentum
    # buffer is -lr * local_lr-weighted, i.e. minus ours.
    opt = mx.optimizer.LARS(learning_rate=lr, momentum=momentum, eta=eta, eps=epsilon, wd=wd)
    w = nd.array(w0)
    state = opt.create_state(0, w)
    for g in grads:
        opt.update(0, w, nd.array(g), state)
    return w.asnumpy(), ((-state.asnumpy(),) if momentum else ())
# Adam family (Adamax, NAdam, RAdam, AdaBelief) and adaptive family (AdaGrad, RMSprop,
# AdaDelta).

@_register(TORCH, 'adamax')
def torch_adamax(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8):
    import torch
    return _torch_run(lambda ps: torch.optim.Adamax(ps, lr=lr, betas=(beta1, beta2),
                                                    eps=epsilon, weight_decay=wd),
                      w0, grads, ('exp_avg', 'exp_inf'))


@_register(TORCH, 'nadam')
def torch_nadam(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8,
                schedule_decay=0.004, decoupled_wd=False):
    import torch
    # torch keeps mu_product as a 0-d tensor; ours is a one-element tensor (compared by
    # broadcasting)
    return _torch_run(lambda ps: torch.optim.NAdam(ps, lr=lr, betas=(beta1, beta2), eps=epsilon,
                                                   weight_decay=wd,
                                                   momentum_decay=schedule_decay,
                                                   decoupled_weight_decay=decoupled_wd),
                      w0, grads, ('exp_avg', 'exp_avg_sq', 'mu_product'))


@_register(TORCH, 'radam')
def torch_radam(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8, decoupled_wd=False):
    import torch
    return _torch_run(lambda ps: torch.optim.RAdam(ps, lr=lr, betas=(beta1, beta2), eps=epsilon,
                                                   weight_decay=wd,
                                                   decoupled_weight_decay=decoupled_wd),
                      w0, grads, ('exp_avg', 'exp_avg_sq'))


@_register(TORCH, 'adagrad')
def torch_adagrad(w0, grads, lr, wd, lr_decay=0.0, initial_accumulator_value=0.0,
                  epsilon=1e-10):
    import torch
    return _torch_run(lambda ps: torch.optim.Adagrad(
        ps, lr=lr, lr_decay=lr_decay, weight_decay=wd,
        initial_accumulator_value=initial_accumulator_value, eps=epsilon), w0, grads, ('sum',))


@_register(ONNX_OPS, 'adagrad')
def onnx_adagrad(w0, grads, lr, wd, lr_decay=0.0, initial_accumulator_value=0.0,
                 epsilon=1e-10):
    w = w0.astype(np.float32)
    h = np.full_like(w, initial_accumulator_value)
    for t, g in enumerate(grads):
        # ONNX: r = lr / (1 + t * decay_factor) with t counted from 0, g += norm * x,
        # h += g^2, x -= r * g / (sqrt(h) + epsilon): PyTorch's rule with step t + 1
        w, h = _onnx_run('Adagrad', dict(decay_factor=float(lr_decay), epsilon=float(epsilon),
                                         norm_coefficient=float(wd)),
                         [np.array(lr, np.float32), np.array(t, np.int64), w,
                          g.astype(np.float32), h], 2)
    return w, (h,)


@_register(TORCH, 'rmsprop')
def torch_rmsprop(w0, grads, lr, wd, rho=0.9, momentum=0.0, epsilon=1e-8, centered=False):
    import torch
    keys = (('square_avg',) + (('grad_avg',) if centered else ())
            + (('momentum_buffer',) if momentum else ()))
    return _torch_run(lambda ps: torch.optim.RMSprop(ps, lr=lr, alpha=rho, eps=epsilon,
                                                     weight_decay=wd, momentum=momentum,
                                                     centered=centered),
                      w0, grads, keys)


# MXNet's rmsprop ops put epsilon inside the root: sqrt(n + eps) instead of sqrt(n) + eps.
# The two differ by at most eps / (2 sqrt(n)) + eps; for eps <= 1e-10 and the tests' unit-scale
# gradients (n >= ~1e-6 from the first step) that is below 1e-7 relative, under float32
# rounding. Larger epsilons cannot be mapped onto MXNet's placement.
_MXNET_RMSPROP_MAX_EPS = 1e-10


@_register(MXNET_OPS, 'rmsprop')
def mxnet_rmsprop(w0, grads, lr, wd, rho=0.9, momentum=0.0, epsilon=1e-8, centered=False):
    if epsilon > _MXNET_RMSPROP_MAX_EPS:
        raise Unsupported('MXNet adds epsilon inside the square root; the placements agree '
                          'only for epsilon <= %g' % _MXNET_RMSPROP_MAX_EPS)
    w = nd.array(w0)
    n = nd.zeros(w.shape)
    if not centered:
        if momentum:
            raise Unsupported('MXNet 1.9.1 rmsprop_update has no momentum')
        for g in grads:
            nd.rmsprop_update(w, nd.array(g), n, lr=lr, gamma1=rho, epsilon=epsilon, wd=wd,
                              out=w)
        return w.asnumpy(), (n.asnumpy(),)
    gbar, delta = nd.zeros(w.shape), nd.zeros(w.shape)
    for g in grads:
        # Graves' form: delta <- gamma2*delta - lr*g/d, i.e. -lr times PyTorch's buffer
        nd.rmspropalex_update(w, nd.array(g), n, gbar, delta, lr=lr, gamma1=rho,
                              gamma2=momentum, epsilon=epsilon, wd=wd, out=w)
    return w.asnumpy(), (n.asnumpy(), gbar.asnumpy()) + (
        (-delta.asnumpy() / lr,) if momentum else ())


@_register(TORCH, 'adadelta')
def torch_adadelta(w0, grads, lr, wd, rho=0.9, epsilon=1e-6):
    import torch
    return _torch_run(lambda ps: torch.optim.Adadelta(ps, lr=lr, rho=rho, eps=epsilon,
                                                      weight_decay=wd),
                      w0, grads, ('square_avg', 'acc_delta'))


@_register(MXNET_OPS, 'adadelta')
def mxnet_adadelta(w0, grads, lr, wd, rho=0.9, epsilon=1e-6):
    # MXNet 1.9.1 has no fused AdaDelta op: its Python optimizer is the independent version
    if lr != 1.0:
        raise Unsupported('MXNet AdaDelta has no learning rate (it is lr = 1)')
    if wd:
        raise Unsupported('MXNet AdaDelta applies wd outside the rule: w -= dx + wd*w')
    opt = mx.optimizer.AdaDelta(rho=rho, epsilon=epsilon)
    w = nd.array(w0)
    state = opt.create_state(0, w)
    for g in grads:
        opt.update(0, w, nd.array(g), state)
    return w.asnumpy(), tuple(s.asnumpy() for s in state)


# ------------------------------------------------------------------------------------------
# factored family

@_register(TORCH, 'adafactor')
def torch_adafactor(w0, grads, lr, wd, epsilon1=1e-30, epsilon2=1e-3, clip_threshold=1.0,
                    decay_rate=-0.8, beta1=None, relative_step=True, scale_parameter=True,
                    warmup_init=False):
    # torch.optim.Adafactor is the relative-step, parameter-scaled, momentum-free variant:
    # rho_t = min(lr_torch, 1/sqrt(t)) equals ours (HuggingFace's min(1e-2, 1/sqrt(t)) times
    # learning_rate) when lr_torch = 1e-2 and learning_rate = 1. It clamps V_hat at
    # epsilon1^2 instead of adding epsilon1 to g^2 (equal for gradients far above 1e-15) and
    # decays weights by lr_torch * wd instead of alpha_t * wd.
    import torch
    if (not relative_step or not scale_parameter or warmup_init or beta1 is not None
            or wd or lr != 1.0 or clip_threshold < 1.0):
        raise Unsupported('torch.optim.Adafactor has only the relative-step, scaled, '
                          'momentum-free, wd-free form with d >= 1')
    if w0.ndim >= 2:
        keys = ('row_var', 'col_var')
    else:
        keys = ('variance',)
    w, states = _torch_run(lambda ps: torch.optim.Adafactor(
        ps, lr=1e-2, beta2_decay=decay_rate, eps=(epsilon1, epsilon2), d=clip_threshold,
        weight_decay=0.0), w0, grads, keys)
    # torch keeps row_var/col_var with keepdim axes: (..., n, 1) and (..., 1, m)
    if w0.ndim >= 2:
        states = (states[0][..., 0], states[1][..., 0, :])
    return w, states


# -- cautious (Adam, AdamW, Lion): none of the oracles above has the mask; the cautious entries
# are compared with pytorch-optimizer's cautious variants in tests/test_modern_oracles.py --

def _without_cautious(oracle):
    def wrapped(w0, grads, lr, wd, cautious=False, **hyper):
        if cautious:
            raise Unsupported('no cautious mask (tests/test_modern_oracles.py compares it with '
                              "pytorch-optimizer's)")
        return oracle(w0, grads, lr, wd, **hyper)
    return wrapped


for _table in (MXNET_OPS, ONNX_OPS, TORCH):
    for _name in ('adam', 'adamw', 'lion'):
        if _name in _table:
            _table[_name] = _without_cautious(_table[_name])
