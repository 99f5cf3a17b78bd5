"""The course's figures: contour plots with optimizer trajectories, 1-D landscapes with the
points visited, and loss curves. Figures are plain matplotlib; ``setup_notebook`` makes the
notebook's output deterministic (PNG only, fixed size and dpi, fixed seeds), which nbval needs.
"""
import numpy as np

__all__ = ['setup_notebook', 'contour', 'landscape_1d', 'loss_curves', 'bars', 'COLORS',
           'LEGEND_FONTSIZE', 'LAYOUT_DPI', 'COLUMN_LABELS']

#: one colour per series, in order: Okabe & Ito's eight colour-blind-safe colours, then six
#: of Paul Tol's (wine, olive, purple, brown, grey, indigo), all at least 25 apart in CIELAB
#: (CIE76 delta E; ``tests/test_course_plots.py``), so a chart of up to 14 series never repeats
#: a colour
COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000',
          '#F0E442', '#882255', '#999933', '#AA4499', '#661100', '#888888', '#332288']

#: points: the course's legends, ticks and labels are at least this large
LEGEND_FONTSIZE = 9

#: the dpi of matplotlib's figure layout in the notebooks (``figure.dpi``); the figure's text
#: representation, ``<Figure size 792x273.6 with 2 Axes>``, which nbval compares, is in these
#: units, so it stays what every chapter recorded whatever resolution the PNG is drawn at
LAYOUT_DPI = 72

#: readable axis labels for the ``History`` columns
COLUMN_LABELS = {'train_loss': 'training loss', 'train_acc': 'training accuracy',
                 'test_loss': 'test loss', 'test_acc': 'test accuracy',
                 'val_loss': 'validation loss', 'val_acc': 'validation accuracy',
                 'batch_loss': 'running minibatch loss',
                 'batch_acc': 'running minibatch accuracy',
                 'lr': 'learning rate'}


def setup_notebook(seed=0, dpi=100, impl='reference'):
    """Call once at the top of a course notebook: inline figures as PNG (SVG embeds a date, so
    it never compares equal) drawn at ``dpi`` (default 100), legends of at least
    ``LEGEND_FONTSIZE`` points, a fixed figure size, fixed NumPy/MXNet/random seeds.

    The layout is computed at ``LAYOUT_DPI`` (72) and only the PNG is rendered at ``dpi``, so
    a figure's text output, which nbval compares, does not depend on ``dpi``.

    ``impl`` sets ``GLUON_OPT_IMPL`` for this process: by default the readable ``mx.nd``
    reference updates, the ones the course shows, so that outputs do not depend on whether the
    fused kernels compiled on this machine (and no kernel is compiled mid-notebook). A chapter
    that compares implementations passes ``impl=None`` or chooses per optimizer
    (``use_fused=True``)."""
    import os
    import random
    import matplotlib
    import matplotlib.pyplot as plt
    import mxnet as mx
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
        set_matplotlib_formats('png', dpi=dpi)
    except ImportError:  # not in IPython: nothing to configure
        pass
    matplotlib.rcParams.update({
        'figure.figsize': (6.4, 4.0), 'figure.dpi': LAYOUT_DPI, 'savefig.dpi': dpi,
        'axes.grid': True, 'grid.alpha': 0.3, 'axes.spines.top': False,
        'axes.spines.right': False, 'legend.frameon': False, 'font.size': 10,
        'legend.fontsize': LEGEND_FONTSIZE, 'xtick.labelsize': LEGEND_FONTSIZE,
        'ytick.labelsize': LEGEND_FONTSIZE,
        'svg.hashsalt': 'gluon-opt', 'path.simplify': True,
    })
    plt.close('all')
    if impl is not None:
        os.environ['GLUON_OPT_IMPL'] = impl
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def _axes(ax, figsize=None):
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def contour(landscape, trajectories=(), ax=None, levels=25, title=None, markers=True,
            bounds=None):
    """Contours of a 2-D ``landscape`` with each trajectory drawn over them (start marked by a
    circle, end by a cross, the known minimum by a star). Returns the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    ax = _axes(ax)
    if bounds is not None:
        saved, landscape.bounds = landscape.bounds, bounds
    try:
        X, Y, Z = landscape.grid(160)
    finally:
        if bounds is not None:
            landscape.bounds = saved
    if landscape.log_levels:
        floor = Z.min()
        Zs = Z - floor + 1e-3 * max(Z.max() - floor, 1e-12)
        lv = np.geomspace(Zs.min(), Zs.max(), levels)
        ax.contour(X, Y, Zs, levels=lv, norm=LogNorm(), cmap='Greys', linewidths=0.6)
    else:
        ax.contour(X, Y, Z, levels=levels, cmap='Greys', linewidths=0.6)
    for i, run in enumerate(trajectories):
        p = run.path
        color = COLORS[i % len(COLORS)]
        ax.plot(p[:, 0], p[:, 1], '-', color=color, lw=1.4, label=run.label,
                marker='.' if markers else None, ms=3)
        ax.plot(p[0, 0], p[0, 1], 'o', color=color, ms=5)
        ax.plot(p[-1, 0], p[-1, 1], 'x', color=color, ms=8, mew=2)
    if landscape.minimum is not None:
        ax.plot(*landscape.minimum, '*', color='k', ms=12, label='minimum')
    (x0, x1), (y0, y1) = bounds or landscape.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel('$x$')
    ax.set_ylabel('$y$')
    ax.set_title(title if title is not None else landscape.name)
    if trajectories:
        ax.legend(loc='best', fontsize=LEGEND_FONTSIZE)
    return ax


def landscape_1d(landscape, trajectories=(), ax=None, title=None):
    """A 1-D ``landscape`` as a curve, each trajectory's points on it (lighter early, darker
    late). Returns the axes."""
    ax = _axes(ax)
    x, y = landscape.grid(400)
    ax.plot(x, y, color='0.3', lw=1.5)
    for i, run in enumerate(trajectories):
        color = COLORS[i % len(COLORS)]
        xs = run.path[:, 0]
        keep = (xs >= x[0]) & (xs <= x[-1])
        ax.plot(xs[keep], run.losses[keep], '.-', color=color, alpha=0.7, ms=5, lw=0.6,
                label=run.label)
        ax.plot(xs[-1:], run.losses[-1:], 'x', color=color, ms=9, mew=2)
    ax.set_xlabel('$x$')
    ax.set_ylabel('$f(x)$')
    ax.set_title(title if title is not None else landscape.name)
    if trajectories:
        ax.legend(loc='best', fontsize=LEGEND_FONTSIZE)
    return ax


def loss_curves(curves, ax=None, log=True, xlabel='step', ylabel=None, title=None,
                gap=False, dashed=()):
    """Plot loss curves. ``curves``: a list of ``Trajectory`` or a dict ``label -> values``.
    With ``gap=True`` (trajectories only) plot ``loss - min_value``, the distance to optimal.
    Curves whose label is in ``dashed`` are drawn dashed (to see curves that coincide).
    Returns the axes."""
    ax = _axes(ax)
    if isinstance(curves, dict):
        items = list(curves.items())
    else:
        items = [(run.label, run.gap() if gap else run.losses) for run in curves]
    for i, (label, values) in enumerate(items):
        values = np.asarray(values, dtype=np.float64)
        if log:
            values = np.where(values > 0, values, np.nan)
        ax.plot(np.arange(len(values)), values, color=COLORS[i % len(COLORS)], lw=1.5,
                label=label, linestyle='--' if label in dashed else '-')
    if log:
        ax.set_yscale('log')
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or ('loss - minimum' if gap else 'loss'))
    if title:
        ax.set_title(title)
    ax.legend(loc='best', fontsize=LEGEND_FONTSIZE)
    return ax


def history_curves(histories, x='epoch', key='train_loss', ax=None, log=True, title=None,
                   ylabel=None, dashed=()):
    """Curves of training runs, one per ``{label: History}`` entry (or a list of
    ``compare.RunResult``; diverged runs keep the part before they diverged).

    ``x='epoch'``: ``key`` of each epoch record (``train_loss``, ``test_acc``, ...; epoch 0 is
    the untrained network). ``x='step'`` or ``x='time'``: the running minibatch loss the
    training loop samples every ``check_every`` batches, against the update count or the
    training wall time in seconds (evaluation excluded). Returns the axes."""
    if x not in ('epoch', 'step', 'time'):
        raise ValueError("x=%r is invalid; expected 'epoch', 'step' or 'time'." % (x,))
    ax = _axes(ax)
    if not isinstance(histories, dict):
        histories = {r.spec.label: r.history for r in histories if r.history is not None}
    for i, (label, h) in enumerate(histories.items()):
        if x == 'epoch':
            xs, ys = h.column('epoch'), h.column(key)
        else:
            first = h.records[0]['train_loss'] if h.records else np.nan
            xs = [0.0] + [s[0] if x == 'step' else s[2] for s in h.steps]
            ys = [first] + [s[3] for s in h.steps]
        ys = np.asarray([np.nan if v is None else v for v in ys], dtype=np.float64)
        ax.plot(xs, ys, marker='o' if x == 'epoch' else None, ms=3, lw=1.5,
                color=COLORS[i % len(COLORS)], label=label,
                linestyle='--' if label in dashed else '-')
    if log:
        ax.set_yscale('log')
    ax.set_xlabel({'epoch': 'epoch', 'step': 'update step',
                   'time': 'training time (s)'}[x])
    ax.set_ylabel(ylabel or (COLUMN_LABELS.get(key, key) if x == 'epoch'
                             else 'minibatch loss'))
    if title:
        ax.set_title(title)
    ax.legend(loc='best', fontsize=LEGEND_FONTSIZE)
    return ax


__all__ += ['history_curves']


def bars(values, ax=None, errors=None, log=False, ylabel=None, title=None, labels=None):
    """Grouped bar chart. ``values``: ``{group: {label: value}}`` (one cluster of bars per
    group, one colour per label); ``errors``: the same shape, drawn as error bars (e.g. a
    standard deviation over seeds); a label missing from a group leaves a gap. ``labels``
    fixes the order of the bars. Returns the axes."""
    ax = _axes(ax)
    groups = list(values)
    if labels is None:
        labels = list(dict.fromkeys(k for g in groups for k in values[g]))
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        xs = [j + (i - (len(labels) - 1) / 2) * width for j, g in enumerate(groups)
              if label in values[g]]
        ys = [values[g][label] for g in groups if label in values[g]]
        err = None
        if errors is not None:
            err = [errors[g][label] for g in groups if label in values[g]]
        if xs:
            ax.bar(xs, ys, width, yerr=err, capsize=3 if err is not None else 0,
                   label=label, color=COLORS[i % len(COLORS)])
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups)
    if log:
        ax.set_yscale('log')
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc='best', fontsize=LEGEND_FONTSIZE)
    return ax
