import os
import sys

sys.path.insert(0, os.path.dirname(__file__))


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'isa_independent: the module compares no floating-point result (file '
                   'safety, the grader\'s sandbox and policy, the docs build, the layout), so '
                   'the instruction set cannot change its outcome; CI\'s second pass on another '
                   'instruction set deselects it (docs/testing.md, "CI")')
