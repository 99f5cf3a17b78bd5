"""Optimizer step benchmark; the same as ``gluon-opt bench`` (see gluon_opt/experiments/bench.py).

    python benchmarks/run_bench.py [--quick] [--sets mlp,resnet50,small500,e2e] [--out DIR]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gluon_opt.experiments.bench import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
