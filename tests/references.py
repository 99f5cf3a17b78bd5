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
