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
# sign family

@reference('lion')
def lion(w0, grads, lr, wd, beta1=0.9, beta2=0.99):
    """Chen et al. (2023), Algorithm 2 (Lion with decoupled weight decay lambda = wd):
    c_t = b1 m + (1-b1) g; theta <- theta - eta (sign(c_t) + lambda theta);
    m <- b2 m + (1-b2) g."""
    w = w0.astype(np.float64).copy()
    m = np.zeros_like(w)
    for g in grads:
        c = beta1 * m + (1 - beta1) * g
        w = w - lr * (np.sign(c) + wd * w)
        m = beta2 * m + (1 - beta2) * g
    return w, (m,)


# ------------------------------------------------------------------------------------------
# layerwise family

@reference('lamb')
def lamb(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-6, lower_bound=None,
         upper_bound=None, bias_correction=True):
    """You et al. (ICLR 2020), Algorithm 2 (LAMB) for one layer, with Adam's bias correction
    optional; phi clips ||x|| to [lower_bound, upper_bound]; a zero norm gives ratio 1."""
    w = w0.astype(np.float64).copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        if bias_correction:
            m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        else:
            m_hat, v_hat = m, v
        r = m_hat / (np.sqrt(v_hat) + epsilon) + wd * w
        phi = np.linalg.norm(w)
        if lower_bound is not None:
            phi = max(phi, lower_bound)
        if upper_bound is not None:
            phi = min(phi, upper_bound)
        r_norm = np.linalg.norm(r)
        ratio = phi / r_norm if phi > 0 and r_norm > 0 else 1.0
        w = w - lr * ratio * r
    return w, (m, v)


@reference('lars')
def lars(w0, grads, lr, wd, momentum=0.0, eta=0.001, epsilon=0.0):
    """You, Gitman & Ginsburg (2017), Algorithm 1 (LARS with momentum): local lr
    lambda = eta ||w|| / (||g|| + beta ||w||) (plus epsilon), v <- m v + gamma lambda (g + beta w),
    w <- w - v; lambda = 1 when a norm is zero."""
    w = w0.astype(np.float64).copy()
    v = np.zeros_like(w)
    for g in grads:
        wn, gn = np.linalg.norm(w), np.linalg.norm(g)
        local = eta * wn / (gn + wd * wn + epsilon) if wn > 0 and gn > 0 else 1.0
        v = momentum * v + lr * local * (g + wd * w)
        w = w - v
    return w, ((v,) if momentum else ())


# ------------------------------------------------------------------------------------------
# factored family

@reference('adafactor')
def adafactor(w0, grads, lr, wd, epsilon1=1e-30, epsilon2=1e-3, clip_threshold=1.0,
              decay_rate=-0.8, beta1=None, relative_step=True, scale_parameter=True,
              warmup_init=False):
    """Shazeer & Stern (2018), Algorithm 4 (matrices, factored) and 5 (vectors), with the
    relative step size of Section 8, update clipping of Section 6, beta2_t = 1 - t^decay_rate
    of Section 7 and optional momentum; HuggingFace's conventions (epsilon1 added to G^2
    before the row/column means, momentum of the scaled update, decay by alpha_t * wd).
    Tensors of ndim > 2 are factored over their last two axes (a batch of matrices)."""
    x = w0.astype(np.float64).copy()
    factored = x.ndim >= 2
    R = np.zeros(x.shape[:-1]) if factored else None
    C = np.zeros(x.shape[:-2] + x.shape[-1:]) if factored else None
    V = None if factored else np.zeros_like(x)
    M = np.zeros_like(x)

    def rms(a):
        return np.sqrt(np.mean(a * a))

    for t, G in enumerate(grads, 1):
        if relative_step:
            rho = min(1e-6 * t if warmup_init else 1e-2, 1 / np.sqrt(t))
        else:
            rho = 1.0
        alpha = lr * rho * (max(epsilon2, rms(x)) if scale_parameter else 1.0)
        beta2 = 1 - t ** decay_rate
        G2 = G * G + epsilon1
        if factored:
            n, m = G.shape[-2], G.shape[-1]
            # the paper keeps row/column sums: R_t = b R + (1-b) (G^2) 1_m, and
            # V_hat = R C / (1_n^T R); with means instead of sums the scale cancels
            R = beta2 * R + (1 - beta2) * G2.sum(axis=-1) / m
            C = beta2 * C + (1 - beta2) * G2.sum(axis=-2) / n
            V_hat = R[..., :, None] * C[..., None, :] / R.sum(axis=-1)[..., None, None] * n
        else:
            V = beta2 * V + (1 - beta2) * G2
            V_hat = V
        U = G / np.sqrt(V_hat)
        U_hat = U / max(1.0, rms(U) / clip_threshold)
        step = alpha * U_hat
        if beta1 is not None:
            M = beta1 * M + (1 - beta1) * step
            step = M
        x = x * (1 - wd * alpha) - step
    states = (R, C) if factored else (V,)
    return x, states + ((M,) if beta1 is not None else ())
# --- Adam family: Adamax, NAdam, RAdam, AdaBelief --------------------------------------------

@reference('adamax')
def adamax(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """Kingma & Ba (2015), section 7.1 (Algorithm 2), with torch.optim.Adamax's epsilon inside
    the maximum and coupled L2."""
    w = w0.astype(np.float64).copy()
    m = np.zeros_like(w)
    u = np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        g = g + wd * w
        m = beta1 * m + (1 - beta1) * g
        u = np.maximum(beta2 * u, np.abs(g) + epsilon)
        w = w - (lr / (1 - beta1 ** t)) * m / u
    return w, (m, u)


@reference('nadam')
def nadam(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8, schedule_decay=0.004,
          decoupled_wd=False):
    """Dozat (2016), NAdam with the momentum schedule mu_t = beta1 (1 - 0.5 * 0.96^(t psi)),
    as written in torch.optim.NAdam's documented algorithm."""
    w = w0.astype(np.float64).copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    mus = [None]  # mus[t] = mu_t
    for t, g in enumerate(grads, 1):
        if decoupled_wd:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        while len(mus) <= t + 1:
            k = len(mus)
            mus.append(beta1 * (1 - 0.5 * 0.96 ** (k * schedule_decay)))
        prod_t = np.prod(mus[1:t + 1])
        prod_next = prod_t * mus[t + 1]
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = v / (1 - beta2 ** t)
        m_bar = (1 - mus[t]) * g / (1 - prod_t) + mus[t + 1] * m / (1 - prod_next)
        w = w - lr * m_bar / (np.sqrt(v_hat) + epsilon)
    return w, (m, v, np.array([np.prod(mus[1:len(grads) + 1])]))


@reference('radam')
def radam(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8, decoupled_wd=False):
    """Liu et al. (2020), Algorithm 2, with torch.optim.RAdam's threshold rho_t > 5 and its
    epsilon added to the uncorrected sqrt(v)."""
    w = w0.astype(np.float64).copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    rho_inf = 2 / (1 - beta2) - 1
    for t, g in enumerate(grads, 1):
        if decoupled_wd:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        rho_t = rho_inf - 2 * t * beta2 ** t / (1 - beta2 ** t)
        if rho_t > 5:
            l_t = np.sqrt(1 - beta2 ** t) / (np.sqrt(v) + epsilon)
            r_t = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                          / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            w = w - lr * m_hat * r_t * l_t
        else:
            w = w - lr * m_hat
    return w, (m, v)


@reference('adabelief')
def adabelief(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-16, amsgrad=False,
              decoupled_wd=True):
    """Zhuang et al. (2020), Algorithm 2 (eps added to s_t, and again outside the root);
    AMSGrad keeps the maximum of s_t; decoupled decay as the official code (w *= 1 - lr*wd)."""
    w = w0.astype(np.float64).copy()
    m = np.zeros_like(w)
    s = np.zeros_like(w)
    smax = np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        if decoupled_wd:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        m = beta1 * m + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * (g - m) ** 2 + epsilon
        if amsgrad:
            smax = np.maximum(smax, s)
            s_hat = smax / (1 - beta2 ** t)
        else:
            s_hat = s / (1 - beta2 ** t)
        w = w - lr * (m / (1 - beta1 ** t)) / (np.sqrt(s_hat) + epsilon)
    return w, ((m, s, smax) if amsgrad else (m, s))


# --- adaptive family: AdaGrad, RMSprop, AdaDelta ----------------------------------------------

@reference('adagrad')
def adagrad(w0, grads, lr, wd, lr_decay=0.0, initial_accumulator_value=0.0, epsilon=1e-10):
    """Duchi et al. (2011), diagonal AdaGrad, in torch.optim.Adagrad's form (lr decay
    lr / (1 + (t-1) lr_decay), epsilon outside the root, coupled L2)."""
    w = w0.astype(np.float64).copy()
    h = np.full_like(w, initial_accumulator_value)
    for t, g in enumerate(grads, 1):
        g = g + wd * w
        h = h + g * g
        w = w - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(h) + epsilon)
    return w, (h,)


@reference('rmsprop')
def rmsprop(w0, grads, lr, wd, rho=0.9, momentum=0.0, epsilon=1e-8, centered=False):
    """Tieleman & Hinton (2012); centred variance as Graves (2013) eq. 38-45; in
    torch.optim.RMSprop's form (epsilon outside the root, buffer b = mu b + g / d)."""
    w = w0.astype(np.float64).copy()
    v = np.zeros_like(w)
    gbar = np.zeros_like(w)
    b = np.zeros_like(w)
    for g in grads:
        g = g + wd * w
        v = rho * v + (1 - rho) * g * g
        if centered:
            gbar = rho * gbar + (1 - rho) * g
            d = np.sqrt(v - gbar * gbar) + epsilon
        else:
            d = np.sqrt(v) + epsilon
        if momentum:
            b = momentum * b + g / d
            w = w - lr * b
        else:
            w = w - lr * g / d
    return w, (v,) + ((gbar,) if centered else ()) + ((b,) if momentum else ())


@reference('adadelta')
def adadelta(w0, grads, lr, wd, rho=0.9, epsilon=1e-6):
    """Zeiler (2012), Algorithm 1, with torch.optim.Adadelta's learning rate on the step."""
    w = w0.astype(np.float64).copy()
    eg2 = np.zeros_like(w)
    edx2 = np.zeros_like(w)
    for g in grads:
        g = g + wd * w
        eg2 = rho * eg2 + (1 - rho) * g * g
        dx = np.sqrt(edx2 + epsilon) / np.sqrt(eg2 + epsilon) * g
        edx2 = rho * edx2 + (1 - rho) * dx * dx
        w = w - lr * dx
    return w, (eg2, edx2)
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
                       warmup_steps=0, r=0.0, weight_lr_power=2.0, bias_correction='v'):
    """Defazio et al. (2024), Algorithm 1 with Adam normalisation, in the x/z/y form of the
    paper (x stored explicitly, unlike the optimizer), with the official
    AdamWScheduleFree's warmup, lr_max weighting and bias-corrected v; with
    ``bias_correction='lr'`` AdamWScheduleFreePaper's lr_t * sqrt(1 - beta2^t) and an
    uncorrected v instead. Returns y (the model weight during training) and
    (z, v, [lr_max, weight_sum])."""
    x = w0.astype(np.float64).copy()
    z = x.copy()
    v = np.zeros_like(x)
    lr_max = weight_sum = 0.0
    for t, g in enumerate(grads, 1):
        y = (1 - beta1) * z + beta1 * x          # the gradient g was taken at y
        lr_t = lr * min(1.0, t / warmup_steps) if warmup_steps else lr
        bc2 = 1 - beta2 ** t
        if bias_correction == 'lr':
            lr_t, bc2 = lr_t * np.sqrt(bc2), 1.0
        lr_max = max(lr_max, lr_t)
        weight = t ** r * lr_max ** weight_lr_power
        weight_sum += weight
        c = weight / weight_sum if weight_sum else 0.0
        v = beta2 * v + (1 - beta2) * g * g
        d = g / (np.sqrt(v / bc2) + epsilon) + wd * y
        z = z - lr_t * d
        x = (1 - c) * x + c * z
    y = (1 - beta1) * z + beta1 * x
    return y, (z, v, np.array([lr_max, weight_sum]))


# -- schedule_free: SGD and the wrapper --
@reference('schedulefree_sgd')
def schedulefree_sgd(w0, grads, lr, wd, momentum=0.9, warmup_steps=0, r=0.0,
                     weight_lr_power=2.0):
    """Defazio et al. (2024), Algorithm 1 (SGD), in the paper's x/z/y form with x stored, and
    the official SGDScheduleFree's warmup, lr_max weighting and L2 term at y. Returns y and
    (z, [lr_max, weight_sum])."""
    x = w0.astype(np.float64).copy()
    z = x.copy()
    lr_max = weight_sum = 0.0
    for t, g in enumerate(grads, 1):
        y = (1 - momentum) * z + momentum * x      # the gradient g was taken at y
        lr_t = lr * min(1.0, t / warmup_steps) if warmup_steps else lr
        lr_max = max(lr_max, lr_t)
        weight = t ** r * lr_max ** weight_lr_power
        weight_sum += weight
        c = weight / weight_sum if weight_sum else 0.0
        z = z - lr_t * (g + wd * y)
        x = (1 - c) * x + c * z
    return (1 - momentum) * z + momentum * x, (z, np.array([lr_max, weight_sum]))


def _optax_base(name, hyper):
    """optax's base optimizers as ``update(g, params, lr, wd, t, st) -> u`` (the update added to
    the parameters, the learning rate included): ``sgd`` (with ``add_decayed_weights`` before
    it, i.e. L2 at params), ``adam`` (``scale_by_adam``; L2 at params before it) and ``lion``
    (``scale_by_lion`` then ``add_decayed_weights``: decoupled). Their states' names, in the
    gluon_opt optimizer's state order."""
    name = name.replace('gluon_opt.', '')
    if name == 'sgd':
        return (lambda g, p, lr, wd, t, st: -lr * (g + wd * p)), ()
    if name == 'adam':
        b1, b2 = hyper.get('beta1', 0.9), hyper.get('beta2', 0.999)
        eps = hyper.get('epsilon', 1e-8)

        def update(g, p, lr, wd, t, st):
            g = g + wd * p
            st['mu'] = b1 * st.get('mu', 0.0) + (1 - b1) * g
            st['nu'] = b2 * st.get('nu', 0.0) + (1 - b2) * g * g
            return -lr * (st['mu'] / (1 - b1 ** t)) / (np.sqrt(st['nu'] / (1 - b2 ** t)) + eps)
        return update, ('mu', 'nu')
    if name == 'lion':
        b1, b2 = hyper.get('beta1', 0.9), hyper.get('beta2', 0.99)

        def update(g, p, lr, wd, t, st):
            mu = st.get('mu', 0.0)
            u = np.sign(b1 * mu + (1 - b1) * g) + wd * p
            st['mu'] = b2 * mu + (1 - b2) * g
            return -lr * u
        return update, ('mu',)
    raise NotImplementedError(name)


@reference('schedulefree')
def schedulefree(w0, grads, lr, wd, optimizer='gluon_opt.sgd', momentum=0.9, warmup_steps=0,
                 r=0.0, weight_lr_power=2.0, **inner):
    """optax's ``contrib.schedule_free(base, learning_rate, b1=momentum, weight_lr_power)``
    (optax 0.2.x ``update_fn``), with ``params = y`` handed to the base optimizer, the
    official code's ``t^r`` factor in the weights (optax has none: r = 0) and the linear
    warmup as ``learning_rate`` schedule of both. States: (z, [lr_max, weight_sum], *base
    states)."""
    update, names = _optax_base(optimizer, inner)
    y = w0.astype(np.float64).copy()
    z = y.copy()
    st = {}
    lr_max = weight_sum = 0.0
    for t, g in enumerate(grads, 1):
        lr_t = lr * min(1.0, t / warmup_steps) if warmup_steps else lr
        lr_max = max(lr_max, lr_t)
        weight = t ** r * lr_max ** weight_lr_power
        weight_sum += weight
        ck = weight / weight_sum if weight_sum else 0.0
        new_z = z + update(g, y, lr_t, wd, t, st)
        prev_x = (y - (1 - momentum) * z) / momentum
        x = prev_x * (1 - ck) + new_z * ck
        y = momentum * x + (1 - momentum) * new_z
        z = new_z
    return y, (z, np.array([lr_max, weight_sum])) + tuple(st[n] for n in names)


# ------------------------------------------------------------------------------------------
# -- parameter-free -- (one tensor here: the model's global sums are this tensor's sums;
# tests/test_parameter_free.py checks several tensors against the authors' packages)

@reference('prodigy')
def prodigy(w0, grads, lr, wd, beta1=0.9, beta2=0.999, beta3=None, epsilon=1e-8, d0=1e-6,
            d_coef=1.0, growth_rate=None, decouple=True, use_bias_correction=False,
            safeguard_warmup=False):
    """Mishchenko & Defazio (2024), Algorithm 3 (Prodigy with Adam), with the authors'
    package's options (prodigyopt 1.1.2: d_coef, growth_rate, bias correction, safeguard
    warmup, decoupled or coupled weight decay; a step is skipped while sum|s| = 0). Returns
    the weight and (m, v, s, x0, [d, d_max, r, k])."""
    growth = np.inf if growth_rate is None else growth_rate
    b3 = np.sqrt(beta2) if beta3 is None else beta3
    x = w0.astype(np.float64).copy()
    x0 = x.copy()
    m, v, s = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    d, d_max, r, k = d0, d0, 0.0, 0
    for g in grads:
        if not decouple:
            g = g + wd * x
        eta = d * lr * (np.sqrt(1 - beta2 ** (k + 1)) / (1 - beta1 ** (k + 1))
                        if use_bias_correction else 1.0)
        r_k = b3 * r + (d / d0) * eta * np.dot(g.ravel(), (x0 - x).ravel())
        m = beta1 * m + (1 - beta1) * d * g
        v = beta2 * v + (1 - beta2) * d * d * g * g
        s = b3 * s + (d / d0) * (d if safeguard_warmup else eta) * g
        if np.abs(s).sum() == 0:
            continue
        d_hat = d_coef * r_k / np.abs(s).sum()
        d_new = max(d, d_hat) if d == d0 else d
        d_max = max(d_max, d_hat)
        d_new = min(d_max, d_new * growth)
        if decouple:
            x = x - eta * wd * x
        x = x - eta * (m if beta1 > 0 else d_new * g) / (np.sqrt(v) + d_new * epsilon)
        d, r, k = d_new, r_k, k + 1
    return x, (m, v, s, x0, np.array([d, d_max, r, k]))


@reference('dadapt_adam')
def dadapt_adam(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8, d0=1e-6,
                growth_rate=None, decouple=False, use_bias_correction=False):
    """Defazio & Mishchenko (2023), Algorithm 4 (D-Adapted Adam) as the authors' package
    (dadaptation 3.2) runs it: the numerator reads s / (sqrt(v) + eps) before the moments
    move, m carries the step size, and a step is skipped while sum|s| = 0. Returns the weight
    and (m, v, s, [d, r, k, 0])."""
    growth = np.inf if growth_rate is None else growth_rate
    sb2 = np.sqrt(beta2)
    x = w0.astype(np.float64).copy()
    m, v, s = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    d, r, k = d0, 0.0, 0
    for g in grads:
        if not decouple:
            g = g + wd * x
        eta = d * lr * (np.sqrt(1 - beta2 ** (k + 1)) / (1 - beta1 ** (k + 1))
                        if use_bias_correction else 1.0)
        a = eta * np.dot(g.ravel(), (s / (np.sqrt(v) + epsilon)).ravel())
        m = beta1 * m + eta * (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        s = sb2 * s + eta * (1 - sb2) * g
        if np.abs(s).sum() == 0:
            continue
        r = sb2 * r + (1 - sb2) * a
        d = max(d, min(r / ((1 - sb2) * np.abs(s).sum()), d * growth))
        if decouple:
            x = x - eta * wd * x
        x = x - m / (np.sqrt(v) + epsilon)
        k += 1
    return x, (m, v, s, np.array([d, r, k, 0.0]))


@reference('dog')
def dog(w0, grads, lr, wd, reps_rel=1e-6, epsilon=1e-8):
    """Ivgi, Hinder & Carmon (2023), Algorithm 1 (DoG) with r_eps = reps_rel (1 + ||x0||)
    and optax's eps inside the root. Returns the weight and (x0, [r_bar, G, k, 0])."""
    x = w0.astype(np.float64).copy()
    x0 = x.copy()
    r_bar, G = reps_rel * (1 + np.linalg.norm(x0)), 0.0
    for g in grads:
        g = g + wd * x
        r_bar = max(r_bar, np.linalg.norm(x - x0))
        G += np.sum(g * g)
        x = x - lr * r_bar / np.sqrt(G + epsilon) * g
    return x, (x0, np.array([r_bar, G, len(grads), 0.0]))


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
# -- closure-based (second-order family) ------------------------------------------------------
# These take a gradient *function*, not a gradient sequence: the methods choose where to
# evaluate it. Used by tests/test_second_order.py.

def sam_sgd(w0, grad, steps, lr, rho, momentum=0.0, wd=0.0, adaptive=False):
    """SAM (Foret et al. 2021, Algorithm 1) around torch-style SGD with momentum and coupled
    weight decay; ASAM's perturbation (Kwon et al. 2021) with T_w = |w| when ``adaptive``."""
    w = np.asarray(w0, np.float64).copy()
    buf = None
    for _ in range(steps):
        g = grad(w)
        if adaptive:
            e = rho * w * w * g / np.linalg.norm(np.abs(w) * g)
        else:
            e = rho * g / np.linalg.norm(g)
        g = grad(w + e) + wd * w
        buf = g.copy() if buf is None else momentum * buf + g
        w = w - lr * buf
    return w


# -- ademamix, mars (issue 20) ----------------------------------------------------------------

def _cautious(u, g):
    """Liang et al. (2024), the authors' C-Optim code: keep u where u * g > 0, rescaled by
    n / (number kept + 1)."""
    keep = (u * g > 0).astype(np.float64)
    return keep * (keep.size / (keep.sum() + 1.0))


@reference('ademamix')
def ademamix(w0, grads, lr, wd, beta1=0.9, beta2=0.999, beta3=0.9999, alpha=5.0,
             t_alpha_beta3=None, epsilon=1e-8, cautious=False):
    """Pagliardini, Ablin & Grangier (ICLR 2025), Algorithm 1, with the schedulers of the
    authors' code: alpha_t = min(t alpha / T, alpha), and beta3 warmed up from beta1 linearly
    in the half-life, exp(ln b1 ln b3 / ((1 - t/T) ln b3 + (t/T) ln b1)) capped at b3.
    Decoupled decay w <- w - lr (u + wd w). Cautious masks the fast EMA (as
    pytorch-optimizer). States: (m1, nu, m2)."""
    w = w0.astype(np.float64).copy()
    m1, nu, m2 = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        if t_alpha_beta3 is None:
            a, b3 = alpha, beta3
        else:
            a = min(t * alpha / t_alpha_beta3, alpha)
            s = t / t_alpha_beta3
            b3 = min(np.exp(np.log(beta1) * np.log(beta3)
                            / ((1 - s) * np.log(beta3) + s * np.log(beta1))), beta3)
        m1 = beta1 * m1 + (1 - beta1) * g
        m2 = b3 * m2 + (1 - b3) * g
        nu = beta2 * nu + (1 - beta2) * g * g
        fast = m1 * _cautious(m1, g) if cautious else m1
        u = (fast / (1 - beta1 ** t) + a * m2) / (np.sqrt(nu / (1 - beta2 ** t)) + epsilon)
        w = w - lr * (u + wd * w)
    return w, (m1, nu, m2)


@reference('mars')
def mars(w0, grads, lr, wd, beta1=0.95, beta2=0.99, gamma=0.025, epsilon=1e-8,
         optimize_1d=False, lr_1d=None, beta1_1d=0.9, beta2_1d=0.95, cautious=False):
    """Yuan, Liu, Wu, Zhou & Gu (ICML 2025), Algorithm 2 (MARS-AdamW) in its approximate form
    (the previous step's gradient as g(x_{t-1}, xi_t)), the corrected gradient clipped to norm
    1, epsilon after the bias correction as in the authors' code; tensors with ndim < 2 take
    AdamW with betas_1d and lr * lr_1d / lr unless optimize_1d. Cautious masks m with the raw
    gradient. States: (m, v, last gradient)."""
    w = w0.astype(np.float64).copy()
    m, v, prev = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    is_mars = optimize_1d or w.ndim >= 2
    b1, b2 = (beta1, beta2) if is_mars else (beta1_1d, beta2_1d)
    step = lr if is_mars or lr_1d is None else lr_1d
    for t, g in enumerate(grads, 1):
        if is_mars:
            c = g + gamma * beta1 / (1 - beta1) * (g - prev)
            norm = np.linalg.norm(c)
            if norm > 1:
                c = c / norm
        else:
            c = g
        m = b1 * m + (1 - b1) * c
        v = b2 * v + (1 - b2) * c * c
        mom = m * _cautious(m, g) if cautious else m
        u = mom / (1 - b1 ** t) / (np.sqrt(v / (1 - b2 ** t)) + epsilon)
        w = w - step * (u + wd * w)
        prev = g
    return w, (m, v, prev)
# -- ADOPT, LaProp, cautious (Adam, AdamW, Lion, LaProp) ----------------------------------------

def _cautious_update(u, g):
    """Liang et al. (2024), the authors' C-Optim: keep u where u g > 0, times n / (kept + 1)."""
    mask = (u * g > 0).astype(np.float64)
    return u * mask * (mask.size / (mask.sum() + 1.0))


@reference('adam-cautious')
def adam_cautious(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-8, amsgrad=False,
                  cautious=True, decoupled=False):
    """Cautious Adam/AdamW (Liang et al. 2024, Algorithm 1 on Adam): Kingma & Ba's step
    u = lr m_hat / (sqrt(v_hat) + eps), masked by sign agreement with the gradient the moments
    took (with the L2 term for Adam); AMSGrad's maximum as torch.optim.Adam."""
    w = w0.astype(np.float64).copy()
    m, v, vmax = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        if decoupled:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        vmax = np.maximum(vmax, v)
        v_hat = (vmax if amsgrad else v) / (1 - beta2 ** t)
        u = lr * (m / (1 - beta1 ** t)) / (np.sqrt(v_hat) + epsilon)
        w = w - (_cautious_update(u, g) if cautious else u)
    return w, ((m, v, vmax) if amsgrad else (m, v))


@reference('adamw-cautious')
def adamw_cautious(w0, grads, lr, wd, **hyper):
    return adam_cautious(w0, grads, lr, wd, decoupled=True, **hyper)


@reference('lion-cautious')
def lion_cautious(w0, grads, lr, wd, beta1=0.9, beta2=0.99, cautious=True):
    """Cautious Lion (Liang et al. 2024, on Chen et al. 2023's Algorithm 2)."""
    w = w0.astype(np.float64).copy()
    m = np.zeros_like(w)
    for g in grads:
        u = np.sign(beta1 * m + (1 - beta1) * g)
        if cautious:
            u = _cautious_update(u, g)
        w = w - lr * (u + wd * w)
        m = beta2 * m + (1 - beta2) * g
    return w, (m,)


@reference('adopt')
def adopt(w0, grads, lr, wd, beta1=0.9, beta2=0.9999, epsilon=1e-6, clip_exponent=0.25,
          decoupled_wd=False):
    """Taniguchi et al. (2024), Algorithm 1 with the authors' code's additions: the first step
    only sets v = g^2; the normalised gradient g / max(sqrt(v), eps) is clipped to
    [-t^p, t^p] (p = 1/4 in their code); weight decay coupled or decoupled (lr wd)."""
    w = w0.astype(np.float64).copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        if decoupled_wd:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        if t == 1:
            v = g * g
            continue
        bound = t ** clip_exponent
        m = beta1 * m + (1 - beta1) * np.clip(g / np.maximum(np.sqrt(v), epsilon), -bound,
                                              bound)
        w = w - lr * m
        v = beta2 * v + (1 - beta2) * g * g
    return w, (m, v)


@reference('laprop')
def laprop(w0, grads, lr, wd, beta1=0.9, beta2=0.999, epsilon=1e-15, cautious=False):
    """Ziyin, Wang & Ueda (2020), Algorithm 1 as the authors' code runs it: momentum of
    lr g / (sqrt(v_hat) + eps), divided by the lr-weighted bias correction (1 - beta1^t for a
    constant lr); decoupled decay lr wd after the step; optionally the cautious mask."""
    w = w0.astype(np.float64).copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        v = beta2 * v + (1 - beta2) * g * g
        m = beta1 * m + (1 - beta1) * lr * g / (np.sqrt(v / (1 - beta2 ** t)) + epsilon)
        u = m / (1 - beta1 ** t)
        if cautious:
            u = _cautious_update(u, g)
        w = (w - u) * (1 - lr * wd)
    return w, (m, v, np.array([lr * (1 - beta1 ** len(grads))]))
# -- soap ---------------------------------------------------------------------------------------

def _soap_project(x, qs, back=False):
    """``x`` with ``Q_i^T`` (``Q_i`` when ``back``) applied along each axis that has a basis,
    as the paper's code (torch.tensordot over axis 0, axis by axis)."""
    for q in qs:
        if q is None:
            x = np.moveaxis(x, 0, -1)
        else:
            x = np.tensordot(x, q, axes=([0], [1 if back else 0]))
    return x


def _soap_signs(q):
    """Columns signed so that each one's largest entry is positive (gluon_opt's convention;
    the update does not depend on it, the stored bases do)."""
    big = np.argmax(np.abs(q), axis=0)
    return q * np.sign(q[big, np.arange(q.shape[1])])


@reference('soap')
def soap(w0, grads, lr, wd, beta1=0.95, beta2=0.95, epsilon=1e-8, shampoo_beta=None,
         precondition_frequency=10, max_precond_dim=10000, precondition_1d=False,
         correct_bias=True):
    """SOAP (Vyas et al., ICLR 2025) as the paper's code (github.com/nikhilvyas/SOAP): the
    first step only builds the factors and their eigenbases; then Adam on the rotated gradient
    with the first moment kept in the original basis, decoupled decay after the step, the
    factors updated after it, and a power-iteration + QR refresh every
    ``precondition_frequency`` steps that reorders the second moment. Returns the weight and
    (first moment *in the eigenbasis*, second moment, factor and basis per preconditioned
    axis, step counter), gluon_opt's state layout."""
    w = w0.astype(np.float64).copy()
    sb = beta2 if shampoo_beta is None else shampoo_beta
    if w.ndim == 1 and not precondition_1d:
        gg = [None]
    else:
        gg = [np.zeros((d, d)) if d <= max_precond_dim else None for d in w.shape]
    qs = [None] * len(gg)
    m, v = np.zeros_like(w), np.zeros_like(w)

    def accumulate(g):
        for i, p in enumerate(gg):
            if p is not None:
                unfolded = np.moveaxis(g, i, 0).reshape(g.shape[i], -1)
                gg[i] = sb * p + (1 - sb) * unfolded @ unfolded.T

    for k, g in enumerate(grads):  # k: steps taken before this one
        if k == 0:
            accumulate(g)
            for i, p in enumerate(gg):
                if p is not None:
                    qs[i] = _soap_signs(np.linalg.eigh(p)[1][:, ::-1])
            continue
        gp = _soap_project(g, qs)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * gp * gp
        u = _soap_project(_soap_project(m, qs) / (np.sqrt(v) + epsilon), qs, back=True)
        step = lr * np.sqrt(1 - beta2 ** k) / (1 - beta1 ** k) if correct_bias else lr
        w = (w - step * u) * (1 - lr * wd)
        accumulate(g)
        if k % precondition_frequency == 0:
            for i, p in enumerate(gg):
                if p is None:
                    continue
                power = p @ qs[i]
                order = np.argsort(-np.sum(qs[i] * power, axis=0), kind='stable')
                v = np.take(v, order, axis=i)
                qs[i] = _soap_signs(np.linalg.qr(power[:, order])[0])
    mats = tuple(a for p, q in zip(gg, qs) if p is not None for a in (p, q))
    return w, (_soap_project(m, qs), v) + mats + (np.array([float(len(grads))]),)
