"""Samples per second of examples/dist_train.py with 1 and 2 workers (dist_sync, 1 server).

    PYTHONPATH=. python benchmarks/dist_scaling.py --optimizer adam --steps 60 --batch 512

Each job runs through ``gluon_opt.experiments.distributed`` on 127.0.0.1; the rate is the
global samples per second rank 0 reports, timed after the first step (which pays for the
set-up). The global batch is the same for every worker count, so more workers means smaller
local batches.
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = re.compile(r'rank 0 throughput ([0-9.]+) samples/s')


def measure(workers, args):
    cmd = [sys.executable, '-m', 'gluon_opt.experiments.distributed', '-n', str(workers), '-s', '1',
           '--timeout', '580', '--', sys.executable, os.path.join(ROOT, 'examples',
                                                                  'dist_train.py'),
           '--kvstore', 'dist_sync', '--optimizer', args.optimizer, '--steps', str(args.steps),
           '--batch', str(args.batch), '--hidden', str(args.hidden), '--data', args.data]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    out = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=600, check=False).stdout.decode()
    rates = [float(m.group(1)) for m in RATE.finditer(out)]
    if not rates:
        raise RuntimeError('no throughput in the output of %d workers:\n%s' % (workers,
                                                                              out[-3000:]))
    return rates[-1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--optimizer', default='adam')
    p.add_argument('--steps', type=int, default=60)
    p.add_argument('--batch', type=int, default=512)
    p.add_argument('--hidden', type=int, default=256)
    p.add_argument('--data', default='fashion', choices=('synthetic', 'fashion'))
    p.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    args = p.parse_args()
    print('cores: %d; optimizer %s, global batch %d, MLP hidden %d, %s data'
          % (os.cpu_count(), args.optimizer, args.batch, args.hidden, args.data))
    base = None
    for n in args.workers:
        rate = measure(n, args)
        base = base or rate
        print('%d worker(s): %8.1f samples/s  (x%.2f)' % (n, rate, rate / base), flush=True)


if __name__ == '__main__':
    main()
