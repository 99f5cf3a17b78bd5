"""The models the comparisons and the benchmark train: multilayer perceptrons, softmax
regression as the one-layer case, an MLP autoencoder and a small convolutional net. Every
builder returns an uninitialised, hybridised ``HybridSequential``; ``training.train`` (or the
benchmark's runner) initialises it under its seed.
"""
from mxnet import gluon

__all__ = ['ACTIVATIONS', 'mlp', 'softmax_regression', 'autoencoder', 'convnet', 'parse_hidden']

#: activations ``mlp`` accepts (Gluon's names; 'leaky' is LeakyReLU(0.01), 'gelu' GELU)
ACTIVATIONS = ('relu', 'tanh', 'sigmoid', 'softrelu', 'softsign', 'leaky', 'gelu')


def _activation(name):
    if name == 'leaky':
        return gluon.nn.LeakyReLU(0.01)
    if name == 'gelu':
        return gluon.nn.GELU()
    return gluon.nn.Activation(name)


def mlp(hidden=(256,), num_classes=10, activation='relu', dropout=0.0, batch_norm=False,
        hybridize=True, prefix=None):
    """A multilayer perceptron ``in -> hidden[0] -> ... -> hidden[-1] -> num_classes``.

    Each hidden layer is ``Dense -> [BatchNorm] -> activation -> [Dropout]``; the output
    layer is a plain ``Dense`` producing logits (the loss applies the softmax). The input
    width is inferred on the first batch, so flattened 28x28 images and any other width work.

    Parameters
    ----------
    hidden : sequence of int, default (256,); empty for softmax regression
    num_classes : int, default 10
    activation : one of ``ACTIVATIONS``, default 'relu'
    dropout : float in [0, 1), default 0; applied after each hidden activation
    batch_norm : bool, default False; BatchNorm before each hidden activation (the Dense
        layer then has no bias: BatchNorm's beta replaces it)
    hybridize : bool, default True

    Example::

        net = mlp(hidden=(128, 128), dropout=0.1)
    """
    hidden = tuple(hidden)
    for width in hidden:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError('hidden=%r is invalid; expected positive integer widths.'
                             % (hidden,))
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError('num_classes=%r is invalid; expected an integer >= 2.' % num_classes)
    if activation not in ACTIVATIONS:
        raise ValueError('activation=%r is invalid; expected one of %s.'
                         % (activation, ', '.join(ACTIVATIONS)))
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError('dropout=%r is invalid; expected a value in [0, 1).' % dropout)
    net = gluon.nn.HybridSequential(prefix=prefix)
    with net.name_scope():
        for width in hidden:
            net.add(gluon.nn.Dense(width, use_bias=not batch_norm, flatten=True))
            if batch_norm:
                net.add(gluon.nn.BatchNorm())
            net.add(_activation(activation))
            if dropout:
                net.add(gluon.nn.Dropout(float(dropout)))
        net.add(gluon.nn.Dense(num_classes, flatten=True))
    if hybridize:
        net.hybridize()
    return net


def softmax_regression(num_classes=10, hybridize=True):
    """Multinomial logistic regression: one ``Dense`` layer, ``mlp(hidden=())``."""
    return mlp(hidden=(), num_classes=num_classes, hybridize=hybridize)


def autoencoder(hidden=(128, 32, 128), outputs=784, activation='relu', hybridize=True):
    """An MLP autoencoder ``in -> hidden[0] -> ... -> hidden[-1] -> outputs``: ``mlp`` with a
    linear output layer as wide as the input (784 for flattened 28x28 images), trained to
    reproduce its input under a squared-error loss; the narrowest hidden layer is the code.

    Example::

        net = autoencoder((128, 32, 128))   # 784-128-32-128-784
    """
    return mlp(hidden, num_classes=outputs, activation=activation, hybridize=hybridize)


def convnet(channels=(16, 32), num_classes=10, activation='relu', hybridize=True):
    """A small convolutional net: per entry of ``channels`` a 3x3 convolution (padding 1) ->
    activation -> 2x2 max pooling, then a ``Dense`` layer producing logits. Takes
    ``(N, 1, H, W)`` images; 14x14 inputs leave 3x3 maps after two stages.

    Example::

        net = convnet((16, 32))
    """
    channels = tuple(channels)
    if not channels or any(isinstance(c, bool) or not isinstance(c, int) or c < 1
                           for c in channels):
        raise ValueError('channels=%r is invalid; expected positive integer widths.'
                         % (channels,))
    if activation not in ACTIVATIONS:
        raise ValueError('activation=%r is invalid; expected one of %s.'
                         % (activation, ', '.join(ACTIVATIONS)))
    net = gluon.nn.HybridSequential()
    with net.name_scope():
        for width in channels:
            net.add(gluon.nn.Conv2D(width, 3, padding=1))
            net.add(_activation(activation))
            net.add(gluon.nn.MaxPool2D(2))
        net.add(gluon.nn.Dense(num_classes, flatten=True))
    if hybridize:
        net.hybridize()
    return net


def parse_hidden(text):
    """``'256,128'`` -> ``(256, 128)``; ``''``, ``'0'`` or ``'none'`` -> ``()`` (softmax
    regression). ``ValueError`` naming the bad part otherwise."""
    text = text.strip().lower()
    if text in ('', '0', 'none'):
        return ()
    widths = []
    for part in text.split(','):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise ValueError('hidden layer width %r is invalid in %r; expected positive '
                             'integers separated by commas, e.g. 256,128.' % (part, text))
        widths.append(int(part))
    return tuple(widths)
