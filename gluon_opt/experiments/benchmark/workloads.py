"""The benchmark's workloads: small models on Fashion-MNIST, each with a held-out variant.

A ``Workload`` is a model, a loss, a validation metric (lower is better: the error rate, or
the mean squared error of a reconstruction), a batch size and a budget in training steps.
Every workload trains on the training file minus a fixed, class-stratified validation split
(``data.split_indices`` with seed ``SPLIT_SEED``, whatever the trial's seed) of ``VAL_SIZE``
images, of which the autoencoder and the conv net, whose evaluation costs more, use the first
2,000; the test images are never read, so neither the targets nor the scores see them.

=====================  =====================================================================
``mlp``                the course MLP 784-256-10 (ReLU), batch 128
``mlp_bn``             a deeper MLP 784-128-128-128-10 with BatchNorm, batch 128
``softmax``            softmax regression 784-10 (a convex problem), batch 128
``autoencoder``        an MLP autoencoder 784-128-32-128-784, squared error on the pixels
``conv``               a convolutional net (16, 32 channels) on 14x14 images, batch 128
=====================  =====================================================================

Each has one held-out variant that changes one thing (the activation, the width or the batch
size): ``mlp_tanh``, ``mlp_bn_narrow``, ``softmax_batch32``, ``autoencoder_tanh``,
``conv_narrow``. As in AlgoPerf, a variant is not scored on its own: an optimizer whose
tuning does not carry over to it loses the base workload (``scoring``), which is how a method
that only works at the settings it was developed on is exposed.

The budget is counted in steps, not seconds (AlgoPerf's is wall-clock on fixed hardware):
whether a trial reaches its target must not depend on the laptop it runs on or on what else
runs there. The time a trial takes to reach the target is still what is scored.
"""
import dataclasses
import typing

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from .. import data, models

__all__ = ['Workload', 'WORKLOADS', 'BASE', 'HELD_OUT', 'VAL_SIZE', 'SPLIT_SEED',
           'WorkloadError', 'get', 'resolve', 'arrays', 'validation_metric']

#: validation images carved from the training file (stratified by class)
VAL_SIZE = 5000
#: the seed of the validation split: fixed, so every trial and every target sees one split
SPLIT_SEED = 0


class WorkloadError(ValueError):
    """An unknown workload name; the message lists the known ones."""


@dataclasses.dataclass(frozen=True)
class Workload(object):
    """One benchmark problem.

    name : its name on the command line
    description : one line for tables
    model : ``'mlp'``, ``'autoencoder'`` or ``'convnet'`` (builders in ``models``)
    model_args : keyword arguments of the builder, as ``((key, value), ...)``
    metric : ``'error_rate'`` (cross-entropy training) or ``'mse'`` (squared-error training,
        the input as the target)
    batch_size : training batch size
    max_steps : the step budget of the external-tuning ruleset (self-tuning gets 1.5 times)
    eval_every : steps between validation evaluations (excluded from the time)
    image_size : 28, or 14 (2x2 average pooling)
    train_size : training images used (None: all that the validation split leaves)
    val_size : validation images used (the first so many of the ``VAL_SIZE`` held out)
    heldout_of : the base workload's name, for a held-out variant
    """
    name: str
    description: str
    model: str
    model_args: typing.Tuple
    metric: str
    batch_size: int
    max_steps: int
    eval_every: int
    image_size: int = 28
    train_size: typing.Optional[int] = None
    val_size: int = VAL_SIZE
    heldout_of: typing.Optional[str] = None

    @property
    def flatten(self):
        return self.model != 'convnet'

    def build(self):
        """A new, uninitialised, hybridised network."""
        builder = {'mlp': models.mlp, 'autoencoder': models.autoencoder,
                   'convnet': models.convnet}[self.model]
        return builder(**dict(self.model_args))

    def loss(self):
        return (gluon.loss.SoftmaxCrossEntropyLoss() if self.metric == 'error_rate'
                else gluon.loss.L2Loss())

    def definition(self):
        """What determines the workload's numbers (not its name or description): a target
        set for one definition is refused for another (``targets.load``)."""
        out = dataclasses.asdict(self)
        for key in ('name', 'description', 'heldout_of'):
            out.pop(key)
        out['model_args'] = {k: list(v) if isinstance(v, tuple) else v
                             for k, v in self.model_args}
        return out


#: evaluations over the whole budget (the resolution of a time to target): 30, or 20 for the
#: workloads whose evaluation costs more (a forward pass over the validation images costs
#: about 15 training steps of the conv net); AlgoPerf's rule of thumb is evaluations costing
#: 10-20% of the training time
EVALS_PER_BUDGET = 30


def _mlp(name, description, hidden, activation='relu', batch_norm=False, batch_size=128,
         max_steps=600, heldout_of=None):
    args = (('hidden', tuple(hidden)), ('activation', activation))
    if batch_norm:
        args += (('batch_norm', True),)
    return Workload(name, description, 'mlp', args, 'error_rate', batch_size, max_steps,
                    max_steps // EVALS_PER_BUDGET, heldout_of=heldout_of)


def _autoencoder(name, description, activation, heldout_of=None):
    return Workload(name, description, 'autoencoder',
                    (('hidden', (128, 32, 128)), ('activation', activation)), 'mse', 128,
                    600, 30, val_size=2000, heldout_of=heldout_of)


def _conv(name, description, channels, heldout_of=None):
    return Workload(name, description, 'convnet', (('channels', tuple(channels)),),
                    'error_rate', 128, 450, 22, image_size=14, val_size=2000,
                    heldout_of=heldout_of)


BASE = (
    _mlp('mlp', 'course MLP 784-256-10, ReLU', (256,)),
    _mlp('mlp_bn', 'MLP 784-128x3-10, BatchNorm, ReLU', (128, 128, 128), batch_norm=True),
    _mlp('softmax', 'softmax regression 784-10 (convex)', (), max_steps=1200),
    _autoencoder('autoencoder', 'MLP autoencoder 784-128-32-128-784, MSE', 'relu'),
    _conv('conv', 'conv net 16-32 channels, 14x14 images', (16, 32)),
)
HELD_OUT = (
    _mlp('mlp_tanh', 'course MLP with tanh', (256,), activation='tanh', heldout_of='mlp'),
    _mlp('mlp_bn_narrow', 'BatchNorm MLP, width 64', (64, 64, 64), batch_norm=True,
         heldout_of='mlp_bn'),
    _mlp('softmax_batch32', 'softmax regression, batch 32', (), batch_size=32,
         max_steps=1200, heldout_of='softmax'),
    _autoencoder('autoencoder_tanh', 'MLP autoencoder with tanh', 'tanh',
                 heldout_of='autoencoder'),
    _conv('conv_narrow', 'conv net 8-16 channels', (8, 16), heldout_of='conv'),
)
#: every workload by name, the base ones first
WORKLOADS = {w.name: w for w in BASE + HELD_OUT}


def get(name):
    """The workload called ``name``; ``WorkloadError`` listing the known ones otherwise."""
    try:
        return WORKLOADS[name]
    except (KeyError, TypeError):
        raise WorkloadError('unknown workload %r; expected one of %s (held-out variants: %s).'
                            % (name, ', '.join(w.name for w in BASE),
                               ', '.join(w.name for w in HELD_OUT))) from None


def resolve(names, heldout=True):
    """The workloads to run for the base ``names`` (every base workload for None), each
    followed by its held-out variant when ``heldout``. Naming a variant runs it alone."""
    chosen = [get(n) for n in names] if names else list(BASE)
    out = []
    for w in chosen:
        variants = [v for v in WORKLOADS.values() if v.heldout_of == w.name]
        for x in [w] + (variants if heldout else []):
            if x not in out:
                out.append(x)
    return out


_CACHE = {}


def arrays(workload, path=None):
    """``(train_x, train_y, val_x, val_y)`` of ``workload`` as ``NDArray`` on ``mx.cpu()``:
    pixels scaled to [0, 1], flattened or ``(N, 1, S, S)``; cached per shape and split (the
    28x28 workloads share one copy, about 170 MB)."""
    key = (workload.image_size, workload.flatten, workload.train_size, path)
    if key not in _CACHE:
        raw = data.load_arrays(path, download=False)
        train_idx, val_idx = data.split_indices(raw['y_train'], VAL_SIZE, SPLIT_SEED)
        if workload.train_size is not None:
            train_idx = train_idx[:workload.train_size]

        def images(idx):
            x = data.transform_images(raw['x_train'][idx], flatten=False)
            if workload.image_size != 28:
                f = 28 // workload.image_size
                x = x.reshape(len(x), 1, workload.image_size, f, workload.image_size,
                              f).mean(axis=(3, 5))
            return mx.nd.array(x.reshape(len(x), -1) if workload.flatten else x)

        def labels(idx):
            return mx.nd.array(raw['y_train'][idx].astype(np.float32))
        _CACHE[key] = (images(train_idx), labels(train_idx), images(val_idx), labels(val_idx))
    train_x, train_y, val_x, val_y = _CACHE[key]
    n = workload.val_size  # the validation split is shuffled (and stratified) already
    return train_x, train_y, val_x[:n], val_y[:n]


def validation_metric(net, workload, val_x, val_y, batch_size=2500):
    """The validation metric of ``net``: the error rate, or the mean squared error per pixel
    of the reconstruction.

    The MLPs are evaluated in prediction mode (BatchNorm's running statistics). The conv net,
    which has no layer that behaves differently in training, is evaluated in training mode:
    in prediction mode MXNet's MKLDNN convolution reorders its weights in place into a layout
    that the fused kernels cannot read, and the next fused step fails."""
    n, sums = val_x.shape[0], []
    mode = autograd.train_mode if workload.model == 'convnet' else autograd.predict_mode
    with mode():
        for lo in range(0, n, batch_size):
            x = val_x[lo:lo + batch_size]
            out = net(x)
            if workload.metric == 'error_rate':
                sums.append((out.argmax(axis=1) != val_y[lo:lo + batch_size]).sum())
            else:
                sums.append(((out - x.reshape(out.shape)) ** 2).mean(axis=1).sum())
    return float(mx.nd.add_n(*sums).asscalar() if len(sums) > 1 else sums[0].asscalar()) / n
