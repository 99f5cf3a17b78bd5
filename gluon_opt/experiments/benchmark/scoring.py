"""Scores from trial records, as AlgoPerf scores: time to target, performance profiles, the
normalised area under each profile.

Everything here is a function of the records alone (``runner.TrialLog``), so a resumed run
scores exactly as an uninterrupted one with the same records would.

1. **Per study**: an optimizer's time on a workload is that of its fastest trial that reached
   the target (external tuning: the best of the study's trials; self-tuning: the one trial);
   infinite when none did.
2. **Over studies**: the median of the studies' times (infinite when at least half of them
   missed the target).
3. **Held-out variants**: where a workload's held-out variant was run, an optimizer that
   misses the variant's target loses the base workload too (its time there becomes
   infinite). The variants are not scored otherwise.
4. **Performance profile**: on each scored workload w the ratio r = t / (the best time on w
   of all the optimizers scored together); rho(tau) is the fraction of the scored workloads
   with r <= tau. An optimizer that is fastest everywhere has rho = 1 from tau = 1 on.
5. **Score**: the area under rho over [1, TAU_MAX], divided by TAU_MAX - 1, so in [0, 1]:
   1 for the fastest optimizer on every workload, 0 for one that reaches no target within
   TAU_MAX times the best time. rho is a step function, so the area is exact:
   the mean over workloads of max(0, TAU_MAX - r) / (TAU_MAX - 1) (AlgoPerf integrates
   100 grid points with the trapezoid rule; the two agree to the grid's resolution).

The same is computed from steps to target (``score_steps``): a machine-independent reading
that ignores what a step costs.

6. **Uncertainty**: each study is also scored alone (its fastest trials, its own best times;
   ``study_scores``): the spread of those scores over the studies is how much the score
   depends on the draw of the search points and the seeds.
"""
import math

import numpy as np

__all__ = ['TAU_MAX', 'INF', 'study_bests', 'workload_times', 'scored_workloads',
           'ratios', 'profile', 'score', 'study_scores', 'summarize', 'format_table']

#: the profile's range, tau in [1, TAU_MAX] (AlgoPerf's tau_max = 4)
TAU_MAX = 4.0
INF = float('inf')


def study_bests(records):
    """``{(optimizer, workload, study): record}``: each study's fastest trial that reached
    the target, or None where none of its trials did."""
    out = {}
    for r in records:
        key = (r['optimizer'], r['workload'], r['study'])
        best = out.get(key)
        if r['reached'] and (best is None or r['time_to_target'] < best['time_to_target']):
            out[key] = r
        else:
            out.setdefault(key, None)
    return out


def _median(values):
    return float(np.median(values)) if values else INF


def workload_times(records, measure='time_to_target'):
    """``{optimizer: {workload: median over studies of the study's best measure}}``
    (``measure`` is ``'time_to_target'`` or ``'steps_to_target'``; infinite: not reached)."""
    per = {}
    for (opt, wl, _), best in sorted(study_bests(records).items()):
        value = float(best[measure]) if best is not None else INF
        per.setdefault(opt, {}).setdefault(wl, []).append(value)
    return {opt: {wl: _median(v) for wl, v in wls.items()} for opt, wls in per.items()}


def scored_workloads(records):
    """The workloads the profile counts, in the order they appear: those of ``records`` that
    are not the held-out variant of another workload in ``records``; and ``{base: variant}``
    of the variants that act as gates."""
    names, parent = [], {}
    for r in records:
        if r['workload'] not in names:
            names.append(r['workload'])
            parent[r['workload']] = r.get('heldout_of')
    gates = {parent[n]: n for n in names if parent[n] in parent}
    return [n for n in names if parent[n] not in parent], gates


def _gated(times, scored, gates):
    """``times`` restricted to the scored workloads, a base workload infinite where its
    held-out variant's time is."""
    out = {}
    for opt, wls in times.items():
        out[opt] = {}
        for w in scored:
            t = wls.get(w, INF)
            if w in gates and not math.isfinite(wls.get(gates[w], INF)):
                t = INF
            out[opt][w] = t
    return out


def ratios(times, scored):
    """``{optimizer: {workload: t / best t on the workload}}`` (infinite where not reached,
    or where no optimizer reached the target)."""
    best = {w: min([wls[w] for wls in times.values()] + [INF]) for w in scored}
    return {opt: {w: (wls[w] / best[w] if math.isfinite(wls[w]) else INF) for w in scored}
            for opt, wls in times.items()}


def profile(r, taus):
    """rho(tau) for each tau of ``taus``: the fraction of the workloads of ``r`` (one
    optimizer's ``{workload: ratio}``) with ratio <= tau."""
    values = list(r.values())
    return [sum(v <= tau for v in values) / float(len(values)) for tau in taus]


def score(r, tau_max=TAU_MAX):
    """The normalised area under the profile of ``r`` over [1, tau_max] (exact)."""
    if not r:
        return 0.0
    return float(np.mean([max(0.0, tau_max - v) / (tau_max - 1.0) if math.isfinite(v) else 0.0
                          for v in r.values()]))


def study_scores(records, tau_max=TAU_MAX):
    """``{optimizer: [score of each study alone]}`` (studies in increasing order): the profile
    of study s compares the optimizers' best trials of study s only."""
    out = {}
    for study in sorted({r['study'] for r in records}):
        sub = [r for r in records if r['study'] == study]
        scored, gates = scored_workloads(sub)
        for opt, r in ratios(_gated(workload_times(sub), scored, gates), scored).items():
            out.setdefault(opt, []).append(score(r, tau_max))
    return out


def summarize(records, labels=None, tau_max=TAU_MAX, points=121):
    """Everything the command prints and writes, from ``records``: a JSON-ready dict with
    ``workloads`` (scored), ``gates`` (base -> held-out variant), ``taus``, and per optimizer
    (in order of first appearance) its ``label``, ``score``, ``score_steps``, ``times``,
    ``steps`` (after the held-out gate), ``raw_times`` (before it, variants included),
    ``ratios``, ``profile`` (rho at ``taus``) and ``study_scores`` (each study scored alone). ``labels`` maps names to display labels
    (default: the records')."""
    scored, gates = scored_workloads(records)
    order, seen_labels = [], {}
    for r in records:
        if r['optimizer'] not in seen_labels:
            order.append(r['optimizer'])
            seen_labels[r['optimizer']] = r.get('label', r['optimizer'])
    labels = dict(seen_labels, **(labels or {}))
    raw = workload_times(records)
    times = _gated(raw, scored, gates)
    steps = _gated(workload_times(records, 'steps_to_target'), scored, gates)
    rt, rs = ratios(times, scored), ratios(steps, scored)
    taus = [float(t) for t in np.linspace(1.0, tau_max, points)]
    studies = sorted({r['study'] for r in records})
    per_study = study_scores(records, tau_max)
    out = {'workloads': scored, 'gates': gates, 'tau_max': tau_max, 'taus': taus,
           'studies': len(studies), 'optimizers': []}
    for opt in order:
        out['optimizers'].append({
            'name': opt, 'label': labels[opt], 'score': score(rt[opt], tau_max),
            'score_steps': score(rs[opt], tau_max), 'times': times[opt], 'steps': steps[opt],
            'raw_times': raw[opt], 'ratios': rt[opt], 'profile': profile(rt[opt], taus),
            'study_scores': per_study[opt],
            'trials': sum(1 for r in records if r['optimizer'] == opt)})
    return out


def _cell(summary_row, w, gates):
    t, s = summary_row['times'][w], summary_row['steps'][w]
    if math.isfinite(t):
        return ('%.2fs/%d' if t < 10 else '%.1fs/%d') % (t, s)
    raw = summary_row['raw_times']
    if w in gates and math.isfinite(raw.get(w, INF)):
        return 'held-out x'  # reached the base target, missed the variant's
    return '-'


def format_table(summary):
    """The terminal table: per optimizer (best score first) its score, its score by steps,
    the range of the studies' own scores (with several studies), and on each workload the
    median time to target and steps (``-``: not reached; ``held-out x``: reached, but missed
    the held-out variant's target)."""
    rows = sorted(summary['optimizers'], key=lambda o: (-o['score'], -o['score_steps']))
    several = summary['studies'] > 1
    header = ['optimizer', 'score'] + (['studies'] if several else []) + ['by steps'] \
        + summary['workloads']
    lines = [[o['label'], '%.3f' % o['score']]
             + (['%.2f-%.2f' % (min(o['study_scores']), max(o['study_scores']))]
                if several else [])
             + ['%.3f' % o['score_steps']]
             + [_cell(o, w, summary['gates']) for w in summary['workloads']] for o in rows]
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    fmt = lambda cells: '  '.join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    return '\n'.join([fmt(header), '  '.join('-' * w for w in widths)] + [fmt(l) for l in lines])
