"""Fashion-MNIST for the comparisons and the course: loading, transforms, splits, batches.

The data ships in the repository (``data/fashion_mnist.npz``, provenance in ``data/README.md``),
so nothing here needs the network. Two ways to iterate over it:

* ``load_fashion_mnist(...)`` returns ``ArrayLoader`` objects: the whole split held as one
  float32 ``NDArray`` and cut into batches by a seeded permutation. On a small CPU this is many
  times faster than a ``DataLoader`` and it is what the CLI and the benchmarks use;
* ``get_datasets(...)`` / ``get_dataloaders(...)`` return the usual Gluon ``ArrayDataset`` and
  ``DataLoader`` objects, with the same transforms and the same validation split, for code that
  wants the Gluon API.

Both yield ``(data, label)`` pairs, which is all ``training.train`` asks of a loader.

Where the file is missing, ``gluon.data.vision.FashionMNIST`` is tried instead (it downloads);
where that fails too, ``DataFileError`` says where the file should be. A corrupt or truncated
file raises ``DataFileError`` as well, naming the file and what is wrong with it.
"""
import os
import zipfile
import zlib

import numpy as np
import mxnet as mx
from mxnet import gluon

from .. import _resources

__all__ = ['CLASS_NAMES', 'DATA_ENV', 'DataFileError', 'default_path', 'load_arrays',
           'split_indices', 'transform_images', 'ArrayLoader', 'Loaders', 'load_fashion_mnist',
           'get_datasets', 'get_dataloaders', 'MEAN', 'STD']

#: Fashion-MNIST's classes, in label order.
CLASS_NAMES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
               'Sneaker', 'Bag', 'Ankle boot')

#: Environment variable naming another location of ``fashion_mnist.npz``.
DATA_ENV = _resources.DATA_ENV

#: Mean and standard deviation of the training pixels scaled to [0, 1] (the figures usually
#: quoted for Fashion-MNIST; ``data/README.md`` checks the mean against this file).
MEAN, STD = 0.2860, 0.3530

_KEYS = {'x_train': (60000, 28, 28), 'y_train': (60000,),
         'x_test': (10000, 28, 28), 'y_test': (10000,)}


class DataFileError(RuntimeError):
    """The Fashion-MNIST file is missing (and could not be downloaded), corrupt or truncated."""


def default_path():
    """Where ``fashion_mnist.npz`` is looked for: ``$GLUON_OPT_DATA`` if set, else the
    checkout's ``data/`` folder, else the copy inside the installed package
    (``gluon_opt._resources``)."""
    return _resources.data_file()


def _read_npz(path):
    """The four arrays of ``path``, checked; ``DataFileError`` for anything unreadable."""
    def corrupt(why):
        return DataFileError('%s is corrupt or truncated (%s); restore it from the repository '
                             '(git checkout -- data/fashion_mnist.npz) or rebuild it with '
                             'data/make_fashion_mnist.py.' % (path, why))
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = sorted(set(_KEYS) - set(npz.files))
            if missing:
                raise corrupt('missing array%s %s' % ('s' if len(missing) > 1 else '',
                                                      ', '.join(missing)))
            arrays = {key: npz[key] for key in _KEYS}
    except DataFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError) as err:
        raise corrupt('%s: %s' % (type(err).__name__, err)) from None
    for key, shape in _KEYS.items():
        arr = arrays[key]
        if arr.shape != shape or arr.dtype != np.uint8:
            raise corrupt('%s has shape %s and dtype %s, expected %s uint8'
                          % (key, arr.shape, arr.dtype, shape))
    for key in ('y_train', 'y_test'):
        if arrays[key].max() >= len(CLASS_NAMES):
            raise corrupt('%s holds labels >= %d' % (key, len(CLASS_NAMES)))
    return arrays


def _download(root=None):
    """Fashion-MNIST through Gluon's downloader, as the arrays of ``_KEYS``."""
    kwargs = {} if root is None else {'root': root}
    train = gluon.data.vision.FashionMNIST(train=True, **kwargs)
    test = gluon.data.vision.FashionMNIST(train=False, **kwargs)
    return {'x_train': train._data.asnumpy().reshape(-1, 28, 28).astype(np.uint8),
            'y_train': np.asarray(train._label).astype(np.uint8),
            'x_test': test._data.asnumpy().reshape(-1, 28, 28).astype(np.uint8),
            'y_test': np.asarray(test._label).astype(np.uint8)}


def load_arrays(path=None, download=True):
    """Fashion-MNIST as uint8 numpy arrays ``{'x_train', 'y_train', 'x_test', 'y_test'}``.

    ``path`` defaults to ``default_path()``. Where it does not exist and ``download`` is true,
    Gluon's ``FashionMNIST`` downloader is tried; where that fails, or ``download`` is false,
    ``DataFileError`` names the path the file should be at.
    """
    path = default_path() if path is None else os.fspath(path)
    if os.path.exists(path):
        return _read_npz(path)
    why = 'download disabled'
    if download:
        try:
            return _download()
        except Exception as err:  # any failure of the fallback ends in the same advice
            why = 'the fallback download failed: %s: %s' % (type(err).__name__, err)
    raise DataFileError('Fashion-MNIST not found: expected %s (%s); copy data/fashion_mnist.npz '
                        'from the repository there (or reinstall gluon-opt, whose wheel carries '
                        'it), or point %s at it.' % (path, why, DATA_ENV))


def split_indices(labels, val_size, seed=0):
    """Shuffled ``(train_idx, val_idx)`` with ``val_size`` examples held out, stratified by
    class (each class gives its share, so the split is balanced although the file stores the
    training images grouped by class)."""
    labels = np.asarray(labels)
    n = len(labels)
    if not 0 <= val_size < n:
        raise ValueError('val_size=%r is invalid; expected 0 <= val_size < %d.' % (val_size, n))
    rng = np.random.RandomState(seed)
    classes, counts = np.unique(labels, return_counts=True)
    # largest-remainder apportionment so the per-class shares add up to val_size exactly
    quota = counts * (val_size / float(n))
    take = np.floor(quota).astype(int)
    for c in np.argsort(-(quota - take), kind='stable')[:val_size - take.sum()]:
        take[c] += 1
    train_idx, val_idx = [], []
    for cls, k in zip(classes, take):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        val_idx.append(idx[:k])
        train_idx.append(idx[k:])
    return rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(val_idx))


def transform_images(images, flatten=True, normalize=False):
    """uint8 images ``(N, 28, 28)`` to float32: scaled to [0, 1], optionally standardised with
    ``MEAN``/``STD``, flattened to ``(N, 784)`` for MLPs or shaped ``(N, 1, 28, 28)``."""
    x = np.asarray(images, dtype=np.float32) / 255.0
    if normalize:
        x = (x - MEAN) / STD
    return x.reshape(len(x), -1) if flatten else x.reshape(len(x), 1, 28, 28)


class ArrayLoader(object):
    """Batches of an in-memory split: ``for data, label in loader``.

    Holds the split as two ``NDArray`` on ``mx.cpu()`` and slices batches by index, in a new
    seeded permutation every pass when ``shuffle`` is true (pass ``k`` uses the permutation of
    ``RandomState(seed + k)``, so runs are reproducible and independent of global seeds).
    """

    def __init__(self, data, label, batch_size, shuffle=False, seed=0, last_batch='keep'):
        if len(data) != len(label):
            raise ValueError('data and label differ in length (%d vs %d).'
                             % (len(data), len(label)))
        if int(batch_size) < 1:
            raise ValueError('batch_size=%r is invalid; expected an integer >= 1.' % batch_size)
        if last_batch not in ('keep', 'discard'):
            raise ValueError("last_batch=%r is invalid; expected 'keep' or 'discard'."
                             % last_batch)
        self.data = data if isinstance(data, mx.nd.NDArray) else mx.nd.array(data)
        self.label = (label.astype('float32') if isinstance(label, mx.nd.NDArray)
                      else mx.nd.array(np.asarray(label, dtype=np.float32)))
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.last_batch = last_batch
        self._passes = 0

    def reseed(self, seed):
        """Restart the shuffling sequence from ``seed`` (``train`` calls it with its own seed,
        so one loader gives every run the same batches)."""
        self.seed, self._passes = seed, 0

    def head(self, n, batch_size=2048):
        """An unshuffled loader over the first ``n`` examples (sharing the arrays)."""
        n = min(int(n), self.num_examples)
        return ArrayLoader(self.data[:n], self.label[:n], batch_size)

    @property
    def num_examples(self):
        return self.data.shape[0]

    def __len__(self):
        n, b = self.num_examples, self.batch_size
        return n // b if self.last_batch == 'discard' else -(-n // b)

    def __iter__(self):
        n = self.num_examples
        if self.shuffle:
            order = mx.nd.array(np.random.RandomState(self.seed + self._passes).permutation(n),
                                dtype='int64')
            self._passes += 1
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min(n, (b + 1) * self.batch_size)
            if self.shuffle:
                idx = order[lo:hi]
                yield mx.nd.take(self.data, idx), mx.nd.take(self.label, idx)
            else:
                yield self.data[lo:hi], self.label[lo:hi]


class Loaders(object):
    """The three loaders of one experiment and the class names."""

    def __init__(self, train, val, test, class_names=CLASS_NAMES):
        self.train, self.val, self.test, self.class_names = train, val, test, class_names

    def __repr__(self):
        sizes = ', '.join('%s=%s' % (k, 0 if v is None else getattr(v, 'num_examples', len(v)))
                          for k, v in (('train', self.train), ('val', self.val),
                                       ('test', self.test)))
        return 'Loaders(%s)' % sizes


def _prepare(val_size, train_subset, test_subset, seed, path, download):
    arrays = load_arrays(path, download=download)
    train_idx, val_idx = split_indices(arrays['y_train'], val_size, seed)
    if train_subset is not None:
        if not 0 < int(train_subset) <= len(train_idx):
            raise ValueError('train_subset=%r is invalid; expected 1..%d.'
                             % (train_subset, len(train_idx)))
        train_idx = train_idx[:int(train_subset)]  # already shuffled and stratified
    test_idx = np.arange(len(arrays['y_test']))
    if test_subset is not None:
        if not 0 < int(test_subset) <= len(test_idx):
            raise ValueError('test_subset=%r is invalid; expected 1..%d.'
                             % (test_subset, len(test_idx)))
        test_idx = np.random.RandomState(seed).permutation(test_idx)[:int(test_subset)]
    x, y = arrays['x_train'], arrays['y_train']
    return ((x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]),
            (arrays['x_test'][test_idx], arrays['y_test'][test_idx]))


def load_fashion_mnist(batch_size=128, val_size=5000, flatten=True, normalize=False,
                       train_subset=None, test_subset=None, seed=0, path=None, download=True,
                       eval_batch_size=2048):
    """Fashion-MNIST as fast in-memory ``ArrayLoader`` objects.

    Parameters
    ----------
    batch_size : int, default 128 (training batches; evaluation uses ``eval_batch_size``)
    val_size : int, default 5000; examples of the training file held out for validation,
        stratified by class (0 for no validation loader)
    flatten : bool, default True; ``(N, 784)`` rows for MLPs, else ``(N, 1, 28, 28)``
    normalize : bool, default False; standardise with ``MEAN``/``STD`` after scaling to [0, 1]
    train_subset, test_subset : int or None; keep only the first so many examples
    seed : int, default 0; fixes the split and the shuffling
    path : str or None; the ``.npz`` file (see ``default_path``)

    Returns ``Loaders(train, val, test, class_names)``.

    Example::

        data = load_fashion_mnist(batch_size=128, train_subset=10000)
        for x, y in data.train:
            ...
    """
    (xtr, ytr), (xva, yva), (xte, yte) = _prepare(val_size, train_subset, test_subset, seed,
                                                  path, download)
    tf = lambda x: transform_images(x, flatten=flatten, normalize=normalize)  # noqa: E731
    train = ArrayLoader(tf(xtr), ytr, batch_size, shuffle=True, seed=seed)
    val = ArrayLoader(tf(xva), yva, eval_batch_size) if len(yva) else None
    test = ArrayLoader(tf(xte), yte, eval_batch_size)
    return Loaders(train, val, test)


def get_datasets(val_size=5000, flatten=True, normalize=False, train_subset=None,
                 test_subset=None, seed=0, path=None, download=True):
    """The same splits as ``load_fashion_mnist``, as Gluon ``ArrayDataset`` objects of
    transformed images and float32 labels: ``(train, val, test)`` (``val`` None when
    ``val_size`` is 0)."""
    splits = _prepare(val_size, train_subset, test_subset, seed, path, download)
    out = []
    for x, y in splits:
        if len(y) == 0:
            out.append(None)
            continue
        out.append(gluon.data.ArrayDataset(
            mx.nd.array(transform_images(x, flatten=flatten, normalize=normalize)),
            mx.nd.array(y.astype(np.float32))))
    return tuple(out)


def get_dataloaders(batch_size=128, num_workers=0, **kwargs):
    """``get_datasets(**kwargs)`` wrapped in Gluon ``DataLoader`` objects (training shuffled,
    last partial batch kept): ``Loaders(train, val, test, class_names)``. The shuffling follows
    MXNet's global random state, so seed it (``training.seed_everything``) for repeatable runs.
    """
    train, val, test = get_datasets(**kwargs)
    make = lambda ds, shuffle: None if ds is None else gluon.data.DataLoader(  # noqa: E731
        ds, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers)
    return Loaders(make(train, True), make(val, False), make(test, False))
