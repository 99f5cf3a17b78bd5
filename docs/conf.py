"""Sphinx configuration of the gluon-opt documentation site.

Build it from the repository root (the ``docs`` extra installs what it needs)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Sources: the guides in ``docs/*.md`` (read in place: they also read on GitHub), the README and
the course (copied into ``docs/_generated/`` at each build by ``_ext/gluon_opt_docs.py``: the
notebooks are shown with their recorded outputs, never executed), and the API reference
generated from the docstrings (``api.rst``; one page per optimizer from its record).
"""
import os
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
# the checkout's gluon_opt, whatever else is installed (a worktree, or a wheel in the venv)
sys.path.insert(0, os.path.dirname(DOCS))
sys.path.insert(0, os.path.join(DOCS, '_ext'))

project = 'gluon-opt'
author = 'the gluon-opt developers'
copyright = author


def _version():
    import gluon_opt
    return gluon_opt.__version__


release = version = _version()

extensions = [
    'myst_nb',  # markdown (myst-parser) and notebooks
    'sphinx.ext.autodoc',
    'sphinx.ext.autosummary',
    'sphinx.ext.napoleon',  # the docstrings' numpy-style "Parameters" sections
    'sphinx.ext.mathjax',
    'gluon_opt_docs',  # _ext/: the copied course and README, the optimizer pages
]
source_suffix = {'.rst': 'restructuredtext', '.md': 'myst-nb', '.ipynb': 'myst-nb'}
root_doc = 'index'
exclude_patterns = ['_build', '**/.ipynb_checkpoints', 'jupyter_execute']
templates_path = ['_templates']

# -- notebooks: shown as recorded, never run (the course's own tests execute them) ------------
nb_execution_mode = 'off'
# the chapters' quizzes are ipywidgets, which need a kernel: the site shows the question as
# the plain text recorded beside each widget
nb_mime_priority_overrides = [
    ('html', 'application/vnd.jupyter.widget-view+json', None),
]

# -- markdown ---------------------------------------------------------------------------------
myst_enable_extensions = ['dollarmath', 'amsmath']  # the notebooks' $...$ and $$...$$
# GitHub's heading anchors, so that the guides' links such as testing.md#one-optimizer-table
# resolve on the site as they do on GitHub
myst_heading_anchors = 4

# -- API reference (_templates/autosummary/module.rst: a module's page is its docstring and members)
autosummary_generate = True
autodoc_member_order = 'bysource'
autodoc_typehints = 'none'  # signatures as written; the docstrings say the types
napoleon_google_docstring = False
napoleon_numpy_docstring = True

# -- HTML -------------------------------------------------------------------------------------
html_theme = 'pydata_sphinx_theme'
html_title = 'gluon-opt'
html_theme_options = {
    'navigation_with_keys': False,
    'show_toc_level': 2,
}
html_static_path = []
html_copy_source = False  # the sources are in the repository; a copy would double the site
