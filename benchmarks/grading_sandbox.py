"""What the grading sandbox costs: seconds per submission with and without bubblewrap.

Grades the same honest class (each student hands in every exercise notebook, the instructor's
versions) twice in one run, with the sandbox and with ``--no-sandbox``, alternating the order
over repeats, and prints seconds per submission and their ratio. Run from the repository root::

    python benchmarks/grading_sandbox.py [--students 3] [--repeats 2]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from gluon_opt.teaching import assignment  # noqa: E402


def _class(root, students):
    folders = []
    for i in range(students):
        folder = os.path.join(root, 'student%d' % i)
        os.makedirs(folder)
        for path in assignment.exercise_notebooks().values():
            shutil.copy(path, folder)
        folders.append(folder)
    return folders


def _grade(folders, root, use_sandbox, tag):
    out = os.path.join(root, 'grades-%s' % tag)
    start = time.time()
    rows = assignment.grade(folders, output=out, use_sandbox=use_sandbox, timeout=300)
    seconds = time.time() - start
    jobs = len({(r['student'], r['assignment']) for r in rows})
    full = all(r['status'] in ('passed', 'notice') for r in rows)
    return seconds / jobs, full


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--students', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=2)
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix='gluon_opt_grading_bench_')
    try:
        folders = _class(root, args.students)
        times = {True: [], False: []}
        for k in range(args.repeats):
            for use_sandbox in ((True, False) if k % 2 == 0 else (False, True)):
                per, full = _grade(folders, root, use_sandbox, '%d-%s' % (k, use_sandbox))
                assert full, 'an honest submission lost points'
                times[use_sandbox].append(per)
        n = len(assignment.exercise_notebooks())
        print('%d students x %d notebooks, %d repeats; seconds per submission (median):'
              % (args.students, n, args.repeats))
        with_sb, without = statistics.median(times[True]), statistics.median(times[False])
        print('  sandbox (bubblewrap)  %.2f s' % with_sb)
        print('  --no-sandbox          %.2f s' % without)
        print('  overhead              %.2f s per submission (x%.2f)'
              % (with_sb - without, with_sb / without))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
