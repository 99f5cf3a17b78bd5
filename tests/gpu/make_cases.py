"""Write ``cases.json``: the kernel calls gluon_opt's optimizers make, for ``test_cuda_kernels.py``
and ``benchmarks/cuda_bandwidth.py`` to replay on a GPU machine where MXNet cannot run.

Each call is captured from the real fused path on CPU (``kernels._Call``, where every kernel call
ends): the op, its attributes exactly as MXNet receives them (per-tensor scalars included), the
shapes and dtypes of its inputs and outputs, and which input each output aliases (the weight is
updated in place: ``out=weight``). The optimizers run are ``test_fused.py``'s cases (the optimizer
table's fused entries and its extra cases), float32 and float16 with master weights, two steps
over ``test_fused.SHAPES``; then the benchmark's configurations (``bench.ALGORITHMS``) one step.
The file also holds ``kernels.GPU_OPS`` and ResNet-50's parameter shapes (``bench``).

Rerun after changing an optimizer's attributes or scalars (``test_gpu_cases.py`` fails until
then)::

    PYTHONPATH=.:tests python tests/gpu/make_cases.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, 'cases.json')
STEPS = 2


def _record(calls, call, params):
    import numpy as np
    arrays = call.arrays
    ins, outs = arrays[:call.n_in], arrays[call.n_in:]
    alias = []
    for out in outs:
        same = [i for i, a in enumerate(ins) if a is out]
        alias.append(same[0] if same else -1)
    entry = {'op': call.op,
             'attrs': {k: str(v) for k, v in sorted(params.items())},
             'inputs': [[list(a.shape), np.dtype(a.dtype).name] for a in ins],
             'outputs': [[list(a.shape), np.dtype(a.dtype).name] for a in outs],
             'alias': alias}
    calls.append(entry)


def capture():
    """The document ``cases.json`` holds, computed afresh."""
    import numpy as np
    import mxnet as mx
    from gluon_opt import kernels
    from gluon_opt.experiments import bench
    if HERE.rsplit(os.sep, 1)[0] not in sys.path:
        sys.path.insert(0, HERE.rsplit(os.sep, 1)[0])
    import test_fused

    recorded = []
    original = kernels._Call.__call__

    def spy(self, attrs, sc=None):
        params = dict(self.fixed, **attrs)
        if sc is not None:
            params['sc'] = sc
        _record(recorded, self, params)
        return original(self, attrs, sc)

    def run(name, hp, dtype, shapes, steps, tag):
        start = len(recorded)
        rng = np.random.RandomState(0)
        opt = test_fused.make(name, True, multi_precision=dtype == 'float16', **hp)
        weights = [mx.nd.array(rng.randn(*s), dtype=dtype) for s in shapes]
        states = [opt.create_state_multi_precision(i, w) for i, w in enumerate(weights)]
        for _ in range(steps):
            grads = [mx.nd.array(rng.randn(*s), dtype=dtype) for s in shapes]
            opt.update_multi_precision(list(range(len(shapes))), weights, grads, states)
        mx.nd.waitall()
        for entry in recorded[start:]:
            entry['case'] = tag

    kernels._Call.__call__ = spy
    try:
        if not kernels.available():
            raise RuntimeError('the CPU kernels are needed to capture the calls')
        for param in test_fused.cases():
            name, hp = param.values
            if 'state_dtype' in hp:  # states in low precision: CPU-only ops (kernels/lowprec.h)
                continue
            for dtype in ('float32', 'float16'):
                shapes = test_fused.SHAPES + test_fused.EXTRA_SHAPES.get(name, [])
                run(name, hp, dtype, shapes, STEPS, '%s/%s' % (param.id, dtype))
        for name, (hp, _, _, per) in sorted(bench.ALGORITHMS.items()):
            # ``adam+cautious``: a configuration of ``adam`` (the record's bench_variants)
            run(name.split('+')[0], hp, 'float32', bench.mlp_shapes(), 1, 'bench/' + name)
    finally:
        kernels._Call.__call__ = original
    bench_bytes = {name: per for name, (_, _, _, per) in bench.ALGORITHMS.items()
                   if not callable(per)}
    return {'gpu_ops': sorted(kernels.GPU_OPS),
            'calls': recorded,
            'bench_bytes_per_element': bench_bytes,
            'resnet50_shapes': [list(s) for s in bench.resnet50_shapes()]}


def main():
    doc = capture()
    with open(PATH, 'w') as f:
        json.dump(doc, f, indent=0, sort_keys=True)
        f.write('\n')
    print('%s: %d calls' % (PATH, len(doc['calls'])))


if __name__ == '__main__':
    main()
