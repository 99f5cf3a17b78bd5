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


def test_widget_gives_the_verdict_check_gives():
    widgets = pytest.importorskip('ipywidgets')
    for q in ALL:
        if q.kind == 'experiment':
            continue
        box = quiz._widget(q, {})
        entry, feedback = box.children[1], box.children[3]
        answer = q.data['choices'][1] if q.kind == 'choice' else q.data['answer']
        entry.value = answer
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):  # outside a kernel, Output prints to stdout
            box.on_click(None)
        shown = buf.getvalue().split('\r')[-1].strip()  # after clear_output's escape codes
        assert shown == str(quiz.check(q.id, answer)), q.id
    assert isinstance(widgets.Button(), widgets.Widget)


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
    askable = [q for q in quiz.load(1) if q.kind != 'experiment']
    typed = iter(['b'] * len(askable))
    out = io.StringIO()
    cli.run(parser.parse_args(['1']), out=out, read=lambda prompt: next(typed))
    assert 'Score: ' in out.getvalue()


def test_ask_prints_outside_jupyter(capsys):
    quiz.ask('ch01-update-rule')
    text = capsys.readouterr().out
    assert '[ch01-update-rule]' in text and 'b) w <- w - lr * g' in text
