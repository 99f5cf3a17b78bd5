"""``cases.json`` (what the GPU tests and benchmark replay) is what the optimizers call now.

Runs where MXNet is (CI): captures the calls afresh (``make_cases.capture``) and compares. When
it fails, an optimizer's attributes or scalars changed: rerun ``make_cases.py`` and commit.
"""
import json

import pytest

pytest.importorskip('mxnet')

import make_cases  # noqa: E402


def test_cases_json_is_current():
    with open(make_cases.PATH) as f:
        stored = json.load(f)
    fresh = json.loads(json.dumps(make_cases.capture(), sort_keys=True))
    assert stored['gpu_ops'] == fresh['gpu_ops']
    assert stored['resnet50_shapes'] == fresh['resnet50_shapes']
    assert stored['bench_bytes_per_element'] == fresh['bench_bytes_per_element']
    assert len(stored['calls']) == len(fresh['calls'])
    for old, new in zip(stored['calls'], fresh['calls']):
        assert old == new, 'cases.json is stale at %s (%s): rerun tests/gpu/make_cases.py' % (
            new['case'], new['op'])
