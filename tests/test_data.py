"""The Fashion-MNIST loaders: shapes, transforms, the stratified split, batching, and the errors
for a missing, corrupt or truncated file."""
import os
import shutil

import numpy as np
import mxnet as mx
import pytest

from gluon_opt.experiments import data


@pytest.fixture(scope='module')
def arrays():
    return data.load_arrays(download=False)


def test_shipped_file_has_the_documented_shapes(arrays):
    assert arrays['x_train'].shape == (60000, 28, 28)
    assert arrays['x_test'].shape == (10000, 28, 28)
    assert arrays['x_train'].dtype == np.uint8
    # 6000 training and 1000 test images per class (data/README.md)
    assert np.bincount(arrays['y_train']).tolist() == [6000] * 10
    assert np.bincount(arrays['y_test']).tolist() == [1000] * 10
    assert len(data.CLASS_NAMES) == 10
    assert abs(arrays['x_train'].mean() / 255 - data.MEAN) < 5e-4


def test_split_is_stratified_disjoint_and_seeded(arrays):
    y = arrays['y_train']
    tr, va = data.split_indices(y, 5000, seed=3)
    assert len(tr) == 55000 and len(va) == 5000
    assert not set(tr.tolist()) & set(va.tolist())
    counts = np.bincount(y[va], minlength=10)
    assert counts.max() - counts.min() <= 1  # the file is grouped by class: must be balanced
    tr2, va2 = data.split_indices(y, 5000, seed=3)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert not np.array_equal(va, data.split_indices(y, 5000, seed=4)[1])
    # the training order is shuffled, not grouped by class
    assert len(set(y[tr[:100]].tolist())) > 5
    # an uneven size is apportioned exactly
    assert len(data.split_indices(y, 1234, seed=0)[1]) == 1234
    with pytest.raises(ValueError, match='val_size'):
        data.split_indices(y, 60000)


def test_transforms():
    img = np.array([[[0, 255], [51, 102]]], dtype=np.uint8).repeat(14, 1).repeat(14, 2)
    flat = data.transform_images(img)
    assert flat.shape == (1, 784) and flat.dtype == np.float32
    assert flat.min() == 0.0 and flat.max() == 1.0
    assert data.transform_images(img, flatten=False).shape == (1, 1, 28, 28)
    norm = data.transform_images(img, normalize=True)
    assert np.allclose(norm, (flat - data.MEAN) / data.STD)


def test_load_fashion_mnist_subsets_and_batches():
    L = data.load_fashion_mnist(batch_size=64, train_subset=1000, test_subset=300, seed=0)
    assert L.train.num_examples == 1000 and L.test.num_examples == 300
    assert L.val.num_examples == 5000
    assert L.class_names == data.CLASS_NAMES
    assert len(L.train) == 16  # 15 full batches and one of 40
    xs, ys = zip(*[(x.shape, y.shape) for x, y in L.train])
    assert xs[0] == (64, 784) and xs[-1] == (40, 784) and ys[0] == (64,)
    labels = np.concatenate([y.asnumpy() for _, y in L.test])
    assert len(set(labels.tolist())) == 10  # the test subset is drawn across classes


def test_array_loader_reshuffles_each_pass_and_reseed_repeats():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    loader = data.ArrayLoader(x, np.arange(10), batch_size=4, shuffle=True, seed=1)
    first = np.concatenate([d.asnumpy().ravel() for d, _ in loader])
    second = np.concatenate([d.asnumpy().ravel() for d, _ in loader])
    assert sorted(first.tolist()) == list(range(10))  # every example exactly once
    assert not np.array_equal(first, second)
    loader.reseed(1)
    assert np.array_equal(first, np.concatenate([d.asnumpy().ravel() for d, _ in loader]))
    for d, l in loader:  # labels travel with their examples
        assert np.array_equal(d.asnumpy().ravel(), l.asnumpy())
    head = loader.head(3)
    assert [d.asnumpy().ravel().tolist() for d, _ in head] == [[0, 1, 2]]
    with pytest.raises(ValueError, match='batch_size'):
        data.ArrayLoader(x, np.arange(10), batch_size=0)
    with pytest.raises(ValueError, match='differ in length'):
        data.ArrayLoader(x, np.arange(9), batch_size=2)


def test_gluon_dataset_and_dataloader_api():
    train, val, test = data.get_datasets(val_size=100, train_subset=200, test_subset=50)
    assert len(train) == 200 and len(val) == 100 and len(test) == 50
    x, y = train[0]
    assert x.shape == (784,) and 0 <= float(x.min().asscalar()) <= float(x.max().asscalar()) <= 1
    L = data.get_dataloaders(batch_size=32, val_size=0, train_subset=100, test_subset=40,
                             flatten=False)
    assert L.val is None
    xb, yb = next(iter(L.train))
    assert xb.shape == (32, 1, 28, 28) and yb.shape == (32,)


# ---------------------------------------------------------------------- missing / corrupt

def test_missing_file_without_download_names_the_path(tmp_path):
    missing = tmp_path / 'nowhere' / 'fashion_mnist.npz'
    with pytest.raises(data.DataFileError) as err:
        data.load_arrays(missing, download=False)
    assert str(missing) in str(err.value) and data.DATA_ENV in str(err.value)


def test_missing_file_falls_back_to_download_then_explains(tmp_path, monkeypatch):
    missing = tmp_path / 'fashion_mnist.npz'
    calls = []

    def offline(*a, **k):
        calls.append(1)
        raise OSError('network is unreachable')
    monkeypatch.setattr(data, '_download', offline)
    with pytest.raises(data.DataFileError) as err:
        data.load_arrays(missing)
    assert calls, 'the download fallback was not tried'
    msg = str(err.value)
    assert str(missing) in msg and 'network is unreachable' in msg and '\n' not in msg


def test_missing_file_uses_the_download_when_it_works(tmp_path, monkeypatch, arrays):
    small = {k: v[:20] for k, v in arrays.items()}
    monkeypatch.setattr(data, '_download', lambda *a, **k: small)
    got = data.load_arrays(tmp_path / 'absent.npz')
    assert got['x_train'].shape == (20, 28, 28)


def test_env_variable_points_at_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / 'elsewhere.npz'))
    assert data.default_path() == str(tmp_path / 'elsewhere.npz')
    with pytest.raises(data.DataFileError, match='elsewhere.npz'):
        data.load_arrays(download=False)


@pytest.mark.parametrize('keep', [1000, 5000000])
def test_truncated_file_gives_a_clear_error(tmp_path, keep):
    src = data.default_path()
    bad = tmp_path / 'fashion_mnist.npz'
    with open(src, 'rb') as f, open(bad, 'wb') as g:
        g.write(f.read(keep))
    with pytest.raises(data.DataFileError) as err:
        data.load_arrays(bad, download=False)
    msg = str(err.value)
    assert 'corrupt or truncated' in msg and str(bad) in msg and '\n' not in msg


def test_garbage_and_wrong_content_give_clear_errors(tmp_path):
    garbage = tmp_path / 'garbage.npz'
    garbage.write_bytes(b'this is not a zip file at all' * 10)
    with pytest.raises(data.DataFileError, match='corrupt or truncated'):
        data.load_arrays(garbage, download=False)
    wrong_keys = tmp_path / 'keys.npz'
    np.savez(wrong_keys, x_train=np.zeros((60000, 28, 28), np.uint8))
    with pytest.raises(data.DataFileError, match='missing arrays.*x_test'):
        data.load_arrays(wrong_keys, download=False)
    wrong_dtype = tmp_path / 'dtype.npz'
    np.savez(wrong_dtype, x_train=np.zeros((60000, 28, 28), np.float32),
             y_train=np.zeros(60000, np.uint8), x_test=np.zeros((10000, 28, 28), np.uint8),
             y_test=np.zeros(10000, np.uint8))
    with pytest.raises(data.DataFileError, match='x_train has shape'):
        data.load_arrays(wrong_dtype, download=False)


def test_loader_propagates_the_clear_error(tmp_path):
    bad = tmp_path / 'f.npz'
    shutil.copyfile(data.default_path(), bad)
    with open(bad, 'r+b') as f:
        f.truncate(os.path.getsize(bad) // 2)
    with pytest.raises(data.DataFileError, match='corrupt or truncated'):
        data.load_fashion_mnist(path=bad, download=False)
