"""Check an optimizer against a reference, step by step.

``compare_optimizers(mine, 'gluon_opt.adam', learning_rate=0.01)`` drives both optimizers on
the same problem (several tensors, noisy quadratic gradients computed at the reference's
weights, so both see the same gradients) and reports, for every step, the relative error of
the weights, and the first step where it exceeds the tolerance. The course's chapter 10 uses
it to check a learner's own optimizer; grading builds on it.
"""
import numpy as np
import mxnet as mx

from .landscapes import make_optimizer

__all__ = ['compare_optimizers', 'CheckReport']


class CheckReport(object):
    """Result of ``compare_optimizers``.

    errors : array of shape (steps,), the weights' relative error after each step,
        ``max |w_mine - w_ref| / max |w_ref|`` over all tensors
    first_diverging_step : the first (1-based) step whose error exceeds ``rtol``, or None
    passed : True when no step did
    """

    def __init__(self, mine, reference, errors, rtol, steps, shapes):
        self.mine, self.reference = mine, reference
        self.errors, self.rtol = np.asarray(errors), rtol
        self.steps, self.shapes = steps, shapes
        bad = np.nonzero(~(self.errors <= rtol))[0]  # NaN counts as a failure
        self.first_diverging_step = int(bad[0]) + 1 if bad.size else None

    @property
    def passed(self):
        return self.first_diverging_step is None

    def __bool__(self):
        return self.passed

    @property
    def max_error(self):
        return float(np.max(self.errors)) if self.errors.size else 0.0

    def __str__(self):
        head = '%s vs %s, %d steps on shapes %s: ' % (
            self.mine, self.reference, self.steps, ', '.join(str(s) for s in self.shapes))
        if self.passed:
            # The size of round-off differences depends on the build (a fused kernel or
            # not), so only the bound is printed; ``max_error`` holds the value.
            return head + 'PASS (every step within relative error %.0e)' % self.rtol
        k = self.first_diverging_step
        return head + 'FAIL: first differs at step %d (relative error %.0e > %.0e)' % (
            k, self.errors[k - 1], self.rtol)

    __repr__ = __str__


def _label(opt):
    return opt if isinstance(opt, str) else getattr(opt, '__name__', type(opt).__name__)


def compare_optimizers(mine, reference, steps=50, shapes=((4, 3), (5,)), seed=0, rtol=1e-5,
                       dtype='float32', reference_hyper=None, **hyper):
    """Run ``mine`` and ``reference`` side by side and compare the weights after every step.

    Parameters
    ----------
    mine, reference : a registered name, an Optimizer class, or an instance
    steps : int, updates to compare
    shapes : shapes of the tensors (each is its own parameter index, with its own state)
    seed : seeds the start weights, the quadratic's curvature and the gradient noise
    rtol : the relative error (see ``CheckReport``) a step may reach
    reference_hyper : hyperparameters for the reference, when they are named differently;
        by default both get ``hyper``
    **hyper : hyperparameters for creating ``mine`` (and the reference)

    The gradient of tensor ``i`` at step ``t`` is ``h_i * (w_i - c_i) + noise``, evaluated at
    the *reference's* weights, so a difference in the update rule shows up where it happens
    and is not hidden or amplified by different gradients.
    """
    rng = np.random.RandomState(seed)
    opt_mine = make_optimizer(mine, **hyper)
    opt_ref = make_optimizer(reference, **(hyper if reference_hyper is None
                                           else reference_hyper))
    starts = [rng.randn(*s) for s in shapes]
    curvature = [rng.uniform(0.1, 3.0, size=s) for s in shapes]
    centre = [rng.randn(*s) for s in shapes]
    w_mine = [mx.nd.array(w, dtype=dtype) for w in starts]
    w_ref = [mx.nd.array(w, dtype=dtype) for w in starts]
    s_mine = [opt_mine.create_state_multi_precision(i, w) for i, w in enumerate(w_mine)]
    s_ref = [opt_ref.create_state_multi_precision(i, w) for i, w in enumerate(w_ref)]
    errors = []
    for _ in range(int(steps)):
        for i in range(len(shapes)):
            w = w_ref[i].asnumpy().astype(np.float64)
            g = curvature[i] * (w - centre[i]) + 0.1 * rng.randn(*shapes[i])
            opt_ref.update_multi_precision(i, w_ref[i], mx.nd.array(g, dtype=dtype), s_ref[i])
            opt_mine.update_multi_precision(i, w_mine[i], mx.nd.array(g, dtype=dtype),
                                            s_mine[i])
        diff = max(float(np.max(np.abs(a.asnumpy().astype(np.float64)
                                       - b.asnumpy().astype(np.float64))))
                   for a, b in zip(w_mine, w_ref))
        scale = max(float(np.max(np.abs(b.asnumpy()))) for b in w_ref)
        errors.append(diff / max(scale, 1e-30) if np.isfinite(diff) else np.inf)
    return CheckReport(_label(mine), _label(reference), errors, rtol, int(steps),
                       [tuple(s) for s in shapes])
