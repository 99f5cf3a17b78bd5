"""The course's figure defaults (gluon_opt.teaching.course_plots): enough distinct colours,
legible legends, PNGs at about 100 dpi with a layout whose text output does not change."""
import itertools
import os

import numpy as np
import pytest

matplotlib = pytest.importorskip('matplotlib')
matplotlib.use('Agg', force=True)

from gluon_opt.teaching import course_plots as cp  # noqa: E402


def _lab(color):
    """CIELAB (D65) of a matplotlib colour."""
    from matplotlib.colors import to_rgb
    rgb = np.array(to_rgb(color))
    rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                  [0.0193, 0.1192, 0.9505]])
    xyz = m @ rgb / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_palette_has_at_least_twelve_clearly_distinct_colours():
    assert len(cp.COLORS) >= 12 and len(set(c.lower() for c in cp.COLORS)) == len(cp.COLORS)
    closest = min(np.linalg.norm(_lab(a) - _lab(b))
                  for a, b in itertools.combinations(cp.COLORS, 2))
    assert closest >= 25


def test_setup_notebook_defaults(monkeypatch):
    import matplotlib.pyplot as plt
    monkeypatch.setenv('GLUON_OPT_IMPL', 'auto')
    cp.setup_notebook(seed=0)
    rc = matplotlib.rcParams
    assert rc['savefig.dpi'] == 100 and rc['figure.dpi'] == cp.LAYOUT_DPI == 72
    assert rc['legend.fontsize'] >= 9 and cp.LEGEND_FONTSIZE >= 9
    assert os.environ['GLUON_OPT_IMPL'] == 'reference'
    fig, _ = plt.subplots(figsize=(11, 3.8))
    assert repr(fig) == '<Figure size 792x273.6 with 1 Axes>'   # what chapters recorded
    plt.close(fig)


def test_history_curves_label_columns_readably():
    from gluon_opt.experiments.training import History
    h = History()
    h.records = [{'epoch': e, 'train_loss': 1.0 / (e + 1)} for e in range(3)]
    ax = cp.history_curves({'a': h})
    assert ax.get_ylabel() == 'training loss'
    assert ax.get_legend().get_texts()[0].get_fontsize() >= 9
