"""gluon_opt.Trainer under bad input: NaN and inf gradients (``nonfinite``), and states files
that are malicious, corrupt or made for another trainer (``save_states``/``load_states``)."""
import pickle

import numpy as np
import pytest
import mxnet as mx
from mxnet import nd, gluon, autograd

import gluon_opt
from gluon_opt.trainer import NonFiniteGradient, StatesFileError

from helpers import classification_data, small_mlp, train_steps
from optimizer_table import one_per_optimizer

X, Y = classification_data()
LOSS = gluon.loss.SoftmaxCrossEntropyLoss()
TWO = [mx.cpu(0), mx.cpu(1)]
#: trainer settings whose gradients reach the check by different roads: one context; two,
#: reduced by the kvstore then updated per context; two, updated by the kvstore (checked
#: before the push); two without a kvstore (each context its own gradients); clipping (its
#: sum of squares is the check); accumulation (the summed gradients are checked). The
#: kvstore applies MXNet's own Adam: the check guards any optimizer, not only gluon_opt's
SETUPS = {
    'one': ([mx.cpu()], {}),
    'two-reduced': (TWO, dict(update_on_kvstore=False)),
    'two-on-kvstore': (TWO, dict(update_on_kvstore=True), 'adam'),
    'two-no-kvstore': (TWO, dict(kvstore=None)),
    'clip': ([mx.cpu()], dict(clip_global_norm=1.0)),
    'accumulate': ([mx.cpu()], dict(accumulate=2)),
    'agc': ([mx.cpu()], dict(clip_adaptive=0.01)),  # checked before the unit-wise clipping
}


def setup(name):
    ctxs, kwargs = SETUPS[name][:2]
    return ctxs, kwargs, (SETUPS[name][2:] or ('gluon_opt.adam',))[0]


def weights(net):
    return [p.data(p.list_ctx()[0]).asnumpy().copy() for p in net.collect_params().values()]


def updater_states(trainer):
    upd = (trainer._kvstore._updater if trainer._kvstore is not None
           and trainer._update_on_kvstore else trainer._updaters[0])
    out = []
    for k in sorted(upd.states):
        s = upd.states[k]
        out.extend(a.asnumpy().copy() for a in (s if isinstance(s, tuple) else (s,))
                   if isinstance(a, nd.NDArray))
    return out


def backward(net, ctxs, batch=0, poison=None, where=1, bs=32):
    """Forward and backward on batch ``batch``; ``poison`` goes into the first element of
    parameter ``where``'s gradient on the last context."""
    xb = nd.array(X[batch * bs:(batch + 1) * bs])
    yb = nd.array(Y[batch * bs:(batch + 1) * bs])
    xs = gluon.utils.split_and_load(xb, ctxs)
    ys = gluon.utils.split_and_load(yb, ctxs)
    with autograd.record():
        losses = [LOSS(net(a), b) for a, b in zip(xs, ys)]
    for l in losses:
        l.backward()
    if poison is not None:
        grad = list(net.collect_params().values())[where].list_grad()[-1]
        grad.reshape((-1,))[0] = poison


def full_step(net, trainer, ctxs, batch=0, poison=None, bs=32):
    """One update (``accumulate`` backward passes); the poison is in the last one."""
    calls = trainer._accumulate
    for i in range(calls):
        backward(net, ctxs, batch, poison if i == calls - 1 else None, bs=bs // calls)
        trainer.step(bs // calls)


# ---------------------------------------------------------------------------------------------
# Non-finite gradients

@pytest.mark.parametrize('value', [np.nan, np.inf], ids=['nan', 'inf'])
@pytest.mark.parametrize('name', sorted(SETUPS))
def test_raise_names_the_parameter_and_the_step_and_updates_nothing(name, value):
    ctxs, kwargs, optimizer = setup(name)
    net = small_mlp(seed=1, ctx=ctxs)
    trainer = gluon_opt.Trainer(net.collect_params(), optimizer, {'learning_rate': 0.01},
                                nonfinite='raise', **kwargs)
    full_step(net, trainer, ctxs)
    before, states = weights(net), updater_states(trainer)
    counts = dict(trainer._optimizer._index_update_count)
    with pytest.raises(NonFiniteGradient) as err:
        full_step(net, trainer, ctxs, batch=1, poison=value)
    e = err.value
    param = list(net.collect_params().keys())[1]
    steps = 2 * trainer._accumulate
    assert e.params == [param] and e.step == steps
    assert 'at step %d: %s (1 %s)' % (steps, param, 'NaN' if np.isnan(value) else 'inf') \
        in str(e)
    assert '\n' not in str(e) and isinstance(e, FloatingPointError)
    for a, b in zip(weights(net), before):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(updater_states(trainer), states):
        np.testing.assert_array_equal(a, b)
    assert trainer._optimizer._index_update_count == counts


@pytest.mark.parametrize('value', [np.nan, np.inf], ids=['nan', 'inf'])
@pytest.mark.parametrize('name', sorted(SETUPS))
def test_skip_is_as_if_the_step_never_happened(name, value):
    ctxs, kwargs, optimizer = setup(name)
    nets = {}
    for key in ('skipped', 'clean'):
        net = small_mlp(seed=2, ctx=ctxs)
        trainer = gluon_opt.Trainer(net.collect_params(), optimizer, {'learning_rate': 0.01},
                                    nonfinite='skip', **kwargs)
        full_step(net, trainer, ctxs, batch=0)
        if key == 'skipped':
            before, states = weights(net), updater_states(trainer)
            full_step(net, trainer, ctxs, batch=1, poison=value)
            for a, b in zip(weights(net), before):
                np.testing.assert_array_equal(a, b)
            for a, b in zip(updater_states(trainer), states):
                np.testing.assert_array_equal(a, b)
            assert trainer.skipped_steps == trainer.consecutive_skips == 1
        full_step(net, trainer, ctxs, batch=2)
        assert trainer.consecutive_skips == 0
        nets[key] = (net, trainer)
    for a, b in zip(weights(nets['skipped'][0]), weights(nets['clean'][0])):
        np.testing.assert_array_equal(a, b)
    assert (nets['skipped'][1]._optimizer._index_update_count ==
            nets['clean'][1]._optimizer._index_update_count)


def test_ignore_is_the_default_and_applies_the_update_as_gluon_does():
    # the default follows the measured cost of the check (docs/robustness.md)
    net = small_mlp(seed=3)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.sgd', {'learning_rate': 0.1})
    assert trainer._nonfinite == 'ignore'
    full_step(net, trainer, [mx.cpu()], poison=np.nan)
    assert np.isnan(weights(net)[1]).any()


def test_too_many_skips_in_a_row_raise():
    net = small_mlp(seed=4)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adam', {},
                                nonfinite='skip', max_consecutive_skips=2)
    for _ in range(2):
        full_step(net, trainer, [mx.cpu()], poison=np.inf)
    full_step(net, trainer, [mx.cpu()])  # a finite step resets the count in a row
    assert (trainer.skipped_steps, trainer.consecutive_skips) == (2, 0)
    for _ in range(2):
        full_step(net, trainer, [mx.cpu()], poison=np.nan)
    with pytest.raises(NonFiniteGradient, match=r'at step 6: .*max_consecutive_skips=2') as err:
        full_step(net, trainer, [mx.cpu()], poison=np.nan)
    assert err.value.skipped == 2 and trainer.skipped_steps == 4
    assert np.isfinite(np.concatenate([w.ravel() for w in weights(net)])).all()


def test_a_finite_gradient_whose_square_overflows_is_not_taken_for_nan():
    # |g| = 1e20: finite in float32, its square is not; with clipping the norm is recomputed
    # in float64, so the step is exactly max_norm long (a float32 norm of inf clipped to 0)
    for clip in (None, 1e-3):
        net = small_mlp(seed=5)
        trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.sgd',
                                    {'learning_rate': 1.0}, clip_global_norm=clip,
                                    nonfinite='raise')
        before = weights(net)
        backward(net, [mx.cpu()], poison=1e20)
        trainer.step(1)
        after = weights(net)
        assert np.isfinite(np.concatenate([w.ravel() for w in after])).all()
        if clip:
            moved = np.sqrt(sum(np.sum((a.astype(np.float64) - b) ** 2)
                                for a, b in zip(after, before)))
            assert moved == pytest.approx(clip, rel=1e-3)


def _float16_problem(seed=0):
    """Two float16 parameters and a function that computes their gradients (MXNet has no
    float16 fully connected layer on CPU, so no MLP here)."""
    rng = np.random.RandomState(seed)
    params = []
    for name, shape in (('fp16_w', (4, 5)), ('fp16_b', (5,))):
        p = gluon.Parameter(name, shape=shape, dtype='float16')
        p.initialize(mx.init.Constant(0.0))
        p.set_data(nd.array(rng.randn(*shape), dtype='float16'))
        params.append(p)
    x = nd.array(rng.randn(4, 5), dtype='float16')

    def backward(t):
        with autograd.record():
            loss = nd.sum(nd.square(params[0].data() * x * (1 + 0.1 * t) + params[1].data()))
        loss.backward()
    return params, backward


@pytest.mark.parametrize('value', [np.nan, np.inf], ids=['nan', 'inf'])
def test_float16_multi_precision(value):
    params, backward16 = _float16_problem()
    trainer = gluon_opt.Trainer(params, 'gluon_opt.adam',
                                {'learning_rate': 0.01, 'multi_precision': True},
                                nonfinite='raise')
    backward16(0)
    trainer.step(1)
    before = [p.data().asnumpy().copy() for p in params]
    masters = [s[0].asnumpy().copy() for s in trainer._updaters[0].states.values()]
    backward16(1)
    params[1].grad()[0] = value
    with pytest.raises(NonFiniteGradient, match='fp16_b'):
        trainer.step(1)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.data().asnumpy(), b)
    for s, m in zip(trainer._updaters[0].states.values(), masters):
        np.testing.assert_array_equal(s[0].asnumpy(), m)


def _closure(net, poison=None):
    def closure():
        with autograd.record():
            loss = LOSS(net(nd.array(X[:64])), nd.array(Y[:64]))
        loss.backward()
        if poison is not None:
            net[1].weight.grad()[0, 0] = poison
        return loss
    return closure


@pytest.mark.parametrize('name,hyper', [('sam', {'learning_rate': 0.1}),
                                        ('lbfgs', {'history_size': 5, 'max_iter': 4})])
def test_closure_optimizers_check_the_first_evaluation(name, hyper):
    for mode in ('raise', 'skip'):
        net = small_mlp(seed=7)
        trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.' + name, hyper,
                                    nonfinite=mode)
        trainer.step(64, _closure(net))
        before, opt_state = weights(net), pickle.dumps(trainer._optimizer)
        if mode == 'raise':
            with pytest.raises(NonFiniteGradient, match=net[1].weight.name):
                trainer.step(64, _closure(net, np.nan))
        else:
            trainer.step(64, _closure(net, np.inf))
            assert trainer.skipped_steps == 1 and trainer.last_evals == 1
        for a, b in zip(weights(net), before):
            np.testing.assert_array_equal(a, b)
        assert pickle.dumps(trainer._optimizer) == opt_state  # no state changed


def test_manual_allreduce_and_update_are_checked_too():
    net = small_mlp(seed=8, ctx=TWO)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.sgd', {},
                                update_on_kvstore=False, nonfinite='raise')
    backward(net, TWO, poison=np.nan)
    trainer.allreduce_grads()
    before = weights(net)
    with pytest.raises(NonFiniteGradient):
        trainer.update(32)
    for a, b in zip(weights(net), before):
        np.testing.assert_array_equal(a, b)


def test_bad_nonfinite_arguments():
    params = small_mlp().collect_params()
    for kwargs, match in ((dict(nonfinite='warn'), 'nonfinite'),
                          (dict(nonfinite=None), 'nonfinite'),
                          (dict(max_consecutive_skips=-1), 'max_consecutive_skips'),
                          (dict(max_consecutive_skips=2.0), 'max_consecutive_skips'),
                          (dict(nonfinite='skip', kvstore='dist_sync', update_on_kvstore=True),
                           'update_on_kvstore=False'),
                          (dict(nonfinite='skip', kvstore='dist_async'), 'update_on_kvstore')):
        with pytest.raises(ValueError, match=match):
            gluon_opt.Trainer(params, 'gluon_opt.sgd', {}, **kwargs)


# ---------------------------------------------------------------------------------------------
# States files

def _trained(name, kwargs, tmp_path, steps=3, ctxs=None, **trainer_kwargs):
    """A net and trainer after ``steps`` steps, their files in tmp_path, and the weights after
    ``steps`` more (the uninterrupted run)."""
    ctxs = ctxs or [mx.cpu()]
    net = small_mlp(seed=7, ctx=ctxs)
    trainer = gluon_opt.Trainer(net.collect_params(), name, dict(kwargs), **trainer_kwargs)
    train_steps(net, trainer, X, Y, steps=steps, ctx_list=ctxs)
    net.save_parameters(str(tmp_path / 'p.params'))
    trainer.save_states(str(tmp_path / 't.states'))
    train_steps(net, trainer, X, Y, steps=steps, start=steps, ctx_list=ctxs)
    return net, trainer, weights(net)


def _resumed(name, kwargs, tmp_path, steps=3, ctxs=None, load_kwargs=None, **trainer_kwargs):
    ctxs = ctxs or [mx.cpu()]
    net = small_mlp(seed=99, ctx=ctxs)
    net.load_parameters(str(tmp_path / 'p.params'), ctx=ctxs)
    trainer = gluon_opt.Trainer(net.collect_params(), name, dict(kwargs), **trainer_kwargs)
    trainer.load_states(str(tmp_path / 't.states'), **(load_kwargs or {}))
    train_steps(net, trainer, X, Y, steps=steps, start=steps, ctx_list=ctxs)
    return weights(net)


FIRST_ORDER = [pytest.param(e, id=e.name) for e in one_per_optimizer() if not e.closure]


@pytest.mark.parametrize('e', FIRST_ORDER)
def test_round_trip_resumes_exactly(e, tmp_path):
    _, _, uninterrupted = _trained('gluon_opt.' + e.name, e.kwargs, tmp_path)
    with np.load(str(tmp_path / 't.states'), allow_pickle=False) as z:  # a plain npz
        assert '__states__' in z.files
    for a, b in zip(_resumed('gluon_opt.' + e.name, e.kwargs, tmp_path), uninterrupted):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('setup', ['two-contexts', 'two-on-kvstore', 'float16'])
def test_round_trip_with_contexts_kvstore_and_master_weights(setup, tmp_path):
    name, hyper, extra, ctxs = 'gluon_opt.adam', {'learning_rate': 0.01}, {}, None
    if setup == 'two-contexts':
        ctxs, extra = TWO, dict(update_on_kvstore=False)
    elif setup == 'two-on-kvstore':
        # MXNet's own Adam: the states format holds MXNet's optimizers too
        name, ctxs, extra = 'adam', TWO, dict(update_on_kvstore=True)
    else:
        hyper = dict(hyper, multi_precision=True)
    if setup == 'float16':
        runs = []
        for resume in (False, True):
            params, backward16 = _float16_problem()
            trainer = gluon_opt.Trainer(params, 'gluon_opt.adam', hyper)
            for t in range(4):
                if resume and t == 2:
                    for p, v in zip(params, saved_weights):
                        p.set_data(nd.array(v, dtype='float16'))
                    trainer = gluon_opt.Trainer(params, 'gluon_opt.adam', hyper)
                    trainer.load_states(str(tmp_path / 't.states'))
                    for s, m in zip(trainer._updaters[0].states.values(), masters):
                        assert s[0].dtype == np.float32  # the float32 master weights
                        np.testing.assert_array_equal(s[0].asnumpy(), m)
                backward16(t)
                trainer.step(1)
                if not resume and t == 1:
                    trainer.save_states(str(tmp_path / 't.states'))
                    saved_weights = [p.data().asnumpy() for p in params]
                    masters = [s[0].asnumpy() for s in trainer._updaters[0].states.values()]
            runs.append([p.data().asnumpy() for p in params])
        pairs = zip(*runs)
    else:
        _, _, uninterrupted = _trained(name, hyper, tmp_path, ctxs=ctxs, **extra)
        saved = small_mlp(seed=99, ctx=ctxs)
        saved.load_parameters(str(tmp_path / 'p.params'), ctx=ctxs)
        assert not np.array_equal(weights(saved)[0], uninterrupted[0])  # it did train
        pairs = zip(_resumed(name, hyper, tmp_path, ctxs=ctxs, **extra), uninterrupted)
    for a, b in pairs:
        np.testing.assert_array_equal(a, b)


def adamw_selector(name):
    return name.endswith('bias')


@pytest.mark.parametrize('case', ['factor-scheduler', 'muon-selector'])
def test_round_trip_with_a_scheduler_and_a_selector_function(case, tmp_path):
    # the scheduler's progress (FactorScheduler changes its base_lr as it goes) is restored
    # into the new trainer's scheduler; a function is saved by name and must be the same
    if case == 'factor-scheduler':
        name = 'gluon_opt.adam'

        def hyper():
            return {'learning_rate': 0.01,
                    'lr_scheduler': mx.lr_scheduler.FactorScheduler(step=2, factor=0.5)}
    else:
        name = 'gluon_opt.muon'

        def hyper():
            return {'learning_rate': 0.02, 'adamw_params': adamw_selector}
    _, trainer, uninterrupted = _trained(name, hyper(), tmp_path)
    for a, b in zip(_resumed(name, hyper(), tmp_path), uninterrupted):
        np.testing.assert_array_equal(a, b)
    if case == 'muon-selector':
        other = gluon_opt.Trainer(small_mlp().collect_params(), name,
                                  {'learning_rate': 0.02, 'adamw_params': lambda n: True})
        with pytest.raises(StatesFileError, match='adamw_selector'):
            other.load_states(str(tmp_path / 't.states'))


def test_a_pickled_states_file_is_not_executed(tmp_path):
    marker = tmp_path / 'pwned'

    class Payload(object):
        def __reduce__(self):
            return (open, (str(marker), 'w'))
    path = tmp_path / 'evil.states'
    path.write_bytes(pickle.dumps(({0: Payload()}, None)))
    net = small_mlp()
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.sgd', {})
    with pytest.raises(StatesFileError, match='allow_pickle=True') as err:
        trainer.load_states(str(path))
    assert not marker.exists()
    assert str(path) in str(err.value) and 'pickle' in str(err.value)


def test_a_trusted_gluon_trainer_pickle_loads_with_allow_pickle(tmp_path):
    net = small_mlp(seed=7)
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adam', {'learning_rate': 0.01})
    train_steps(net, trainer, X, Y, steps=3)
    net.save_parameters(str(tmp_path / 'p.params'))
    trainer.save_states(str(tmp_path / 't.states'))  # MXNet's pickle
    train_steps(net, trainer, X, Y, steps=3, start=3)
    fresh = gluon_opt.Trainer(small_mlp().collect_params(), 'gluon_opt.adam',
                              {'learning_rate': 0.01})
    with pytest.raises(StatesFileError, match='allow_pickle'):
        fresh.load_states(str(tmp_path / 't.states'))
    sgd = gluon_opt.Trainer(small_mlp().collect_params(), 'gluon_opt.sgd',
                            {'learning_rate': 0.5})
    with pytest.raises(StatesFileError, match='gluon_opt.adam'):  # checked all the same
        sgd.load_states(str(tmp_path / 't.states'), allow_pickle=True)
    resumed = _resumed('gluon_opt.adam', {'learning_rate': 0.01}, tmp_path,
                       load_kwargs=dict(allow_pickle=True))
    for a, b in zip(resumed, weights(net)):
        np.testing.assert_array_equal(a, b)


def _one_line_naming(err, path, *words):
    text = str(err.value)
    assert '\n' not in text and str(path) in text, text
    for w in words:
        assert w in text, (w, text)


def _edit_json(path, old, new):
    """Edit the JSON member and write a valid zip again (so only the checksum can tell)."""
    with np.load(str(path), allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    text = members['__states__'].tobytes()
    assert old in text
    members['__states__'] = np.frombuffer(text.replace(old, new), dtype=np.uint8)
    with open(str(path), 'wb') as f:
        np.savez(f, **members)


def _flip(path, n=16):
    data = bytearray(path.read_bytes())
    rng = np.random.RandomState(0)
    for i in rng.choice(len(data), n, replace=False):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


#: (what is wrong, how to make it wrong, words the message must hold); the file is an Adam
#: trainer's (lr 0.01) of a width-16 MLP
BROKEN = {
    'another optimizer': (lambda p: None, dict(name='sgd', hyper={'learning_rate': 0.5}),
                          ['gluon_opt.adam', 'gluon_opt.sgd']),
    'another hyperparameter': (lambda p: None, dict(hyper={'learning_rate': 0.01,
                                                            'beta1': 0.8}),
                               ['beta1', '0.8', '0.9']),
    'another width': (lambda p: None, dict(hidden=7), ['shape (7,) in this trainer, (16,)']),
    'another dtype': (lambda p: None, dict(dtype='float16'), ['dtype float16', 'float32']),
    'flipped bytes': (_flip, {}, ['corrupt']),
    'truncated': (lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]), {},
                  ['truncated or corrupt']),
    'empty': (lambda p: p.write_bytes(b''), {}, [': empty']),
    'edited JSON': (lambda p: _edit_json(p, b'"lr": 0.01', b'"lr": 0.02'), {}, ['SHA-256']),
    'text': (lambda p: p.write_text('step 3\nloss 0.5\n'), {}, ['not in gluon_opt']),
    'missing': (lambda p: p.unlink(), {}, ['cannot be read']),
}


@pytest.mark.parametrize('case', sorted(BROKEN))
def test_a_bad_states_file_is_one_line_naming_the_file(case, tmp_path):
    spoil, trainer_args, words = BROKEN[case]
    net = small_mlp(seed=7)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adam', {'learning_rate': 0.01})
    train_steps(net, trainer, X, Y, steps=2)
    path = tmp_path / 't.states'
    trainer.save_states(str(path))
    spoil(path)
    other = small_mlp(seed=8, hidden=trainer_args.get('hidden', 16))
    if 'dtype' in trainer_args:
        other.cast(trainer_args['dtype'])
    target = gluon_opt.Trainer(other.collect_params(), 'gluon_opt.' + trainer_args.get(
        'name', 'adam'), trainer_args.get('hyper', {'learning_rate': 0.01}))
    with pytest.raises(StatesFileError) as err:
        target.load_states(str(path))
    _one_line_naming(err, path, *words)
    assert isinstance(err.value, ValueError)


def test_check_hyperparameters_false_takes_the_files(tmp_path):
    net = small_mlp(seed=7)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.sgd', {'learning_rate': 0.1})
    train_steps(net, trainer, X, Y, steps=2)
    trainer.set_learning_rate(0.01)  # a manual decay
    trainer.save_states(str(tmp_path / 't.states'))
    fresh = gluon_opt.Trainer(small_mlp().collect_params(), 'gluon_opt.sgd',
                              {'learning_rate': 0.1})
    with pytest.raises(StatesFileError, match='learning_rate'):
        fresh.load_states(str(tmp_path / 't.states'))
    fresh.load_states(str(tmp_path / 't.states'), check_hyperparameters=False)
    assert fresh.learning_rate == 0.01 and fresh._optimizer.num_update == 2


def test_a_failed_load_leaves_the_trainer_as_it_was(tmp_path):
    hyper = dict(optimizer='gluon_opt.adam', learning_rate=0.01)
    net = small_mlp(seed=7)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.lookahead', hyper)
    train_steps(net, trainer, X, Y, steps=3)
    trainer.save_states(str(tmp_path / 't.states'))
    # the wrapped Adam's beta1 differs: found after Lookahead's own counts were read
    other = gluon_opt.Trainer(small_mlp().collect_params(), 'gluon_opt.lookahead',
                              dict(hyper, beta1=0.5))
    with pytest.raises(StatesFileError, match='beta1'):
        other.load_states(str(tmp_path / 't.states'))
    assert other._optimizer.num_update == 0 and other._optimizer.inner.beta1 == 0.5
    assert not other._updaters[0].states


def test_the_step_counters_are_saved(tmp_path):
    net = small_mlp(seed=7)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adam', {}, nonfinite='skip')
    full_step(net, trainer, [mx.cpu()])
    full_step(net, trainer, [mx.cpu()], poison=np.nan)
    trainer.save_states(str(tmp_path / 't.states'))
    fresh = gluon_opt.Trainer(small_mlp().collect_params(), 'gluon_opt.adam', {},
                              nonfinite='skip')
    fresh.load_states(str(tmp_path / 't.states'))
    assert (fresh.num_steps, fresh.skipped_steps, fresh._optimizer.num_update) == (2, 1, 1)


def test_bench_times_the_check_against_ignore(monkeypatch):
    from gluon_opt.experiments import bench
    monkeypatch.setattr(bench, 'resnet50_shapes', bench.mlp_shapes)  # quick stand-in
    rows = bench._run_nonfinite(['sgd'], budget=0.01)
    assert [(r['set'], r['impl']) for r in rows] == [
        (s, m) for s in ('nonfinite-resnet50', 'nonfinite-e2e') for m in bench.NONFINITE_MODES]
    assert all(r['ms'] > 0 for r in rows)
    assert [r['vs_ignore'] for r in rows if r['impl'] == 'ignore'] == [1.0, 1.0]
