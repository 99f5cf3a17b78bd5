"""The generic per-optimizer tests that run on one entry per optimizer (test_optimizers.py's
``ONE_EACH``: the plain configurations) run here on the ``cautious=True`` entries too: their
fused path is another kernel (a counting pass, then the update) and their reference another
branch, so the plumbing (several contexts with ``update_on_kvstore`` both ways, save/load and
resume, pickling, float16 with master weights, schedules, per-parameter counts) is checked on
them as well. Conformance, convergence, MLP training and fused parity come from their table
entries; the comparison with pytorch-optimizer is in test_modern_oracles.py."""
import pytest

import test_optimizers as generic
from optimizer_table import by_id

CAUTIOUS = [pytest.param(by_id(i), id=i) for i in
            ('adam-cautious', 'adamw-cautious', 'lion-cautious', 'laprop-wd-cautious')]


@pytest.mark.parametrize('e', CAUTIOUS)
@pytest.mark.parametrize('update_on_kvstore', [True, False])
def test_several_contexts_match_one(e, update_on_kvstore):
    generic.test_several_contexts_match_one(e, update_on_kvstore, 'device')


@pytest.mark.parametrize('e', CAUTIOUS)
def test_save_and_load_states_resumes_exactly(e, tmp_path):
    generic.test_save_and_load_states_resumes_exactly(e, tmp_path)


@pytest.mark.parametrize('e', CAUTIOUS)
def test_pickled_optimizer_continues_identically(e):
    generic.test_pickled_optimizer_continues_identically(e)


@pytest.mark.parametrize('e', CAUTIOUS)
def test_multi_precision_float16(e):
    generic.test_multi_precision_float16(e)


@pytest.mark.parametrize('e', CAUTIOUS)
def test_learning_rate_schedulers_drive_the_update(e):
    generic.test_learning_rate_schedulers_drive_the_update(e)


@pytest.mark.parametrize('e', CAUTIOUS)
def test_update_counts_are_per_parameter(e):
    generic.test_update_counts_are_per_parameter(e)


@pytest.mark.parametrize('e', CAUTIOUS)
def test_lr_mult_and_wd_mult_are_honoured(e):
    generic.test_lr_mult_and_wd_mult_are_honoured(e)
