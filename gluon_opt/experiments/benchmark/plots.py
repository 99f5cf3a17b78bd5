"""The benchmark's two figures, from ``scoring.summarize``'s result (matplotlib, Agg):

* ``profiles.png``: each optimizer's performance profile rho(tau), the fraction of the
  workloads on which it reached the target within tau times the best time, for tau in
  [1, TAU_MAX]; the legend gives its score (the normalised area under the curve);
* ``time_to_target.png``: per workload, each optimizer's median time to target (bars); a
  cross on the axis where it did not reach the target (or missed its held-out variant's).
"""
import math
import os

import numpy as np

from .. import plotting

__all__ = ['draw_profiles', 'plot_profiles', 'plot_times', 'write_plots']


def _colors(plt, summary):
    """One colour per optimizer, the same in both figures."""
    n = len(summary['optimizers'])
    cmap = plt.get_cmap('tab20' if n > 10 else 'tab10')
    return {o['name']: cmap(i % 20) for i, o in enumerate(summary['optimizers'])}


def draw_profiles(summary, ax, colors=None):
    """Draw the profiles of ``summary`` on the axes ``ax`` (best score first in the legend's
    order; each label carries its score and, with several studies, the range of the studies'
    own scores)."""
    import matplotlib.pyplot as plt
    colors = colors or _colors(plt, summary)
    for o in sorted(summary['optimizers'], key=lambda o: -o['score']):
        spread = o.get('study_scores') or []
        extra = ' [%.2f-%.2f]' % (min(spread), max(spread)) if len(spread) > 1 else ''
        ax.step(summary['taus'], o['profile'], where='post', color=colors[o['name']],
                linewidth=1.6, label='%s (%.3f%s)' % (o['label'], o['score'], extra))
    ax.set_xlim(1.0, summary['tau_max'])
    ax.set_ylim(-0.02, 1.02)


def plot_profiles(summary, path, title=''):
    """Write the profile plot of ``summary`` to ``path``."""
    plt = plotting.pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    draw_profiles(summary, ax, _colors(plt, summary))
    plotting.save_axes(fig, ax, path, 'Performance profiles' + title,
                       'tau: time to target / best time on the workload',
                       'fraction of workloads reached within tau', legend_title='score')
    plt.close(fig)
    return path


def plot_times(summary, path, title=''):
    """Write the time-to-target bars of ``summary`` to ``path``."""
    plt = plotting.pyplot()
    rows, wls = summary['optimizers'], summary['workloads']
    fig, ax = plt.subplots(figsize=(max(7.5, 1.2 * len(wls) * max(1, len(rows)) / 3), 4.8))
    width = 0.8 / max(1, len(rows))
    x = np.arange(len(wls))
    missed = False
    colors = _colors(plt, summary)
    for i, o in enumerate(rows):
        c = colors[o['name']]
        pos = x - 0.4 + width * (i + 0.5)
        t = [o['times'][w] for w in wls]
        ax.bar(pos, [v if math.isfinite(v) else 0.0 for v in t], width, color=c,
               label=o['label'])
        lost = [p for p, v in zip(pos, t) if not math.isfinite(v)]
        if lost:
            missed = True
            ax.plot(lost, [0] * len(lost), 'x', color=c, markersize=7, clip_on=False)
    if missed:
        ax.plot([], [], 'kx', label='did not reach')
    ax.set_xticks(x)
    ax.set_xticklabels(wls)
    plotting.save_axes(fig, ax, path, 'Median time to target' + title, 'workload',
                       'training seconds to the target (evaluation excluded)')
    plt.close(fig)
    return path


def write_plots(summary, folder, title=''):
    """Both figures into ``folder``; returns their paths."""
    return [plot_profiles(summary, os.path.join(folder, 'profiles.png'), title),
            plot_times(summary, os.path.join(folder, 'time_to_target.png'), title)]
