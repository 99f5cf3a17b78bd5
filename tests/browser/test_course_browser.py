"""A learner's session in a real browser: JupyterLab on loopback, Debian's chromium driven by
Playwright, one chapter run top to bottom (Run > Run All Cells), then its quiz answered as a
learner would: a wrong choice (a hint, no answer yet), the right one (success), junk in a
number box ("not a number") and then a number.

Needs ``chromium`` on the PATH and Playwright for Python (``bash .ci/browser-setup`` installs
both); without them the test skips and says which is missing. Playwright drives the system
browser (``executable_path``); its own browser downloads are not used. The chapter is copied
to a temporary folder, so nothing in the repository changes. Screenshots go to a temporary
folder, or to ``$GLUON_OPT_BROWSER_SHOTS`` when set (its path is printed).
``GLUON_OPT_REQUIRE_BROWSER=1`` turns the skip into a failure (for CI). Deselect with
``-m "not browser"``.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from gluon_opt.teaching import quiz

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHAPTER = '01_what_is_an_optimizer.ipynb'  # short (about 10 s) and has both kinds of question
TRUSTED = 'trusted_' + CHAPTER
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
RUN_ALL_TIMEOUT_S = 240

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    sync_playwright = None

MISSING = '; '.join(why for why in [
    CHROMIUM is None and 'no chromium on the PATH',
    sync_playwright is None and 'Playwright for Python is not installed',
    not sys.platform.startswith('linux') and 'Linux only (it finds its processes in /proc)']
    if why)
# CI sets GLUON_OPT_REQUIRE_BROWSER=1, so that a broken setup fails instead of skipping
REQUIRED = os.environ.get('GLUON_OPT_REQUIRE_BROWSER') == '1'
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(MISSING) and not REQUIRED,
                       reason='%s (bash .ci/browser-setup installs what it needs)' % MISSING),
]


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f)


def _pids_marked(marker):
    """Our processes (the server's kernels included) by the marker in their environment."""
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open('/proc/%s/environ' % name, 'rb') as f:
                if marker.encode() in f.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


def _stop(pids, grace_s=10.0):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace_s
        while time.time() < deadline and any(os.path.exists('/proc/%d' % p) for p in pids):
            time.sleep(0.1)
            for pid in pids:  # reap our own children so they do not linger as zombies
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        pids = [p for p in pids if os.path.exists('/proc/%d' % p)]
        if not pids:
            return


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 (a free port, a random token) serving a temporary
    folder with the chapter in it; isolated settings (no news pop-up, every cell rendered);
    killed at the end, its kernels too, whatever happened."""
    if MISSING:
        pytest.fail('GLUON_OPT_REQUIRE_BROWSER=1 but %s (run bash .ci/browser-setup)' % MISSING)
    pytest.importorskip('jupyterlab')
    pytest.importorskip('ipywidgets')
    work = tmp_path / 'work'
    work.mkdir()
    shutil.copy(os.path.join(ROOT, 'course', CHAPTER), str(work / CHAPTER))
    shutil.copy(os.path.join(ROOT, 'course', CHAPTER), str(work / TRUSTED))
    settings = tmp_path / 'settings'
    # JupyterLab 4 only renders the cells in view by default; the test needs all of them
    _write_json(str(settings / '@jupyterlab' / 'notebook-extension' /
                    'tracker.jupyterlab-settings'), {'windowingMode': 'none'})
    _write_json(str(settings / '@jupyterlab' / 'apputils-extension' /
                    'notification.jupyterlab-settings'),
                {'fetchNews': 'false', 'checkForUpdates': False})
    port, token, marker = _free_port(), secrets.token_hex(16), secrets.token_hex(8)
    env = dict(os.environ, GLUON_OPT_BROWSER_TEST=marker, OMP_NUM_THREADS='2',
               JUPYTER_CONFIG_DIR=str(tmp_path / 'config'),
               JUPYTER_DATA_DIR=str(tmp_path / 'data'),  # its own notebook signatures
               JUPYTER_RUNTIME_DIR=str(tmp_path / 'runtime'),
               PYTHONPATH=os.pathsep.join([ROOT] + [p for p in os.environ.get(
                   'PYTHONPATH', '').split(os.pathsep) if p]))
    # a second copy, trusted as a learner's own saved notebook is: it shows what the saved
    # outputs render as when JupyterLab trusts them (widgets, if their state was saved)
    subprocess.run([sys.executable, '-m', 'jupyter', 'trust', str(work / TRUSTED)], env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log_path = tmp_path / 'jupyterlab.log'
    log = open(str(log_path), 'w')
    server = subprocess.Popen(
        [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1',
         '--port=%d' % port, '--ServerApp.port_retries=0', '--IdentityProvider.token=' + token,
         '--ServerApp.root_dir=' + str(work), '--LabApp.user_settings_dir=' + str(settings),
         '--LabApp.workspaces_dir=' + str(tmp_path / 'workspaces'),
         '--ServerApp.log_level=WARN'] + (['--allow-root'] if os.geteuid() == 0 else []),
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
        cwd=str(work), start_new_session=True)
    base = 'http://127.0.0.1:%d' % port
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen('%s/api/status?token=%s' % (base, token),
                                            timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    log.flush()
                    pytest.fail('JupyterLab did not start:\n' + log_path.read_text()[-3000:])
                time.sleep(0.3)
        yield {'url': base, 'token': token, 'dir': work, 'log': log_path}
    finally:
        _stop([server.pid] + [p for p in _pids_marked(marker) if p != server.pid])
        log.close()


def _shots_dir(tmp_path):
    where = os.environ.get('GLUON_OPT_BROWSER_SHOTS') or str(tmp_path / 'screenshots')
    os.makedirs(where, exist_ok=True)
    print('screenshots in', where)
    return where


def _wait_idle(page, timeout_s):
    """Until the kernel is idle with no cell left at [*], and either every code cell has
    run (a number in its prompt) or one raised an error (which stops Run All)."""
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
            const idle = !indicator || indicator.getAttribute('data-status') === 'idle';
            const ran = prompts.map(p => /\\[\\d+\\]/.test(p.textContent));
            const failed = [...document.querySelectorAll('.jp-OutputArea-output')].some(
                o => o.textContent.includes('Traceback'));
            return idle && prompts.length > 0
                && !prompts.some(p => p.textContent.includes('[*]'))
                && (ran.every(Boolean) || (failed && ran.some(Boolean)));
        }""", timeout=timeout_s * 1000)


def _open(page, lab, name, kernel=True):
    """Open a notebook alone (a fresh workspace) and wait for its kernel; returns its panel."""
    page.goto('%s/lab/tree/%s?reset&token=%s' % (lab['url'], name, lab['token']))
    panel = page.locator('.jp-NotebookPanel').filter(visible=True)
    panel.locator('.jp-Notebook').wait_for(timeout=60000)
    if kernel:  # started (the toolbar's indicator says idle before it connects)
        page.locator('.jp-StatusBar-TextItem', has_text='| Idle').wait_for(timeout=90000)
    return panel


def _saved_quiz_outputs(panel):
    """The outputs of the quiz cells as saved in the file, before anything has run."""
    return panel.locator('.jp-CodeCell', has_text='quiz.ask(').locator('.jp-OutputArea')


def _quiz_id(widget):
    return widget.locator('.gluon-opt-quiz-id').inner_text().strip()


def _first_quiz(widgets, numeric):
    """The first quiz widget asking a bank question (not one about the run, whose answer
    only the kernel knows) with a number box, or with choices; and its id."""
    for k in range(widgets.count()):
        qid = _quiz_id(widgets.nth(k))
        q = quiz.question(qid)
        if q.kind != 'experiment' and q.is_numeric == numeric:
            return widgets.nth(k), qid
    pytest.fail('%s has no quiz question with %s' % (CHAPTER, 'a number box' if numeric
                                                      else 'choices'))


def _feedback(widget, kind):
    box = widget.locator('.gluon-opt-quiz-%s' % kind)
    box.wait_for(timeout=20000)
    return box


def test_a_learner_runs_a_chapter_and_answers_its_quiz(lab, tmp_path):
    shots = _shots_dir(tmp_path)
    started = time.time()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={'width': 1280, 'height': 900})
            # Trusted, a saved notebook would show its saved widgets, dead without a kernel
            # (Check does nothing): its quiz outputs must say how to run them instead.
            panel = _open(page, lab, TRUSTED, kernel=False)
            saved = _saved_quiz_outputs(panel)
            expect(saved.first).not_to_have_text('', timeout=20000)
            expect(saved.first).not_to_contain_text('Loading widget', timeout=20000)
            assert saved.count() >= 2
            saved.first.scroll_into_view_if_needed()
            page.screenshot(path=os.path.join(shots, '0-trusted-not-run.png'))
            for k in range(saved.count()):
                text = saved.nth(k).inner_text()
                assert 'Not interactive yet' in text, (
                    'a trusted, unrun notebook shows %r: save the course notebooks without '
                    'widget state and widget views (course/build.py)' % text[:200])

            # Untrusted (as a notebook opened for the first time), the same text shows.
            panel = _open(page, lab, CHAPTER)
            tab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current')
            assert 'jp-mod-dirty' not in (tab.get_attribute('class') or ''), (
                'the notebook shows unsaved changes the moment it opens (is its kernelspec '
                'display_name the one JupyterLab writes, "Python 3 (ipykernel)"?)')
            saved = _saved_quiz_outputs(panel)
            saved.first.scroll_into_view_if_needed()
            page.screenshot(path=os.path.join(shots, '1-opened-not-run.png'))
            assert all('Not interactive yet' in saved.nth(k).inner_text()
                       for k in range(saved.count()))

            opened = time.time()
            page.locator('.lm-MenuBar-item', has_text='Run').first.click()
            page.get_by_role('menuitem', name='Run All Cells', exact=True).click()
            _wait_idle(page, RUN_ALL_TIMEOUT_S)
            ran = time.time()
            errors = panel.locator('.jp-OutputArea-output', has_text='Traceback')
            assert errors.count() == 0, errors.first.inner_text()
            widgets = panel.locator('.gluon-opt-quiz')
            widgets.first.wait_for(timeout=30000)
            expect(widgets).to_have_count(panel.locator('.jp-CodeCell', has_text='quiz.ask(')
                                          .count(), timeout=30000)

            # A choice question: wrong first (a hint, the answer still hidden), then right.
            choice, qid = _first_quiz(widgets, numeric=False)
            choices = quiz.choices_for(qid)
            right = choices.index(quiz.expected_answer(qid))
            wrong = (right + 1) % len(choices)
            boxes = choice.locator('input[type="checkbox"]')
            assert boxes.count() == len(choices)
            choice.scroll_into_view_if_needed()
            boxes.nth(wrong).check()
            choice.screenshot(path=os.path.join(shots, '2-choice-before-check.png'))
            choice.locator('button', has_text='Check').click()
            hint = _feedback(choice, 'hint')
            assert 'One more try' in hint.inner_text()
            assert quiz.plain(choices[right]) not in hint.inner_text()
            style = hint.evaluate('e => [getComputedStyle(e).fontFamily, '
                                  'getComputedStyle(e).whiteSpace]')
            assert 'monospace' not in style[0].lower() and style[1] == 'normal', style
            choice.screenshot(path=os.path.join(shots, '3-choice-after-wrong-check.png'))
            boxes.nth(right).check()
            expect(boxes.nth(wrong)).not_to_be_checked()  # one answer at a time
            choice.locator('button', has_text='Check').click()
            assert _feedback(choice, 'correct').inner_text().startswith('Correct!')
            choice.screenshot(path=os.path.join(shots, '4-choice-after-right-check.png'))
            if '$' in quiz.question(qid).prompt:  # maths is typeset, not shown as source
                assert choice.locator('.gluon-opt-quiz-prompt mjx-container').count() > 0

            # A number question: junk is answered "not a number" and costs no try.
            number, qid = _first_quiz(widgets, numeric=True)
            number.scroll_into_view_if_needed()
            number.locator('input[type="text"]').fill('abc')
            number.locator('button', has_text='Check').click()
            assert 'Not a number' in _feedback(number, 'invalid').inner_text()
            number.screenshot(path=os.path.join(shots, '5-number-junk.png'))
            number.locator('input[type="text"]').fill(repr(quiz.expected_answer(qid)))
            number.locator('button', has_text='Check').click()
            assert _feedback(number, 'correct').inner_text().startswith('Correct!')
            number.screenshot(path=os.path.join(shots, '6-number-right.png'))
            page.screenshot(path=os.path.join(shots, '7-page.png'))
        finally:
            browser.close()
    print('opening both copies: %.1f s; Run All Cells: %.1f s; answering: %.1f s; the '
          'browser session: %.1f s' % (opened - started, ran - opened, time.time() - ran,
                                       time.time() - started))
