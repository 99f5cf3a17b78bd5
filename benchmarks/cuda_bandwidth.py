"""The CUDA kernels' step time and bandwidth on ResNet-50's parameter shapes, beside torch.

For a GPU machine where MXNet cannot run (its last GPU wheels hold no code for Hopper): the
kernel library is built with its CUDA driver and called through ``tests/gpu/harness.cc`` (the
entry MXNet calls, without MXNet's own dispatch), one multi-tensor call per step over the 193
float32 tensors of ResNet-50 v1 (25.6M parameters; shapes from ``tests/gpu/cases.json``), with
the attributes the optimizers really pass (captured there). For each optimizer: ms per step
(CUDA events over back-to-back steps), the bytes the rule must move (``bench.ALGORITHMS``)
per second, that as a fraction of a device-to-device copy measured in the same run (bytes read
plus written), and torch.optim's fused and foreach steps on the same shapes where torch has the
algorithm. Run from the repository root::

    GLUON_OPT_MXNET_DIR=<folder with include/mxnet/lib_api.h, src/lib_api.cc> \\
        python benchmarks/cuda_bandwidth.py [--csv out.csv]
"""
import argparse
import csv
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests',
                                'gpu'))
import harness as h  # noqa: E402

# gluon_opt name -> (CUDA op, torch.optim class or None, torch keyword arguments)
TORCH = {
    'sgd': ('SGD', dict(lr=0.01, momentum=0.9)),
    'adam': ('Adam', dict(lr=1e-3)),
    'adamw': ('AdamW', dict(lr=1e-3, weight_decay=0.01)),
    'adamax': ('Adamax', dict(lr=2e-3)),
    'nadam': ('NAdam', dict(lr=1e-3)),
    'radam': ('RAdam', dict(lr=1e-3)),
    'adagrad': ('Adagrad', dict(lr=0.01)),
    'rmsprop': ('RMSprop', dict(lr=1e-3)),
    'adadelta': ('Adadelta', dict(lr=1.0)),
}


def _events_ms(fn, iters, warmup=3):
    import cupy as cp
    for _ in range(warmup):
        fn()
    cp.cuda.Device().synchronize()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    stop.synchronize()
    return cp.cuda.get_elapsed_time(start, stop) / iters


def copy_bandwidth(nbytes=1 << 30, iters=20):
    """Bytes read plus written per second by a device-to-device copy."""
    import cupy as cp
    src = cp.ones(nbytes // 4, dtype=cp.float32)
    dst = cp.empty_like(src)
    ms = _events_ms(lambda: cp.copyto(dst, src), iters)
    return 2 * nbytes / (ms * 1e-3)


def gluon_opt_step(harness, call, shapes):
    """One step's function: the captured call's attributes over ``shapes``."""
    import cupy as cp
    attrs = dict(call['attrs'])
    n0 = int(attrs['n'])
    scalars = attrs['sc'].split(',') if attrs.get('sc') else []
    per_tensor = scalars[:len(scalars) // n0]
    ns = int(attrs.get('ns', 0))
    # per-tensor state shapes: the template's first tensor's, where they are not weight-shaped
    template = call['inputs'][2:2 + ns]
    first = call['inputs'][0][0]
    rng = cp.random.RandomState(0)
    inputs, outputs = [], []
    for shape in shapes:
        w = rng.standard_normal(shape, dtype=cp.float32)
        inputs += [w, rng.standard_normal(shape, dtype=cp.float32)]
        for s_shape, _ in template:
            s = shape if s_shape == first else s_shape
            inputs.append(rng.uniform(0.1, 1.0, s, dtype=cp.float32))
        outputs.append(w)
    attrs.update(n=str(len(shapes)))
    if per_tensor:
        attrs['sc'] = ','.join(per_tensor * len(shapes))
    return harness.prepare(call['op'], attrs, inputs, outputs, 'gpu')


def torch_step(shapes, cls_name, kwargs, mode):
    import torch
    params = [torch.randn(*s, device='cuda') for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = getattr(torch.optim, cls_name)(params, **dict(kwargs, **{mode: True}))
    opt.step()  # creates the states
    return opt.step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=50)
    parser.add_argument('--csv', default=None)
    args = parser.parse_args(argv)
    cases = h.load_cases()
    shapes = [tuple(s) for s in cases['resnet50_shapes']]
    numel = sum(int(np.prod(s)) for s in shapes)
    # the first kernel call of each benchmark configuration; not Muon (mostly Newton-Schulz's
    # matrix products) and not Lookahead (Adam's kernel, and a CPU-only synchronisation)
    bench_calls = {}
    for c in cases['calls']:
        name = c['case'].split('/', 1)[1]
        if c['case'].startswith('bench/') and c['op'] in cases['gpu_ops'] and \
                name not in ('muon', 'lookahead'):
            bench_calls.setdefault(name, c)
    per_element = cases['bench_bytes_per_element']
    import cupy as cp
    props = cp.cuda.runtime.getDeviceProperties(0)
    print('device: %s; ResNet-50 shapes: %d tensors, %.1fM parameters'
          % (props['name'].decode(), len(shapes), numel / 1e6))
    copy_bw = copy_bandwidth()
    print('device-to-device copy: %.0f GB/s (read + written)' % (copy_bw / 1e9))
    try:
        import torch
        has_torch = torch.cuda.is_available()
    except ImportError:
        has_torch = False
    rows = []
    with tempfile.TemporaryDirectory() as work:
        harness = h.Harness(work)
        for name in sorted(bench_calls):
            call = bench_calls[name]
            step = gluon_opt_step(harness, call, shapes)
            ms = _events_ms(step, args.iters)
            nbytes = per_element[name] * numel
            row = {'optimizer': name, 'op': call['op'], 'ms': ms,
                   'GB/s': nbytes / (ms * 1e-3) / 1e9, 'of_copy': nbytes / (ms * 1e-3) / copy_bw}
            if has_torch and name in TORCH:
                cls_name, kwargs = TORCH[name]
                for mode in ('fused', 'foreach'):
                    try:
                        row['torch_' + mode] = _events_ms(torch_step(shapes, cls_name, kwargs,
                                                                     mode), args.iters)
                    except (RuntimeError, TypeError, ValueError) as err:  # no such variant
                        row['torch_' + mode] = None
                        row['torch_%s_error' % mode] = str(err).split('\n')[0][:60]
            rows.append(row)
            del step
            cp.get_default_memory_pool().free_all_blocks()
    header = ('%-20s %-26s %8s %8s %8s %12s %12s %10s'
              % ('optimizer', 'op', 'ms', 'GB/s', 'of_copy', 'torch_fused', 'torch_foreach',
                 'vs_fused'))
    print(header)
    for r in rows:
        tf, tfe = r.get('torch_fused'), r.get('torch_foreach')
        best = tf if tf is not None else tfe
        print('%-20s %-26s %8.3f %8.0f %8.2f %12s %12s %10s' % (
            r['optimizer'], r['op'], r['ms'], r['GB/s'], r['of_copy'],
            '%.3f' % tf if tf is not None else '-', '%.3f' % tfe if tfe is not None else '-',
            '%.2fx' % (r['ms'] / best) if best else '-'))
    if args.csv:
        keys = sorted({k for r in rows for k in r})
        with open(args.csv, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
    return rows


if __name__ == '__main__':
    main()
