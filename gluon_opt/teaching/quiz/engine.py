"""The quiz engine: a question bank kept as data, checked the same way everywhere.

Each chapter's questions live in ``gluon_opt/teaching/quiz/bank/chNN.json``::

    {"chapter": 3, "title": "Momentum and Nesterov",
     "questions": [{"id": "ch03-ravine", "kind": "choice", "prompt": "...",
                    "choices": ["...", "..."], "answer": 1, "explanation": "..."}, ...]}

Question kinds
--------------
``choice``
    ``choices`` (a list of strings) and ``answer``, the index of the one correct choice.
``numeric``
    ``answer`` (a number) and ``tolerance`` (default 1e-6) with ``tolerance_kind`` ``"abs"``
    (default) or ``"rel"``.
``experiment``
    The correct answer is computed from values the notebook passes as keyword arguments
    (``quiz.ask('ch03-fastest', results=results)``) by a ``rule``; nothing is evaluated as
    code. The rule vocabulary (``of`` is a dotted path into the keyword arguments, each dot a
    dictionary key):

    * ``{"op": "argmin", "of": "results", "key": "final_loss"}``: the name (a key of the
      mapping) whose value, or whose value's ``key`` entry, is smallest. ``argmax`` likewise.
      The choices are the mapping's keys unless the question lists ``choices`` itself.
    * ``{"op": "value", "of": "results.sgd.final_loss"}``: a number, compared with
      ``tolerance``/``tolerance_kind`` (default relative 5%).
    * ``{"op": "ratio", "of": "a", "over": "b"}``: the number ``a / b``, compared likewise.
    * ``{"op": "greater", "of": "a", "than": "b"}``: ``"yes"`` when ``a > b`` else ``"no"``;
      the choices are ``["yes", "no"]``.

    The explanation may contain ``{answer}``, replaced by the computed answer.

Answers: for choice-like questions the 0-based index or the choice's text; for numbers, a
number. ``check`` gives the verdict; ``ask`` shows the question as a widget in Jupyter (its
Check button calls ``check``, so both always agree) and prints it elsewhere. The terminal
quiz (``gluon-opt quiz 3``, ``quiz.cli``) uses the same ``check``.
"""
import glob
import json
import math
import numbers
import os

__all__ = ['load', 'chapters', 'title', 'parse_chapter', 'question', 'all_questions', 'validate',
           'check', 'ask', 'render_text', 'choices_for', 'expected_answer', 'Verdict',
           'Question', 'QuizError', 'BANK_DIR', 'KINDS', 'RULE_OPS']

BANK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bank')
KINDS = ('choice', 'numeric', 'experiment')
RULE_OPS = ('argmin', 'argmax', 'value', 'ratio', 'greater')
_NUMERIC_OPS = ('value', 'ratio')


class QuizError(ValueError):
    """A malformed bank entry, an unknown id, or an experiment value that is missing."""


class Question(object):
    """One bank entry (the JSON fields as attributes)."""

    def __init__(self, data, chapter):
        self.data = dict(data)
        self.chapter = chapter
        self.id = data.get('id')
        self.kind = data.get('kind')
        self.prompt = data.get('prompt')
        self.explanation = data.get('explanation')
        self.rule = data.get('rule')

    @property
    def is_numeric(self):
        return self.kind == 'numeric' or (self.kind == 'experiment'
                                          and self.rule.get('op') in _NUMERIC_OPS)

    def __repr__(self):
        return 'Question(%r, kind=%r)' % (self.id, self.kind)


class Verdict(object):
    """The outcome of ``check``: ``correct`` (bool), ``expected`` (the correct answer as text),
    ``given`` and ``explanation``. Prints as the feedback a learner reads."""

    def __init__(self, question_id, correct, expected, given, explanation):
        self.id, self.correct = question_id, bool(correct)
        self.expected, self.given, self.explanation = expected, given, explanation

    def __bool__(self):
        return self.correct

    def __str__(self):
        head = 'Correct!' if self.correct else 'Not quite: the answer is %s.' % self.expected
        return '%s %s' % (head, self.explanation)

    __repr__ = __str__

    def __eq__(self, other):
        return (isinstance(other, Verdict) and (self.id, self.correct, self.expected)
                == (other.id, other.correct, other.expected))

    def __hash__(self):
        return hash((self.id, self.correct, self.expected))


# -------------------------------------------------------------------------------------------
# The bank

_CACHE = {}


def _bank_file(chapter):
    return os.path.join(BANK_DIR, 'ch%02d.json' % int(chapter))


def chapters():
    """The chapter numbers that have a question bank, in order."""
    out = []
    for path in glob.glob(os.path.join(BANK_DIR, 'ch*.json')):
        stem = os.path.basename(path)[2:-5]
        if stem.isdigit():
            out.append(int(stem))
    return sorted(out)


def parse_chapter(text):
    """``3``, ``'3'``, ``'03'`` or ``'ch03'`` -> 3."""
    if isinstance(text, numbers.Integral):
        return int(text)
    text = str(text).strip().lower()
    if text.startswith('ch'):
        text = text[2:]
    if not text.isdigit():
        raise QuizError('chapter %r: expected a number such as 3 or ch03' % text)
    return int(text)


def load(chapter):
    """The chapter's questions, in bank order, as a list of ``Question``. The bank is
    validated on load (see ``validate``)."""
    chapter = parse_chapter(chapter)
    if chapter not in _CACHE:
        path = _bank_file(chapter)
        if not os.path.exists(path):
            raise QuizError('no quiz for chapter %d (chapters with quizzes: %s)'
                            % (chapter, ', '.join(map(str, chapters())) or 'none'))
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
        questions = [Question(q, chapter) for q in data.get('questions', [])]
        for q in questions:
            validate(q)
        _CACHE[chapter] = (data.get('title', 'Chapter %d' % chapter), questions)
    return list(_CACHE[chapter][1])


def title(chapter):
    chapter = parse_chapter(chapter)
    load(chapter)
    return _CACHE[chapter][0]


def all_questions():
    """Every question of every chapter."""
    return [q for ch in chapters() for q in load(ch)]


def question(question_id):
    """The question with this id (``chNN-...``; the prefix names its chapter)."""
    if isinstance(question_id, Question):
        return question_id
    prefix = str(question_id).split('-', 1)[0]
    try:
        candidates = load(prefix)
    except QuizError:
        candidates = all_questions()
    for q in candidates:
        if q.id == question_id:
            return q
    raise QuizError('unknown question id %r' % (question_id,))


def validate(q):
    """Raise ``QuizError`` unless ``q`` is well formed: an id, a known kind, a prompt, an
    explanation, and exactly one correct answer."""
    where = 'question %r (chapter %s)' % (q.id, q.chapter)
    if not isinstance(q.id, str) or not q.id.startswith('ch%02d-' % q.chapter):
        raise QuizError('%s: the id must be a string starting with ch%02d-' % (where, q.chapter))
    if q.kind not in KINDS:
        raise QuizError('%s: kind must be one of %s' % (where, ', '.join(KINDS)))
    for field in ('prompt', 'explanation'):
        if not isinstance(q.data.get(field), str) or not q.data[field].strip():
            raise QuizError('%s: needs a non-empty %s' % (where, field))
    choices = q.data.get('choices')
    if choices is not None:
        if (not isinstance(choices, list) or len(choices) < 2
                or not all(isinstance(c, str) and c.strip() for c in choices)):
            raise QuizError('%s: choices must be a list of at least two strings' % where)
        if len(set(choices)) != len(choices):
            raise QuizError('%s: choices must be distinct (one correct answer)' % where)
    if q.kind == 'choice':
        answer = q.data.get('answer')
        if choices is None or isinstance(answer, bool) or not isinstance(answer, int) \
                or not 0 <= answer < len(choices):
            raise QuizError('%s: a choice question needs choices and an answer index' % where)
    elif q.kind == 'numeric' or (q.kind == 'experiment' and
                                 (q.rule or {}).get('op') in _NUMERIC_OPS):
        if q.kind == 'numeric':
            answer = q.data.get('answer')
            if isinstance(answer, bool) or not isinstance(answer, numbers.Real) \
                    or not math.isfinite(answer):
                raise QuizError('%s: a numeric question needs a finite number as answer' % where)
        tol = q.data.get('tolerance', 1e-6)
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0:
            raise QuizError('%s: tolerance must be a number >= 0' % where)
        if q.data.get('tolerance_kind', 'abs') not in ('abs', 'rel'):
            raise QuizError('%s: tolerance_kind must be "abs" or "rel"' % where)
        if choices is not None:
            raise QuizError('%s: a numeric question has no choices' % where)
    if q.kind == 'experiment':
        rule = q.rule
        if not isinstance(rule, dict) or rule.get('op') not in RULE_OPS:
            raise QuizError('%s: an experiment question needs a rule with op in %s'
                            % (where, ', '.join(RULE_OPS)))
        if not isinstance(rule.get('of'), str):
            raise QuizError('%s: the rule needs "of", a dotted path to a value' % where)
        needed = {'ratio': 'over', 'greater': 'than'}.get(rule['op'])
        if needed and not isinstance(rule.get(needed), str):
            raise QuizError('%s: a %s rule needs %r' % (where, rule['op'], needed))
        if rule['op'] == 'greater' and choices is not None:
            raise QuizError('%s: a greater rule has the choices yes/no' % where)
        if 'answer' in q.data:
            raise QuizError('%s: an experiment question computes its answer; remove "answer"'
                            % where)
    elif 'rule' in q.data:
        raise QuizError('%s: only experiment questions have a rule' % where)


# -------------------------------------------------------------------------------------------
# Experiment rules: a tiny vocabulary, looked up in the values the notebook passes.

def _lookup(path, computed):
    node = computed
    for part in path.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise QuizError('this question needs the value %r: pass it as a keyword, e.g. '
                            'quiz.ask(id, %s=...)' % (path, path.split('.')[0]))
    return node


def _number(value, path):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise QuizError('the value %r is not a number: %r' % (path, value))
    return value


def _scores(rule, computed):
    mapping = _lookup(rule['of'], computed)
    if not isinstance(mapping, dict) or not mapping:
        raise QuizError('%r must be a non-empty dict of name -> value' % rule['of'])
    key = rule.get('key')
    out = {}
    for name, value in mapping.items():
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise QuizError('%s[%r] has no entry %r' % (rule['of'], name, key))
            value = value[key]
        out[str(name)] = _number(value, '%s.%s' % (rule['of'], name))
    return out


def choices_for(question_id, **computed):
    """The choices shown for a question (None for numeric ones)."""
    q = question(question_id)
    if q.is_numeric:
        return None
    if q.kind == 'experiment' and q.rule['op'] == 'greater':
        return ['yes', 'no']
    if q.data.get('choices') is not None:
        return list(q.data['choices'])
    return list(_scores(q.rule, computed))


def expected_answer(question_id, **computed):
    """The correct answer: a choice's text, or a number."""
    q = question(question_id)
    if q.kind == 'choice':
        return q.data['choices'][q.data['answer']]
    if q.kind == 'numeric':
        return float(q.data['answer'])
    rule, op = q.rule, q.rule['op']
    if op in ('argmin', 'argmax'):
        scores = _scores(rule, computed)
        if any(math.isnan(v) for v in scores.values()):
            # NaN (a diverged run) counts as the worst value for both rules.
            scores = {k: (math.inf if op == 'argmin' else -math.inf) if math.isnan(v) else v
                      for k, v in scores.items()}
        pick = min if op == 'argmin' else max
        best = pick(scores, key=lambda k: scores[k])
        if q.data.get('choices') is not None and best not in q.data['choices']:
            raise QuizError('%s: the computed answer %r is not among the choices'
                            % (q.id, best))
        return best
    if op == 'value':
        return _number(_lookup(rule['of'], computed), rule['of'])
    if op == 'ratio':
        return (_number(_lookup(rule['of'], computed), rule['of'])
                / _number(_lookup(rule['over'], computed), rule['over']))
    if op == 'greater':
        a = _number(_lookup(rule['of'], computed), rule['of'])
        b = _number(_lookup(rule['than'], computed), rule['than'])
        return 'yes' if a > b else 'no'
    raise QuizError('%s: unknown rule %r' % (q.id, op))  # validate() prevents this


def _format_number(x):
    return '%.4g' % x


def _close(given, expected, q):
    tol = float(q.data.get('tolerance', 1e-6 if q.kind == 'numeric' else 0.05))
    kind = q.data.get('tolerance_kind', 'abs' if q.kind == 'numeric' else 'rel')
    if kind == 'rel':
        return abs(given - expected) <= tol * abs(expected)
    return abs(given - expected) <= tol


def check(question_id, answer, **computed):
    """The verdict on ``answer`` to question ``question_id``.

    ``answer`` is the 0-based index or the text of a choice, or a number. Experiment
    questions need the notebook's values as keywords, as for ``ask``. Returns a ``Verdict``
    (true when correct; prints as feedback with the explanation).
    """
    q = question(question_id)
    expected = expected_answer(q, **computed)
    explanation = q.explanation
    if q.is_numeric:
        shown = _format_number(expected)
        try:
            given = float(answer)
        except (TypeError, ValueError):
            given = None
        correct = (given is not None and math.isfinite(given) and _close(given, expected, q))
    else:
        shown = str(expected)
        choices = choices_for(q, **computed)
        given = answer
        if isinstance(answer, numbers.Integral) and not isinstance(answer, bool):
            given = choices[answer] if 0 <= answer < len(choices) else None
        elif isinstance(answer, str):
            given = answer.strip()
        else:
            given = None
        correct = given == expected
    explanation = explanation.replace('{answer}', shown)
    return Verdict(q.id, correct, shown, given, explanation)


# -------------------------------------------------------------------------------------------
# Showing a question

def _in_jupyter():
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == 'ZMQInteractiveShell'


def render_text(question_id, **computed):
    """The question as plain text: the prompt and lettered choices (or 'a number')."""
    q = question(question_id)
    lines = ['[%s] %s' % (q.id, q.prompt)]
    choices = choices_for(q, **computed)
    if choices is None:
        lines.append('   (answer with a number)')
    else:
        for i, c in enumerate(choices):
            lines.append('   %s) %s' % (chr(ord('a') + i), c))
    return '\n'.join(lines)


def ask(question_id, **computed):
    """Show a question. In Jupyter: an interactive widget (choices or a number box, a Check
    button, feedback with the explanation). Elsewhere: print it, and say how to answer with
    ``quiz.check``. Returns None."""
    q = question(question_id)
    text = render_text(q, **computed)
    expected_answer(q, **computed)  # fail now, not on Check, when a value is missing
    if _in_jupyter():
        try:
            widget = _widget(q, computed)
        except ImportError:
            widget = None
        if widget is not None:
            from IPython.display import display
            bundle = widget._repr_mimebundle_()
            # The plain-text fallback (static viewers, nbval) is the question itself.
            bundle['text/plain'] = text
            display(bundle, raw=True)
            return None
    print(text)
    print("   check your answer with quiz.check(%r, <answer>)" % q.id)
    return None


def _widget(q, computed):
    import ipywidgets as widgets
    choices = choices_for(q, **computed)
    prompt = widgets.HTML('<b>%s</b>' % _escape(q.prompt))
    if choices is None:
        entry = widgets.FloatText(value=0.0, description='Answer:')
    else:
        entry = widgets.RadioButtons(options=choices, value=None,
                                     layout=widgets.Layout(width='max-content'))
    button = widgets.Button(description='Check', button_style='primary')
    feedback = widgets.Output()

    def on_click(_):
        feedback.clear_output()
        with feedback:
            if entry.value is None:
                print('Pick an answer first.')
            else:
                print(check(q, entry.value, **computed))

    button.on_click(on_click)
    box = widgets.VBox([prompt, entry, button, feedback])
    box.on_click = on_click  # lets tests press the button
    return box


def _escape(text):
    return text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
