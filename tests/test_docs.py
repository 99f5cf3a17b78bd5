"""The documentation site builds with warnings as errors, and has what it promises: a page per
optimizer with its update rule as maths, the course notebooks with their recorded outputs.

The build needs the ``docs`` extra (Sphinx, myst-nb, the theme); without it the build test is
skipped. The reading of the docstrings (``docs/_ext/house_docstrings.py``) is tested here too,
without Sphinx."""
import html as htmllib
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, 'docs')
sys.path.insert(0, os.path.join(DOCS, '_ext'))

import house_docstrings  # noqa: E402

# no floating-point result: the instruction set cannot change the outcome
pytestmark = pytest.mark.isa_independent


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    """The HTML site, built once from the checkout into a temporary folder."""
    for module in ('sphinx', 'myst_nb', 'pydata_sphinx_theme'):
        pytest.importorskip(module, reason="the docs build needs the docs extra: "
                                           "pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp('docs')
    run = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q', '-b', 'html',
         '-d', str(out / 'doctrees'), DOCS, str(out / 'html')],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert run.returncode == 0, 'sphinx-build failed:\n' + run.stdout[-6000:]
    return out / 'html'


def test_every_optimizer_has_a_page_with_its_rule_as_maths(site):
    from gluon_opt.optimizers import infos
    pages = site / '_generated' / 'optimizers'
    for record in infos():
        html = (pages / (record.name + '.html')).read_text(encoding='utf-8')
        assert record.key in html and record.cls.__name__ in html, record.name
        assert record.paper.split(',')[0].replace('&', '&amp;') in html, record.name
    adam = (pages / 'adam.html').read_text(encoding='utf-8')
    # a displayed equation, from the docstring's ``.. math::`` block
    assert re.search(r'<div class="math[^"]*">\s*\\\[\\begin\{split\}', adam)
    assert r'\beta_1' in adam and 'Kingma &amp; Ba, ICLR 2015' in adam


def test_the_notebooks_are_shown_with_their_recorded_outputs(site):
    page = site / '_generated' / 'course' / '03_momentum.html'
    html = page.read_text(encoding='utf-8')
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
    assert images and all((page.parent / src).is_file() for src in images)
    with open(os.path.join(ROOT, 'course', '03_momentum.ipynb'), encoding='utf-8') as f:
        notebook = json.load(f)
    printed = [line for cell in notebook['cells'] if cell['cell_type'] == 'code'
               for output in cell.get('outputs', []) if output['output_type'] == 'stream'
               for line in ''.join(output['text']).splitlines() if line.strip()]
    text = htmllib.unescape(re.sub(r'<[^>]+>', '', html))
    # as recorded: a rerun would print other timings
    assert printed and all(line.strip() in text for line in printed)
    # the quizzes show their question (a static page cannot run the widgets)
    assert 'ch03-nesterov' in html and 'widget-state' not in html
    for name in os.listdir(os.path.join(ROOT, 'course')):
        if re.match(r'^[0-9][0-9]x?_.*\.ipynb$', name):
            assert (page.parent / (name[:-len('.ipynb')] + '.html')).is_file(), name


def test_the_guides_and_the_api_are_linked(site):
    index = (site / 'index.html').read_text(encoding='utf-8')
    for target in ('compare.html', 'api.html', '_generated/README.html',
                   '_generated/course/README.html'):
        assert 'href="%s' % target in index, target
    api = (site / 'api.html').read_text(encoding='utf-8')
    assert 'gluon_opt.Trainer' in api and '_generated/optimizers/index.html' in api


def read(text):
    lines = text.splitlines()
    house_docstrings.read(lines)
    return lines


def test_a_parameters_section_ends_at_the_next_paragraph():
    lines = read('Summary.\n\nParameters\n----------\nlr : float, default 0.1\n\n'
                 'Conventions: these.')
    assert lines[-3:] == ['', '', 'Conventions: these.']


def test_an_entry_is_split_into_type_and_explanation():
    lines = read('Parameters\n----------\nbeta : float in [0, 1), default 0.9 (the paper\'s)\n'
                 'eps : float, default 1e-8; outside the root\n'
                 'x : int (``a``) or None, default None')
    assert lines[2:] == ["beta : float in [0, 1), default 0.9", "    the paper's",
                         'eps : float, default 1e-8', '    outside the root',
                         'x', '    int (``a``) or None, default None']


def test_entries_outside_a_section_become_a_definition_list():
    lines = read('A record.\n\nname : the name\nsize : int\n    Its size.\nRest.')
    assert lines[2:] == ['name', '    the name', 'size : int', '    Its size.', '', 'Rest.']


def test_an_indented_block_under_a_paragraph_is_literal_and_bars_are_not_substitutions():
    lines = read('Usage:\n\n    tool run [--x X]\n        [--y]\n\nwhere |g| > 1.\n\n'
                 '.. math::\n\n    |g|')
    assert lines[:4] == ['Usage:', '', '::', '']
    assert r'where \|g\| > 1.' in lines and lines[-1] == '    |g|'
