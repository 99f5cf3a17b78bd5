"""Write ResNet-50 v1's matrix-shaped parameter shapes, by tensor kind, for harness.cc:
one file per kind (1x1.txt, 3x3.txt, mat.txt) and all.txt, one shape a line."""
import collections
import os
import sys

from gluon_opt.experiments import bench


def kind(shape):
    if len(shape) == 4 and shape[2:] in ((1, 1), (3, 3)):
        return '%dx%d' % shape[2:]
    return 'mat'


def main(out):
    os.makedirs(out, exist_ok=True)
    sets = collections.defaultdict(list)
    for shape in bench.resnet50_shapes():
        if len(shape) >= 2:  # vectors take the common.h rule, not the factored driver
            sets[kind(shape)].append(shape)
            sets['all'].append(shape)
    for name, shapes in sets.items():
        with open(os.path.join(out, name + '.txt'), 'w') as f:
            f.writelines(' '.join(map(str, s)) + '\n' for s in shapes)
        print('%s: %d tensors' % (name, len(shapes)))


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else '/tmp/adafactor_shapes')
