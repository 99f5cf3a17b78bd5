"""The build steps of the documentation site that Sphinx has no setting for.

* The course (``course/``), the README and the course's guides live outside ``docs/``, where
  GitHub, the wheel and ``gluon-opt course`` expect them. At the start of each build they are
  copied into ``docs/_generated/`` (git-ignored), their links rewritten to the site's pages.
  The notebooks keep their recorded outputs: the site never runs them (``_notebook`` says
  what it leaves out).
* One page per registered optimizer, written from its record (``gluon_opt.optimizers.infos()``:
  registry key, family, paper, defaults, counterparts) followed by its docstring, so that a new
  optimizer appears on the site without anyone editing a page.
* ``docs/index.md`` and the other guides are read in place and must read well on GitHub: the
  site's table of contents is appended to the index at read time, and their links to files
  outside ``docs/`` (``../README.md``) are pointed at the copies.
"""
import json
import os
import posixpath
import re

from sphinx.util import logging

import house_docstrings

LOG = logging.getLogger(__name__)

DOCS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(DOCS)
GENERATED = os.path.join(DOCS, '_generated')

#: repository files shown on the site: repository path -> path under docs/
PAGES = {'README.md': '_generated/README.md',
         'course/README.md': '_generated/course/README.md',
         'course/ASSIGNMENTS.md': '_generated/course/ASSIGNMENTS.md'}
#: the chapters and the learner's exercise notebooks (not the instructor's versions)
NOTEBOOK = re.compile(r'^[0-9][0-9]x?_.*\.ipynb$')
#: the site's table of contents, appended to docs/index.md when Sphinx reads it (a new guide
#: goes here too: Sphinx refuses a page that no table of contents lists)
INDEX_TOCTREE = """

```{toctree}
:hidden:
:caption: Guides

Overview (README) <_generated/README>
compare
benchmark
optimizers
performance
low_precision
modern
schedules
second-order
distributed
pitfalls
robustness
gpu
testing
developers
averaging
```

```{toctree}
:hidden:
:caption: Course and reference

_generated/course/README
api
```
"""
# a markdown link's target: [text](target) or [text](target "title")
_LINK = re.compile(r'(\]\()([^)\s#]+)(#[^)\s]*)?(\s+"[^"]*")?\)')


def _site_links(text, source, site):
    """``text`` (the markdown of repository file ``source``, shown at ``site`` under docs/) with
    each relative link to a repository file that the site shows pointed at the site's page."""
    def rewrite(match):
        target = match.group(2)
        if re.match(r'^[a-z][a-z0-9+.-]*:', target) or target.startswith('/'):
            return match.group(0)  # a URL
        repo_path = posixpath.normpath(posixpath.join(posixpath.dirname(source), target))
        if repo_path in PAGES:
            new = PAGES[repo_path]
        elif repo_path.startswith('docs/'):
            new = repo_path[len('docs/'):]
        elif repo_path.startswith('course/') and NOTEBOOK.match(posixpath.basename(repo_path)):
            new = '_generated/' + repo_path
        else:
            return match.group(0)
        new = posixpath.relpath(new, posixpath.dirname(site))
        return '%s%s%s%s)' % (match.group(1), new, match.group(3) or '', match.group(4) or '')
    return _LINK.sub(rewrite, text)


def _write(path, data):
    """Write ``data`` (str or bytes) to ``path`` unless it already holds exactly that, so that
    Sphinx's incremental build sees unchanged pages as unchanged."""
    mode = 'b' if isinstance(data, bytes) else ''
    if os.path.exists(path):
        with open(path, 'r' + mode) as f:
            if f.read() == data:
                return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w' + mode) as f:
        f.write(data)


def _sync(folder, wanted):
    """Write ``wanted`` ({file name: content}) into ``folder`` under docs/_generated and remove
    what else a previous build left there (a renamed notebook)."""
    folder = os.path.join(GENERATED, folder)
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name not in wanted and os.path.isfile(os.path.join(folder, name)):
            os.remove(os.path.join(folder, name))
    for name, data in wanted.items():
        _write(os.path.join(folder, name), data)


def _notebook(path, name):
    """The notebook at ``path`` as the site shows it: its recorded outputs as they are, without
    the quiz widgets' state (a static page cannot run them: the text each quiz question
    records beside its widget is shown instead, and no widget script is loaded), and with a
    title where the chapter has none (the sidebar would otherwise show its first section)."""
    with open(path, encoding='utf-8') as f:
        nb = json.load(f)
    nb.get('metadata', {}).pop('widgets', None)
    titled = any(line.startswith('# ') for cell in nb['cells'] if cell['cell_type'] == 'markdown'
                 for line in ''.join(cell['source']).splitlines())
    if not titled:
        number, words = name[:-len('.ipynb')].split('_', 1)
        title = 'Chapter %d. %s' % (int(number.rstrip('x')), words.replace('_', ' ').capitalize())
        cell = {'cell_type': 'markdown', 'metadata': {}, 'source': ['# ' + title]}
        if (nb['nbformat'], nb['nbformat_minor']) >= (4, 5):
            cell['id'] = 'site-title'  # cells carry ids from nbformat 4.5 on
        nb['cells'].insert(0, cell)
        LOG.info('%s has no title (a "# " heading): shown as "%s"', name, title)
    return json.dumps(nb, indent=1, ensure_ascii=False) + '\n'


def _course():
    course = os.path.join(REPO, 'course')
    wanted = {}
    for name in sorted(os.listdir(course)):
        if NOTEBOOK.match(name):
            wanted[name] = _notebook(os.path.join(course, name), name)
    notebooks = [n[:-len('.ipynb')] for n in sorted(wanted)]
    for source in ('course/README.md', 'course/ASSIGNMENTS.md'):
        with open(os.path.join(REPO, source), encoding='utf-8') as f:
            text = _site_links(f.read(), source, PAGES[source])
        if source == 'course/README.md':
            text += ('\n\n```{toctree}\n:caption: Chapters and exercises\n:maxdepth: 1\n\n%s\n'
                     'ASSIGNMENTS\n```\n' % '\n'.join(notebooks))
        wanted[posixpath.basename(source)] = text
    _sync('course', wanted)
    with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as f:
        readme = _site_links(f.read(), 'README.md', PAGES['README.md'])
    _write(os.path.join(DOCS, PAGES['README.md']), readme)


def _optimizer_page(rec):
    title = '%s (``%s``)' % (rec.label, rec.key)
    rows = [
        ('registry key', '``%s``' % rec.key + (
            ', also ``%s``' % rec.name if _registry().get(rec.name) is rec.cls else '')),
        ('family', rec.family),
        ('paper', rec.paper),
        ('defaults', ', '.join('``%s=%r``' % kv for kv in rec.defaults.items())),
        ('MXNet counterpart', '``%s``' % rec.mxnet_builtin if rec.mxnet_builtin else 'none'),
        ('conventions of', '``torch.optim.%s``' % rec.torch_class if rec.torch_class else
         'the paper (no ``torch.optim`` counterpart)'),
        ('fused kernel', '``%s``' % rec.fused_op if rec.fused_op else
         'none: the reference update only'),
        ('needs a closure', 'yes: ``gluon_opt.Trainer.step(batch_size, closure)``'
         if rec.needs_closure else 'no'),
    ]
    lines = ['.. _optimizer-%s:' % rec.name, '', title, '=' * len(title), '',
             '.. list-table::', '   :stub-columns: 1', '']
    for key, value in rows:
        lines += ['   * - %s' % key, '     - %s' % value]
    lines += ['', '.. autoclass:: gluon_opt.%s' % rec.cls.__name__, '   :no-members:', '']
    return '\n'.join(lines)


def _registry():
    import mxnet as mx
    return mx.optimizer.Optimizer.opt_registry


def _optimizers():
    from gluon_opt.optimizers import infos
    records = infos()
    wanted = {rec.name + '.rst': _optimizer_page(rec) for rec in records}
    title = 'Optimizers'
    lines = [title, '=' * len(title), '',
             'Every optimizer gluon_opt registers, from its record '
             '(:func:`gluon_opt.optimizers.infos`), each page with its update rule, '
             'hyperparameters and defaults, conventions and paper.', '',
             '.. list-table::', '   :header-rows: 1', '',
             '   * - optimizer', '     - registry key', '     - family', '     - paper']
    for rec in records:
        lines += ['   * - :ref:`%s <optimizer-%s>`' % (rec.label, rec.name),
                  '     - ``%s``' % rec.key, '     - %s' % rec.family, '     - %s' % rec.paper]
    lines += ['', '.. toctree::', '   :hidden:', '']
    lines += ['   %s' % rec.name for rec in records]
    wanted['index.rst'] = '\n'.join(lines) + '\n'
    _sync('optimizers', wanted)


def generate(app):
    _course()
    _optimizers()


def read_source(app, docname, source):
    path = app.env.doc2path(docname, base=False)
    if str(path).endswith('.md') and not docname.startswith('_generated/'):
        source[0] = _site_links(source[0], 'docs/' + docname + '.md', docname + '.md')
        if docname == app.config.root_doc:
            source[0] += INDEX_TOCTREE


def setup(app):
    app.connect('builder-inited', generate)
    app.connect('source-read', read_source)
    # before napoleon (priority 500) parses the numpy sections
    app.connect('autodoc-process-docstring', house_docstrings.process_docstring, priority=400)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
