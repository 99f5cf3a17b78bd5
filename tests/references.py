"""Independent NumPy transcriptions of each optimizer's published algorithm.

Written from the papers (and, where noted, PyTorch's documented pseudo-code), in float64, one
function per algorithm, deliberately *not* sharing code with ``gluon_opt``: these are the
oracles the ``mx.nd`` reference updates are checked against.

Every function has the signature ``ref(w0, grads, lr, wd, **hyper) -> (w, states)``: it runs
``len(grads)`` steps from the weight ``w0`` with the given gradient sequence (already rescaled
and clipped) and returns the final weight and the states in the optimizer's ``state_names``
order.
"""
import numpy as np

REFERENCES = {}


def reference(name):
    def deco(fn):
        REFERENCES[name] = fn
        return fn
    return deco


@reference('sgd')
def sgd(w0, grads, lr, wd, momentum=0.0, dampening=0.0, nesterov=False):
    """torch.optim.SGD's documented algorithm (Sutskever et al. 2013 form of momentum)."""
    w = w0.astype(np.float64).copy()
    b = None
    for g in grads:
        g = g + wd * w
        if momentum:
            b = g.copy() if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        w = w - lr * g
    return w, (() if not momentum else (b,))


@reference('adam')
def adam(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8, amsgrad=False,
         decoupled=False):
    """Kingma & Ba (2015), Algorithm 1; AMSGrad (Reddi et al. 2018) keeps max of v_t and
    divides by the bias-corrected maximum, as torch.optim.Adam does; ``decoupled`` is AdamW
    (Loshchilov & Hutter 2019, Algorithm 2 with eta_t = lr)."""
    w = w0.astype(np.float64).copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    vmax = np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        if decoupled:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        if amsgrad:
            vmax = np.maximum(vmax, v)
            v_hat = vmax / (1 - beta2 ** t)
        else:
            v_hat = v / (1 - beta2 ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + epsilon)
    return w, ((m, v, vmax) if amsgrad else (m, v))


@reference('adamw')
def adamw(w0, grads, lr, wd, **hyper):
    return adam(w0, grads, lr, wd, decoupled=True, **hyper)


# ------------------------------------------------------------------------------------------
# orthogonal family

def _newton_schulz5(G, steps, eps=1e-7):
    """Keller Jordan's zeropower_via_newtonschulz5, in float64 NumPy."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.astype(np.float64)
    tall = G.shape[0] > G.shape[1]
    if tall:
        X = X.T
    X = X / (np.linalg.norm(X) + eps)
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * A @ A
        X = a * X + B @ X
    return X.T if tall else X


@reference('muon')
def muon(w0, grads, lr, wd, momentum=0.95, nesterov=True, ns_steps=5, scaling='keller',
         flatten=True, adamw_lr=None, adamw_beta1=0.9, adamw_beta2=0.95, adamw_epsilon=1e-8,
         adamw_wd=None, learning_rate=None):
    """Muon (Jordan et al. 2024; Moonshot's scaling, Liu et al. 2025) for matrices, AdamW
    (Loshchilov & Hutter 2019) with Muon's AdamW hyperparameters for everything else."""
    w = w0.astype(np.float64).copy()
    if w.ndim < 2 or (w.ndim > 2 and not flatten):
        a_lr = lr if adamw_lr is None else adamw_lr
        a_wd = wd if adamw_wd is None else adamw_wd
        m, v = np.zeros_like(w), np.zeros_like(w)
        for t, g in enumerate(grads, 1):
            w = w * (1 - a_lr * a_wd)
            m = adamw_beta1 * m + (1 - adamw_beta1) * g
            v = adamw_beta2 * v + (1 - adamw_beta2) * g * g
            w = w - a_lr * (m / (1 - adamw_beta1 ** t)) / (
                np.sqrt(v / (1 - adamw_beta2 ** t)) + adamw_epsilon)
        return w, (m, v)
    rows = w.shape[0]
    cols = w.size // rows
    s = max(1.0, rows / cols) ** 0.5 if scaling == 'keller' else 0.2 * np.sqrt(max(rows, cols))
    b = np.zeros_like(w)
    for g in grads:
        b = momentum * b + g
        d = g + momentum * b if nesterov else b
        o = _newton_schulz5(d.reshape(rows, cols), ns_steps).reshape(w.shape)
        w = w * (1 - lr * wd)
        w = w - lr * s * o
    return w, (b,)


# ------------------------------------------------------------------------------------------
# schedule_free family

@reference('schedulefree_adamw')
def schedulefree_adamw(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8,
                       warmup_steps=0, r=0.0, weight_lr_power=2.0):
    """Defazio et al. (2024), Algorithm 1 with Adam normalisation, in the x/z/y form of the
    paper (x stored explicitly, unlike the optimizer), with the official
    AdamWScheduleFree's warmup, lr_max weighting and bias-corrected v. Returns y (the model
    weight during training) and (z, v, [lr_max, weight_sum])."""
    x = w0.astype(np.float64).copy()
    z = x.copy()
    v = np.zeros_like(x)
    lr_max = weight_sum = 0.0
    for t, g in enumerate(grads, 1):
        y = (1 - beta1) * z + beta1 * x          # the gradient g was taken at y
        lr_t = lr * min(1.0, t / warmup_steps) if warmup_steps else lr
        lr_max = max(lr_max, lr_t)
        weight = t ** r * lr_max ** weight_lr_power
        weight_sum += weight
        c = weight / weight_sum if weight_sum else 0.0
        v = beta2 * v + (1 - beta2) * g * g
        d = g / (np.sqrt(v / (1 - beta2 ** t)) + epsilon) + wd * y
        z = z - lr_t * d
        x = (1 - c) * x + c * z
    y = (1 - beta1) * z + beta1 * x
    return y, (z, v, np.array([lr_max, weight_sum]))


# ------------------------------------------------------------------------------------------
# wrapper family

def _numpy_inner_step(name, hyper):
    """One step of the inner optimizer as ``step(w, g, lr, wd, t, state) -> w`` for the
    Lookahead transcription (Adam/AdamW: Kingma & Ba 2015, Algorithm 1; SGD: PyTorch's)."""
    name = name.replace('gluon_opt.', '')
    if name in ('adam', 'adamw'):
        b1, b2 = hyper.get('beta1', 0.9), hyper.get('beta2', 0.999)
        eps = hyper.get('epsilon', 1e-8)

        def step(w, g, lr, wd, t, st):
            if name == 'adamw':
                w = w * (1 - lr * wd)
            else:
                g = g + wd * w
            st['m'] = b1 * st.get('m', 0) + (1 - b1) * g
            st['v'] = b2 * st.get('v', 0) + (1 - b2) * g * g
            return w - lr * (st['m'] / (1 - b1 ** t)) / (np.sqrt(st['v'] / (1 - b2 ** t)) + eps)
        return step, ('m', 'v')
    if name == 'sgd':
        mom = hyper.get('momentum', 0.0)

        def step(w, g, lr, wd, t, st):
            g = g + wd * w
            if mom:
                st['b'] = g if t == 1 else mom * st['b'] + g
                g = st['b']
            return w - lr * g
        return step, ('b',) if mom else ()
    raise NotImplementedError(name)


@reference('lookahead')
def lookahead(w0, grads, lr, wd, optimizer='gluon_opt.adam', k=5, alpha=0.5, **inner):
    """Zhang et al. (2019), Algorithm 1, with the inner optimizer's state kept across
    synchronisations. States: (slow, *inner states)."""
    step, names = _numpy_inner_step(optimizer, inner)
    w = w0.astype(np.float64).copy()
    slow = w.copy()
    st = {}
    for t, g in enumerate(grads, 1):
        w = step(w, g, lr, wd, t, st)
        if t % k == 0:
            slow = slow + alpha * (w - slow)
            w = slow.copy()
    return w, (slow,) + tuple(st[n] for n in names)
