"""Train an MLP with a gluon_opt optimizer, on one process or on MXNet's parameter server.

The same script runs in every role, as MXNet's launch tooling expects: on a scheduler or a
server ``import mxnet`` below never returns (the kvstore loop runs inside it and the process
exits when the job ends); on a worker it returns and the script trains.

One process (kvstore ``local``, or ``device`` with several ``--contexts``)::

    python examples/dist_train.py --optimizer adamw --steps 50

Two workers and one server on this machine::

    gluon-opt launch -n 2 -s 1 -- python examples/dist_train.py --kvstore dist_sync

Each step consumes one *global* batch of ``--batch`` samples; worker ``r`` of ``n`` takes rows
``r*batch/n .. (r+1)*batch/n`` of it, and ``trainer.step(batch)`` rescales by the global batch,
so the servers' sum of the workers' gradients is exactly the single-process gradient.
"""
import argparse
import json
import os
import signal
import sys
import time

import numpy as np
import mxnet as mx  # on a server/scheduler this line runs the kvstore loop and exits
from mxnet import autograd, gluon, nd

import gluon_opt  # registers the optimizers

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--optimizer', default='adam', help='gluon_opt optimizer name')
    p.add_argument('--lr', type=float, default=None, help='learning rate (default: its own)')
    p.add_argument('--wd', type=float, default=None, help='weight decay (default: its own)')
    p.add_argument('--state-dtype', default=None, choices=('float32', 'bfloat16', 'int8'),
                   help='how the optimizer stores its states (every tensor, however small)')
    p.add_argument('--kvstore', default=os.environ.get('GLUON_OPT_KVSTORE', 'local'),
                   help='local, device, dist_sync, dist_async, dist_sync_device')
    p.add_argument('--update-on-kvstore', type=int, choices=(0, 1), default=None,
                   help='1: the kvstore (the servers) runs the optimizer; 0: each worker does')
    p.add_argument('--contexts', type=int, default=1, help='CPU contexts in this process')
    p.add_argument('--data', choices=('synthetic', 'fashion'), default='synthetic')
    p.add_argument('--steps', type=int, default=20)
    p.add_argument('--batch', type=int, default=64, help='global batch (all workers together)')
    p.add_argument('--hidden', type=int, default=64)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--multipliers', type=int, choices=(0, 1), default=1,
                   help='1: lr_mult=0.5 on the first layer, wd_mult=0 on biases')
    p.add_argument('--out', default=None, help='rank 0 saves the final weights here (.npz)')
    p.add_argument('--checkpoint-dir', default=None)
    p.add_argument('--checkpoint-every', type=int, default=5)
    p.add_argument('--resume', action='store_true', help='continue from --checkpoint-dir')
    p.add_argument('--crash-at-step', type=int, default=None,
                   help='fault injection: worker --fault-rank kills itself (SIGKILL) here')
    p.add_argument('--hang-at-step', type=int, default=None,
                   help='fault injection: worker --fault-rank stops making progress here')
    p.add_argument('--fault-rank', type=int, default=0)
    return p.parse_args(argv)


def load_data(kind, seed, n=4096, features=32, classes=10):
    if kind == 'fashion':
        d = np.load(os.path.join(HERE, os.pardir, 'data', 'fashion_mnist.npz'))
        x = d['x_train'].reshape(len(d['x_train']), -1).astype(np.float32) / 255.0
        return x, d['y_train'].astype(np.float32)
    rng = np.random.RandomState(seed)
    centers = rng.randn(classes, features) * 1.5
    y = rng.randint(0, classes, size=n)
    x = centers[y] + rng.randn(n, features)
    return x.astype(np.float32), y.astype(np.float32)


def build_net(features, hidden, classes, ctx, seed, multipliers):
    mx.random.seed(seed)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(hidden, activation='relu', in_units=features),
            gluon.nn.Dense(hidden, activation='relu', in_units=hidden),
            gluon.nn.Dense(classes, in_units=hidden))
    net.initialize(mx.init.Xavier(), ctx=ctx)
    if multipliers:
        # exercised on purpose: MXNet loses these on the servers unless the optimizer keeps them
        net[0].weight.lr_mult = 0.5
        for name, param in net.collect_params().items():
            if name.endswith('bias'):
                param.wd_mult = 0.0
    net.hybridize()
    return net


def save_checkpoint(directory, step, net, trainer):
    """Parameters, trainer states (optimizer included) and the step, written atomically.

    ``gluon_opt.Trainer.save_states`` writes gluon_opt's states format (arrays in an npz, the
    rest in JSON, a checksum), which ``--resume`` reads back without running any code from the
    file and checks against the trainer (optimizer, hyperparameters, shapes); MXNet's own
    ``gluon.Trainer.save_states`` would write a pickle."""
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, 'tmp')
    net.save_parameters(tmp + '.params')
    trainer.save_states(tmp + '.states')
    os.replace(tmp + '.params', os.path.join(directory, 'net.params'))
    os.replace(tmp + '.states', os.path.join(directory, 'trainer.states'))
    with open(tmp + '.json', 'w') as f:
        json.dump({'step': step}, f)
    os.replace(tmp + '.json', os.path.join(directory, 'step.json'))  # last: marks it complete


def main(argv=None):
    args = parse_args(argv)
    distributed = args.kvstore.startswith('dist')
    kv = mx.kv.create(args.kvstore)
    rank, workers = (kv.rank, kv.num_workers) if distributed else (0, 1)
    if args.batch % workers:
        sys.exit('--batch %d is not divisible by the %d workers' % (args.batch, workers))
    if args.checkpoint_dir and distributed and args.update_on_kvstore != 0:
        # the optimizer states live on the servers then, out of Trainer.save_states' reach
        sys.exit('--checkpoint-dir with a dist kvstore needs --update-on-kvstore 0')

    ctx = [mx.cpu(i) for i in range(args.contexts)]
    x, y = load_data(args.data, args.seed)
    net = build_net(x.shape[1], args.hidden, int(y.max()) + 1, ctx, args.seed, args.multipliers)
    start = 0
    ckpt_step = os.path.join(args.checkpoint_dir or '', 'step.json')
    if args.resume and args.checkpoint_dir and os.path.exists(ckpt_step):
        with open(ckpt_step) as f:
            start = json.load(f)['step']
        net.load_parameters(os.path.join(args.checkpoint_dir, 'net.params'), ctx=ctx)

    hyper = {}
    if args.lr is not None:
        hyper['learning_rate'] = args.lr
    if args.wd is not None:
        hyper['wd'] = args.wd
    if args.state_dtype is not None:
        hyper.update(state_dtype=args.state_dtype, state_min_size=0)
    # gluon_opt.Trainer, not gluon.Trainer: it closes MXNet 1.9.1's first-step race on dist
    # kvstores with update_on_kvstore=False (see gluon_opt.Trainer._init_params)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.' + args.optimizer, hyper,
                                kvstore=kv, update_on_kvstore=None if args.update_on_kvstore is None
                                else bool(args.update_on_kvstore))
    if start:
        # checked against this trainer: a checkpoint of another optimizer, other
        # hyperparameters or another --hidden stops here with one line naming the file
        trainer.load_states(os.path.join(args.checkpoint_dir, 'trainer.states'))
        print('rank %d: resumed from step %d' % (rank, start), flush=True)

    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    local = args.batch // workers
    t0, timed_from = None, None
    for step in range(start, args.steps):
        if rank == args.fault_rank and step == args.crash_at_step:
            print('rank %d: simulated crash at step %d' % (rank, step), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        if rank == args.fault_rank and step == args.hang_at_step:
            print('rank %d: simulated hang at step %d' % (rank, step), flush=True)
            time.sleep(3600)
        i = (step * args.batch) % (len(x) - args.batch + 1) + rank * local
        xb, yb = nd.array(x[i:i + local]), nd.array(y[i:i + local])
        xs = gluon.utils.split_and_load(xb, ctx, even_split=False)
        ys = gluon.utils.split_and_load(yb, ctx, even_split=False)
        with autograd.record():
            losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
        for l in losses:
            l.backward()
        trainer.step(args.batch)  # the global batch: the servers sum the workers' gradients
        loss = sum(l.sum().asscalar() for l in losses) / local
        if step == start:
            t0, timed_from = time.time(), step + 1  # the first step pays for the set-up
        print('rank %d step %d loss %.5f' % (rank, step, loss), flush=True)
        if (args.checkpoint_dir and rank == 0 and (step + 1) % args.checkpoint_every == 0
                and step + 1 < args.steps):
            save_checkpoint(args.checkpoint_dir, step + 1, net, trainer)
    nd.waitall()
    if t0 is not None and args.steps > timed_from:
        rate = (args.steps - timed_from) * args.batch / (time.time() - t0)
        print('rank %d throughput %.1f samples/s (global, %d workers)' % (rank, rate, workers),
              flush=True)
    if args.out and rank == 0:
        # structural names ('0.weight', ...), the ones save_parameters uses: independent of
        # how many blocks this process created before
        params = net._collect_params_with_prefix()  # pylint: disable=protected-access
        np.savez(args.out, **{k: v.data(ctx[0]).asnumpy() for k, v in params.items()})


if __name__ == '__main__':
    main()
