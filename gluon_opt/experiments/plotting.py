"""PNG plots of a comparison (matplotlib's Agg backend: no display needed).

``plot_comparison(results, folder)`` writes three figures, one colour per optimizer, the mean
over seeds as a line and the range over seeds as a band where there are several:

* ``loss_vs_epoch.png``: training loss (solid) and test loss (dashed) after each epoch;
* ``loss_vs_time.png``: the running minibatch loss against training wall time, which charges
  each optimizer for what its step costs;
* ``test_accuracy.png``: test accuracy after each epoch.

Runs that diverged are left out of the plots (the table reports them).
"""
import os

import numpy as np

__all__ = ['plot_comparison', 'pyplot', 'save_axes']


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib
    if matplotlib.get_backend().lower() != 'agg':
        matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    return plt


def _grouped(results):
    groups = {}
    for r in results:
        if r.diverged is None and r.history is not None:
            groups.setdefault(r.spec.label, []).append(r.history)
    return groups


def _band(ax, x, ys, color, style='-', label=None):
    ys = np.asarray(ys, dtype=float)
    ax.plot(x, ys.mean(axis=0), style, color=color, label=label, linewidth=1.6)
    if len(ys) > 1:
        ax.fill_between(x, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.15,
                        linewidth=0)


def save_axes(fig, ax, path, title, xlabel, ylabel, legend_title=None):
    """Title, labels, grid and legend on ``ax``, then ``fig`` saved to ``path`` (PNG)."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # nothing to name when every run diverged at once
        ax.legend(fontsize=8, title=legend_title, title_fontsize=8, loc='best')
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_comparison(results, folder, title_suffix=''):
    """Write the three PNGs into ``folder``; returns their paths."""
    plt = pyplot()
    groups = _grouped(results)
    colors = plt.get_cmap('tab10').colors
    paths = []
    nseeds = max([len(h) for h in groups.values()] or [1])
    spread = '\n(line: mean, band: range over %d seeds)' % nseeds if nseeds > 1 else ''

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, (label, hs) in enumerate(groups.items()):
        c = colors[i % len(colors)]
        x = hs[0].column('epoch')
        _band(ax, x, [h.column('train_loss') for h in hs], c, '-', label)
        _band(ax, x, [h.column('test_loss') for h in hs], c, '--')
    ax.plot([], [], 'k-', label='train loss')
    ax.plot([], [], 'k--', label='test loss')
    ax.set_xticks(groups and list(groups.values())[0][0].column('epoch') or [])
    ax.set_yscale('log')
    path = os.path.join(folder, 'loss_vs_epoch.png')
    save_axes(fig, ax, path, 'Cross-entropy loss per epoch' + title_suffix + spread, 'epoch',
            'loss (log scale)')
    plt.close(fig)
    paths.append(path)

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, (label, hs) in enumerate(groups.items()):
        c = colors[i % len(colors)]
        for j, h in enumerate(hs):
            # starts from the untrained network's training loss at time 0
            t = [0.0] + [s[2] for s in h.steps]
            loss = [h.records[0]['train_loss']] + [s[3] for s in h.steps]
            ax.plot(t, loss, '-', color=c, alpha=0.9 if len(hs) == 1 else 0.5, linewidth=1.2,
                    label=label if j == 0 else None)
    ax.set_yscale('log')
    path = os.path.join(folder, 'loss_vs_time.png')
    save_axes(fig, ax, path, 'Training loss against wall time' + title_suffix,
            'training wall time (s, evaluation excluded)', 'minibatch loss (log scale)')
    plt.close(fig)
    paths.append(path)

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, (label, hs) in enumerate(groups.items()):
        c = colors[i % len(colors)]
        x = hs[0].column('epoch')[1:]
        _band(ax, x, [[100 * a for a in h.column('test_acc')[1:]] for h in hs], c, '-o', label)
    ax.set_xticks(groups and list(groups.values())[0][0].column('epoch')[1:] or [])
    path = os.path.join(folder, 'test_accuracy.png')
    save_axes(fig, ax, path, 'Test accuracy per epoch' + title_suffix + spread, 'epoch',
            'test accuracy (%)')
    plt.close(fig)
    paths.append(path)
    return paths
