"""The quiz bank and its checkers: every question well formed with exactly one correct answer,
every id a notebook uses exists, ``check`` / the widget / the terminal quiz agree, and the
experiment rules compute what they claim."""
import argparse
import contextlib
import glob
import io
import json
import os
import re

import pytest

from gluon_opt.teaching.quiz import cli, engine as quiz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COURSE = os.path.join(ROOT, 'course')
ALL = quiz.all_questions()
IDS = [q.id for q in ALL]


def _notebook_ids():
    """(notebook, id, uses) for every quiz.ask/quiz.check call in a course notebook."""
    found = []
    for path in sorted(glob.glob(os.path.join(COURSE, '*.ipynb'))):
        with open(path, encoding='utf-8') as f:
            nb = json.load(f)
        for cell in nb['cells']:
            if cell['cell_type'] != 'code':
                continue
            source = ''.join(cell['source'])
            for m in re.finditer(r"quiz\.(?:ask|check)\(\s*['\"]([^'\"]+)['\"]", source):
                found.append((os.path.basename(path), m.group(1)))
    return found


def test_bank_exists_and_ids_are_unique():
    assert quiz.chapters(), 'no question bank found in %s' % quiz.BANK_DIR
    assert len(IDS) == len(set(IDS)), sorted(i for i in IDS if IDS.count(i) > 1)


@pytest.mark.parametrize('chapter', quiz.chapters())
def test_every_bank_file_parses_and_validates(chapter):
    path = os.path.join(quiz.BANK_DIR, 'ch%02d.json' % chapter)
    with open(path, encoding='utf-8') as f:
        data = json.load(f)
    assert data['chapter'] == chapter and data['title'].strip()
    assert 3 <= len(data['questions']) <= 8
    assert any(q['kind'] == 'experiment' for q in data['questions']), \
        'every chapter needs a question about the learner\'s own experiment'


@pytest.mark.parametrize('q', ALL, ids=IDS)
def test_exactly_one_correct_answer(q):
    assert q.explanation.strip() and q.prompt.strip()
    if q.kind == 'choice':
        verdicts = [quiz.check(q.id, i) for i in range(len(q.data['choices']))]
        assert sum(v.correct for v in verdicts) == 1
        # the text of a choice is accepted as well as its index
        assert all(quiz.check(q.id, c).correct == v.correct
                   for c, v in zip(q.data['choices'], verdicts))
    elif q.kind == 'numeric':
        answer = q.data['answer']
        assert quiz.check(q.id, answer)
        assert not quiz.check(q.id, answer + 10 * max(abs(answer), 1.0))
        assert not quiz.check(q.id, 'not a number')


def test_every_id_used_in_a_notebook_exists():
    used = _notebook_ids()
    assert used, 'no notebook asks a quiz question'
    missing = [(nb, i) for nb, i in used if i not in IDS]
    assert not missing


def test_every_notebook_ends_with_a_quiz_including_an_experiment_question():
    by_nb = {}
    for nb, i in _notebook_ids():
        by_nb.setdefault(nb, []).append(i)
    for nb, ids in by_nb.items():
        assert len(ids) >= 3, nb
        assert any(quiz.question(i).kind == 'experiment' for i in ids), nb


def _bank(tmp_path, monkeypatch, questions, chapter=99):
    (tmp_path / ('ch%02d.json' % chapter)).write_text(json.dumps(
        {'chapter': chapter, 'title': 'test', 'questions': questions}))
    monkeypatch.setattr(quiz, 'BANK_DIR', str(tmp_path))
    monkeypatch.setattr(quiz, '_CACHE', {})


def test_malformed_questions_are_rejected(tmp_path, monkeypatch):
    base = {'id': 'ch99-x', 'kind': 'choice', 'prompt': 'p', 'explanation': 'e',
            'choices': ['a', 'b'], 'answer': 0}
    bad = [dict(base, answer=2), dict(base, choices=['a', 'a']), dict(base, explanation=''),
           dict(base, id='ch98-x'), dict(base, kind='essay'),
           {'id': 'ch99-x', 'kind': 'numeric', 'prompt': 'p', 'explanation': 'e'},
           {'id': 'ch99-x', 'kind': 'experiment', 'prompt': 'p', 'explanation': 'e',
            'rule': {'op': 'exec', 'of': 'x'}},
           {'id': 'ch99-x', 'kind': 'experiment', 'prompt': 'p', 'explanation': 'e',
            'rule': {'op': 'argmin', 'of': 'x'}, 'answer': 'a'}]
    for entry in bad:
        _bank(tmp_path, monkeypatch, [entry])
        with pytest.raises(quiz.QuizError):
            quiz.load(99)


def test_experiment_rules(tmp_path, monkeypatch):
    exp = {'kind': 'experiment', 'prompt': 'p', 'explanation': 'it was {answer}'}
    _bank(tmp_path, monkeypatch, [
        dict(exp, id='ch99-min', rule={'op': 'argmin', 'of': 'res', 'key': 'loss'}),
        dict(exp, id='ch99-max', rule={'op': 'argmax', 'of': 'res.sgd'}),
        dict(exp, id='ch99-val', rule={'op': 'value', 'of': 'res.adam.loss'}),
        dict(exp, id='ch99-ratio', rule={'op': 'ratio', 'of': 'a', 'over': 'b'},
             tolerance=0.01, tolerance_kind='abs'),
        dict(exp, id='ch99-gt', rule={'op': 'greater', 'of': 'a', 'than': 'b'}),
    ])
    res = {'sgd': {'loss': 0.5, 'time': 3.0}, 'adam': {'loss': 0.25, 'time': 1.0},
           'nan': {'loss': float('nan'), 'time': 0.0}}
    assert quiz.choices_for('ch99-min', res=res) == ['sgd', 'adam', 'nan']
    assert quiz.check('ch99-min', 'adam', res=res)
    assert quiz.check('ch99-min', 1, res=res)          # index into the computed choices
    assert not quiz.check('ch99-min', 'nan', res=res)  # a diverged run never wins
    assert quiz.check('ch99-max', 'time', res=res)
    assert str(quiz.check('ch99-min', 'sgd', res=res)) == 'Not quite: the answer is adam. it was adam'
    assert quiz.check('ch99-val', 0.26, res=res) and not quiz.check('ch99-val', 0.3, res=res)
    assert quiz.check('ch99-ratio', 2.005, a=4.0, b=2.0)
    assert not quiz.check('ch99-ratio', 2.02, a=4.0, b=2.0)
    assert quiz.check('ch99-gt', 'yes', a=3, b=2) and quiz.check('ch99-gt', 'no', a=1, b=2)
    with pytest.raises(quiz.QuizError, match='pass it as a keyword'):
        quiz.check('ch99-min', 'adam')
    with pytest.raises(quiz.QuizError):
        quiz.check('ch99-val', 1.0, res={'adam': {'loss': 'fast'}})


def _press(box, answer):
    """Answer through the widget as a learner does: tick a choice or type in the box, then
    press Check. Returns the feedback's HTML."""
    if box.options:
        for option in box.options:
            option.value = option.description == answer
    else:
        box.entry.value = answer
    box.on_check()
    return box.feedback.value


def test_widget_gives_the_verdict_check_gives():
    pytest.importorskip('ipywidgets')
    for q in ALL:
        if q.kind == 'experiment':
            continue
        box = quiz._widget(q, {})
        if q.kind == 'choice':
            right, wrong = q.data['choices'][q.data['answer']], q.data['choices'][0]
            if wrong == right:
                wrong = q.data['choices'][1]
        else:
            right, wrong = repr(q.data['answer']), repr(q.data['answer'] * 3 + 1)
        assert 'gluon-opt-quiz-hint' in _press(box, wrong), q.id
        shown = _press(box, right)
        assert 'gluon-opt-quiz-correct' in shown and 'Correct!' in shown, q.id
        assert quiz.check(q.id, right if q.kind == 'numeric'
                          else q.data['choices'].index(right)).correct


def test_widget_choices_behave_as_radio_buttons_and_render_maths():
    pytest.importorskip('ipywidgets')
    box = quiz._widget(quiz.question('ch01-update-rule'), {})
    a, b = box.options[0], box.options[1]
    a.value = True
    b.value = True
    assert [o.value for o in box.options] == [False, True, False, False]
    box.on_check()
    assert 'Correct!' in box.feedback.value
    html = box.children[1].value  # the prompt, an HTMLMath widget
    assert type(box.children[1]).__name__ == 'HTMLMath' and 'Gradient descent' in html
    # feedback is a coloured, wrapping HTML box in the notebook's text font, not monospace
    style = box.feedback.value
    assert 'white-space: normal' in style and 'font-family' in style and 'border-left' in style


def test_widget_two_tries_then_answer_and_show_answer():
    pytest.importorskip('ipywidgets')
    box = quiz._widget(quiz.question('ch01-update-rule'), {})
    assert 'Pick an answer first' in (box.on_check() or box.feedback.value)
    right = r'$w \leftarrow w - \eta g$'  # rendered by MathJax in the widget
    first = _press(box, r'$w \leftarrow w + \eta g$')
    assert 'gluon-opt-quiz-hint' in first and 'one more try' in first.lower()
    assert right not in first  # the hint does not give the answer away
    second = _press(box, r'$w \leftarrow w - g/\eta$')
    assert 'gluon-opt-quiz-answer' in second and 'the answer is ' + right in second
    box = quiz._widget(quiz.question('ch01-update-rule'), {})
    box.on_show()
    assert 'gluon-opt-quiz-shown' in box.feedback.value
    assert 'The answer is %s.' % right in box.feedback.value


def test_widget_number_box_says_not_a_number():
    pytest.importorskip('ipywidgets')
    box = quiz._widget(quiz.question('ch03-amplification'), {})  # the answer is 20
    for junk in ['abc', '2^3', '1/0', '__import__("os")']:
        shown = _press(box, junk)
        assert 'Not a number' in shown and 'gluon-opt-quiz-invalid' in shown, junk
    assert box.attempt.wrong == 0  # junk costs no try
    assert 'Type a number first' in _press(box, '   ')
    assert 'Correct!' in _press(box, '1/0.05')  # was read as 10.05 by the old number box


def test_attempt_hint_then_answer():
    attempt = quiz.Attempt('ch03-amplification')
    first = attempt.submit('5')
    assert first.kind == 'hint' and not first.final
    assert str(first) == ('Not quite. Your number is too small. ' +
                          quiz.question('ch03-amplification').data['hint'] +
                          ' One more try before the answer is shown (or press Show answer).')
    assert attempt.submit('1e9').kind == 'answer'
    assert 'the answer is 20.' in str(attempt.submit('1e9'))  # stays revealed
    assert attempt.submit('20').correct
    attempt = quiz.Attempt('ch03-amplification', reveal_how='type ? to see it')
    assert attempt.submit('100').body.startswith('Your number is too large.')
    assert attempt.submit('abc').kind == 'invalid' and attempt.wrong == 1
    assert attempt.submit('').kind == 'empty' and attempt.submit(None).kind == 'empty'
    assert attempt.submit('20').kind == 'correct' and attempt.solved
    attempt = quiz.Attempt('ch01-update-rule')
    for junk in [7, 'z', 'w <- w', True]:
        assert str(attempt.submit(junk)).startswith('Not one of the choices:')
    assert attempt.wrong == 0 and attempt.submit('w ← w - η g').correct  # the plain text
    revealed = quiz.Attempt('ch01-update-rule').reveal()
    assert revealed.kind == 'shown' and revealed.final
    assert str(revealed).startswith('The answer is w ← w - η g.')


def test_attempt_for_an_experiment_question():
    results = {'lr=0.1': 1.0, 'lr=0.5': 0.01}
    with pytest.raises(quiz.QuizError):
        quiz.Attempt('ch01-ravine-best')  # its values are missing
    attempt = quiz.Attempt('ch01-ravine-best', results=results)
    assert attempt.submit('lr=0.1').kind == 'hint'
    assert attempt.submit(0).kind == 'answer'
    assert quiz.Attempt('ch01-ravine-best', results=results).submit(1).correct


def test_bank_hints_and_maths(tmp_path, monkeypatch):
    _bank(tmp_path, monkeypatch, [
        {'id': 'ch99-rule', 'kind': 'choice', 'prompt': r'Which is the update, $w_t$?',
         'choices': [r'$w \leftarrow w - \eta g$', r'$w \leftarrow w + \eta g$'], 'answer': 0,
         'hint': r'Which way does $-g$ point?',
         'explanation': r'Against the gradient: $\frac{1}{1-\mu}$ costs \$0.'}])
    attempt = quiz.Attempt('ch99-rule')
    assert str(attempt.submit(1)) == ('Not quite. Which way does -g point? One more try '
                                      'before the answer is shown (or press Show answer).')
    assert str(attempt.submit(1)) == ('Not quite: the answer is w ← w - η g. Against the '
                                      'gradient: 1/(1-μ) costs $0.')
    assert quiz.render_text('ch99-rule') == ('[ch99-rule] Which is the update, w_t?\n'
                                             '   a) w ← w - η g\n   b) w ← w + η g')
    # a choice is accepted as written in the bank and as the terminal shows it
    assert quiz.check('ch99-rule', r'$w \leftarrow w - \eta g$')
    assert quiz.check('ch99-rule', 'w ← w - η g') and quiz.check('ch99-rule', 'a') is not None
    assert quiz.to_html(r'$a<b$ and `x <- y` \$') == r'$a&lt;b$ and <code>x &lt;- y</code> \$'
    base = {'id': 'ch99-x', 'kind': 'choice', 'prompt': 'p', 'explanation': 'e',
            'choices': ['a', 'b'], 'answer': 0}
    for bad in [dict(base, prompt='costs $5'), dict(base, choices=['$x', 'b']),
                dict(base, explanation=r'$\frac{1}{2$'), dict(base, hint=''),
                dict(base, hint='it is {answer}')]:
        _bank(tmp_path, monkeypatch, [bad])
        with pytest.raises(quiz.QuizError):
            quiz.load(99)


@pytest.mark.parametrize('tex,text', [
    (r'$w \gets w - \eta \nabla f(w)$', 'w ← w - η ∇f(w)'),
    (r'$\frac{\eta}{\sqrt{\hat{v}_t} + \epsilon}$', 'η/(√v̂_t + ε)'),
    (r'$1 + \mu + \mu^2 + \dots$', '1 + μ + μ² + dots'),
    (r'$\|g\|_2 \le c$, $\lambda_{max}$', '||g||_2 ≤ c, λ_max'),
    (r'$x^{t+1}$ \$3', 'x^(t+1) $3'),
    ('no maths: w <- w - lr * g', 'no maths: w <- w - lr * g'),
])
def test_plain_makes_maths_readable(tex, text):
    assert quiz.plain(tex) == text


@pytest.mark.parametrize('text,value', [
    ('0.2', 0.2), (' -3 ', -3.0), ('1e-3', 1e-3), ('1/0.05', 20.0), ('2 / 10', 0.2),
    ('1 / (1 - 0.95)', 1 / (1 - 0.95)), ('5,000', 5000.0), ('2,000,000', 2e6),
    ('\u22122', -2.0), ('3 × 4', 12.0), (7, 7.0), (0.5, 0.5)])
def test_parse_number_reads_numbers_and_simple_fractions(text, value):
    assert quiz.parse_number(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize('text', [
    'abc', '', '   ', '1,5', '2^3', '2**3', '1/0', 'inf', 'nan', '1e999', '1e308 * 10',
    '1j', 'True', 'x', '(1, 2)', '[1]', '__import__("os").system("echo hi")',
    'open("f")', '1 if 1 else 2', '9' * 101, None, True, [1], float('nan')])
def test_parse_number_refuses_everything_else(text):
    with pytest.raises(quiz.NotANumber):
        quiz.parse_number(text)


def test_numeric_check_reads_text_with_parse_number():
    assert quiz.check('ch03-amplification', '1/0.05')
    assert quiz.check('ch03-amplification', '20')
    assert not quiz.check('ch03-amplification', 'abc')
    assert not quiz.check('ch03-amplification', '1/0.05 + 5')


def test_fallback_says_how_to_get_the_interactive_quiz(monkeypatch):
    pytest.importorskip('ipywidgets')
    import IPython.display
    shown = []
    monkeypatch.setattr(quiz, '_in_jupyter', lambda: True)
    monkeypatch.setattr(IPython.display, 'display', lambda obj, raw=False: shown.append(obj))
    quiz.ask('ch01-update-rule')
    quiz.ask('ch01-ravine-best', results={'lr=0.1': 1.0, 'lr=0.5': 0.01})
    (plain_q, exp_q) = shown
    assert 'application/vnd.jupyter.widget-view+json' in plain_q
    text = plain_q['text/plain']
    assert text.startswith(quiz.render_text('ch01-update-rule'))
    assert 'run this cell in Jupyter' in text and 'Run > Run All Cells' in text
    assert "quiz.check('ch01-update-rule', <answer>)" in text
    assert "quiz.check('ch01-ravine-best', <answer>, results=...)" in exp_q['text/plain']
    assert text == quiz.fallback_text('ch01-update-rule')
    page = plain_q['text/html']
    assert 'run this cell in Jupyter' in page
    assert r'b) $w \leftarrow w - \eta g$<br>' in page  # JupyterLab typesets it
    assert '<script' not in page


def _run_cli(argv):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out = io.StringIO()
    code = cli.run(parser.parse_args(argv), out=out)
    return code, out.getvalue()


@pytest.mark.parametrize('chapter', quiz.chapters())
def test_terminal_quiz_agrees_with_check(chapter):
    askable = [q for q in quiz.load(chapter) if q.kind != 'experiment']
    right = [chr(ord('a') + q.data['answer']) if q.kind == 'choice' else str(q.data['answer'])
             for q in askable]
    code, text = _run_cli([str(chapter), '--answers'] + right)
    assert code == 0 and 'Score: %d / %d' % (len(askable), len(askable)) in text
    for q, typed in zip(askable, right):
        verdict = quiz.check(q.id, cli.parse_answer(typed, quiz.choices_for(q.id)))
        assert verdict.correct and str(verdict) in text
    wrong = [('b' if a == 'a' else 'a') if q.kind == 'choice' else '1e9'
             for q, a in zip(askable, right)]
    code, text = _run_cli(['ch%02d' % chapter, '--answers'] + wrong)
    assert code == 1 and 'Score: 0 / %d' % len(askable) in text


def test_terminal_quiz_usage():
    code, text = _run_cli([])
    assert code == 0 and 'What an optimizer is' in text
    assert _run_cli(['42'])[0] == 2
    assert _run_cli(['1', '--answers', 'a'])[0] == 2


def test_terminal_quiz_interactive():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    # ch01: update-rule (b), lr-border (0.2), trainer-step (b); experiment questions skipped
    typed = iter(['z', 'a', 'b',      # not a choice (no try lost), wrong: a hint, right
                  'abc', '1', '?',    # not a number (no try lost), too large, show the answer
                  'c', 'd'])          # two wrong tries: the answer
    out = io.StringIO()

    def read(prompt):
        try:
            return next(typed)
        except StopIteration:
            raise EOFError
    code = cli.run(parser.parse_args(['1']), out=out, read=read)
    text = out.getvalue()
    assert code == 1 and 'Score: 1 / 3' in text
    assert text.count('One more try before the answer is shown (or type ? to see it).') == 3
    assert "Not a number: 'abc' is not a number" in text and 'too large' in text
    assert "Not one of the choices: 'z'; answer with a letter from a to d." in text
    assert 'The answer is 0.2.' in text and 'Not quite: the answer is Rescales' in text


def test_ask_prints_outside_jupyter(capsys):
    quiz.ask('ch01-update-rule')
    text = capsys.readouterr().out
    assert '[ch01-update-rule]' in text and 'b) w ← w - η g' in text
