"""Schedule-Free's evaluation point: swapping a Trainer's weights from y to x and back."""
import numpy as np
import pytest
import mxnet as mx
from mxnet import gluon

import gluon_opt
from helpers import classification_data, small_mlp, train_steps


def params_numpy(net):
    # by full name (helpers.params_numpy shortens names to 'weight'/'bias', which collide)
    return {k: v.data(v.list_ctx()[0]).asnumpy() for k, v in net.collect_params().items()}


def _trainer(ctxs, **kwargs):
    x, y = classification_data(n=128)
    net = small_mlp(seed=2, ctx=ctxs)
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.schedulefree_adamw',
                            {'learning_rate': 0.01, 'beta1': 0.8}, **kwargs)
    train_steps(net, trainer, x, y, steps=5, ctx_list=ctxs)
    return net, trainer


@pytest.mark.parametrize('update_on_kvstore', [True, False])
def test_evaluation_swaps_every_copy_to_x_and_back(update_on_kvstore):
    ctxs = [mx.cpu(0), mx.cpu(1)]
    net, trainer = _trainer(ctxs, kvstore='device', update_on_kvstore=update_on_kvstore)
    y = params_numpy(net)
    states = gluon_opt.schedule_free._trainer_states(trainer)
    z = {p.name: states[i][0].asnumpy() for i, p in enumerate(trainer._params)}
    with gluon_opt.schedule_free.evaluation(trainer):
        for p in net.collect_params().values():
            key = p.name
            x = (y[key] - 0.2 * z[key]) / 0.8
            for data in p.list_data():  # every context's copy holds x
                np.testing.assert_allclose(data.asnumpy(), x, rtol=1e-5, atol=1e-6)
            assert not np.allclose(x, y[key])
        if not update_on_kvstore:
            # (with update_on_kvstore the update runs in a KVStore callback, whose
            # exceptions MXNet prints without raising: the documented limitation)
            with pytest.raises(RuntimeError, match='to_train'):
                train_steps(net, trainer, *classification_data(n=128), steps=1,
                            ctx_list=ctxs)
    for k, v in params_numpy(net).items():
        # x -> y is exact algebra, float32 rounding of two axpys
        np.testing.assert_allclose(v, y[k], rtol=1e-5, atol=1e-6, err_msg=k)


def _fp16_steps(net, trainer, steps):
    from mxnet import autograd
    for _ in range(steps):
        with autograd.record():
            loss = sum(((p.data() - 1) ** 2).sum() for p in net.collect_params().values())
        loss.backward()
        trainer.step(1)


def test_eval_and_train_are_idempotent_and_work_with_master_weights():
    # float16 layers run only with cuDNN: float16 parameters and an elementwise loss instead
    net = gluon.nn.HybridSequential()
    with net.name_scope():
        net.add(gluon.nn.Dense(3, in_units=4))
    net.initialize(mx.init.Normal(1.0))
    net.cast('float16')
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.schedulefree_adamw',
                            {'learning_rate': 0.01, 'multi_precision': True})
    _fp16_steps(net, trainer, 3)
    before = params_numpy(net)
    gluon_opt.schedule_free.to_eval(trainer)
    at_x = params_numpy(net)
    gluon_opt.schedule_free.to_eval(trainer)  # a second call changes nothing
    for k in at_x:
        np.testing.assert_array_equal(params_numpy(net)[k], at_x[k])
        assert not np.array_equal(at_x[k], before[k]), k
    master = gluon_opt.schedule_free._trainer_states(trainer)[0][0]
    np.testing.assert_array_equal(master.asnumpy().astype(np.float16),
                                  trainer._params[0].data().asnumpy())
    gluon_opt.schedule_free.to_train(trainer)
    for k, v in params_numpy(net).items():
        # float16 weights are the float32 master rounded: back to y within float16 rounding
        np.testing.assert_allclose(v.astype(np.float32), before[k].astype(np.float32),
                                   rtol=2e-3, atol=2e-3, err_msg=k)
    _fp16_steps(net, trainer, 1)  # training resumes


def test_evaluation_weights_is_the_hook_any_optimizer_answers():
    """``optimizer.evaluation_weights(trainer)``, what the training loop calls for every
    optimizer: x inside the block for Schedule-Free, the weights as they are for the others."""
    net, trainer = _trainer([mx.cpu()])
    y = params_numpy(net)
    with trainer._optimizer.evaluation_weights(trainer):
        assert trainer._optimizer.eval_mode
        inside = params_numpy(net)
    with gluon_opt.schedule_free.evaluation(trainer):
        for k, v in params_numpy(net).items():
            np.testing.assert_allclose(v, inside[k], rtol=1e-5, atol=1e-6)  # y -> x -> y -> x
            assert not np.allclose(v, y[k])
    plain = gluon.Trainer(net.collect_params(), 'gluon_opt.adamw')
    with plain._optimizer.evaluation_weights(plain) as held:
        assert held is plain
        for k, v in params_numpy(net).items():
            np.testing.assert_allclose(v, y[k], rtol=1e-5, atol=1e-6)


def test_x_is_a_better_answer_than_y_with_a_constant_learning_rate():
    """Schedule-Free's claim in miniature: on a noisy quadratic with a constant learning
    rate, the average x lands much nearer the minimum than the SGD-like sequence z."""
    rng = np.random.RandomState(0)
    opt = mx.optimizer.create('gluon_opt.schedulefree_adamw', learning_rate=0.05)
    w = mx.nd.zeros(20)
    state = opt.create_state(0, w)
    for _ in range(400):
        g = w.asnumpy() - 1.0 + rng.randn(20)
        opt.update(0, w, mx.nd.array(g), state)
    err_z = np.abs(state[0].asnumpy() - 1).mean()
    err_x = np.abs(opt.x_of(w, state).asnumpy() - 1).mean()
    assert err_x < 0.5 * err_z, (err_x, err_z)


def test_bad_schedule_free_hyperparameters_name_themselves():
    for key, value in (('beta1', 0.0), ('warmup_steps', -1), ('r', -1.0),
                       ('weight_lr_power', -2.0), ('epsilon', 0.0)):
        with pytest.raises(ValueError, match=key):
            mx.optimizer.create('gluon_opt.schedulefree_adamw', **{key: value})
