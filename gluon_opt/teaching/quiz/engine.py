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

Optional fields: ``hint`` (shown after a first wrong answer; it must not give the answer
away, and without one a generic hint is shown).

Maths: text between ``$...$`` in a prompt, choice, explanation or hint is LaTeX, rendered by
the widget (JupyterLab's MathJax) and turned into readable plain text (``plain``) in the
terminal and the text fallbacks: ``"$w \\\\leftarrow w - \\\\eta g$"`` in the JSON file reads
``w ← w - η g`` there. A literal dollar is written ``\\\\$``. Text outside ``$...$`` is shown
as written, text between backticks in a monospace font, so plain ASCII maths such as
``w <- w - lr * g`` keeps working.

Answers: for choice-like questions the 0-based index or the choice's text; for numbers, a
number, or text that ``parse_number`` reads (``0.2``, ``1e-3``, ``1/5``, ``1 / (1 - 0.9)``:
numbers with ``+ - * /`` and brackets, never evaluated as code). ``check`` gives the verdict;
``Attempt`` adds the learner's two tries (a hint after the first wrong answer, the answer
after the second or on request); ``ask`` shows the question as a widget in Jupyter (its
buttons drive an ``Attempt``, so they always agree with ``check``) and prints it elsewhere.
The terminal quiz (``gluon-opt quiz 3``, ``quiz.cli``) uses the same ``Attempt``.
"""
import ast
import glob
import html
import json
import math
import numbers
import os
import re

__all__ = ['load', 'chapters', 'title', 'parse_chapter', 'question', 'all_questions', 'validate',
           'check', 'ask', 'render_text', 'choices_for', 'expected_answer', 'Verdict',
           'Question', 'QuizError', 'BANK_DIR', 'KINDS', 'RULE_OPS', 'parse_number',
           'NotANumber', 'plain', 'to_html', 'hint', 'Attempt', 'Feedback', 'fallback_text',
           'GENERIC_HINT', 'TRIES']

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
        return plain('%s %s' % (head, self.explanation))

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
    if 'hint' in q.data:
        hint_text = q.data['hint']
        if not isinstance(hint_text, str) or not hint_text.strip():
            raise QuizError('%s: a hint must be a non-empty string' % where)
        if '{answer}' in hint_text:
            raise QuizError('%s: a hint must not give the answer ({answer})' % where)
    for text in [q.prompt, q.explanation, q.data.get('hint')] + list(choices or []):
        if isinstance(text, str):
            problem = _math_problem(text)
            if problem:
                raise QuizError('%s: %s in %r' % (where, problem, text))


# -------------------------------------------------------------------------------------------
# Text: maths between $...$ (LaTeX), rendered by MathJax in the widget and made readable as
# plain text for terminals and fallbacks.

_MATH_SPLIT = re.compile(r'(?<!\\)\$')
_GREEK = dict(zip('alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi '
                  'rho sigma tau upsilon phi chi psi omega'.split(), 'αβγδεζηθικλμνξπρστυφχψω'))
_SYMBOLS = dict({'\\' + name: letter for name, letter in _GREEK.items()},
                **{'\\varepsilon': 'ε', '\\varphi': 'φ', '\\Delta': 'Δ', '\\Sigma': 'Σ',
                   '\\Lambda': 'Λ', '\\Omega': 'Ω', '\\Theta': 'Θ', '\\Phi': 'Φ',
                   '\\leftarrow': '←', '\\gets': '←', '\\rightarrow': '→', '\\to': '→',
                   '\\cdot': '·', '\\times': '×', '\\approx': '≈', '\\le': '≤', '\\leq': '≤',
                   '\\ge': '≥', '\\geq': '≥', '\\ne': '≠', '\\neq': '≠', '\\pm': '±',
                   '\\infty': '∞', '\\nabla': '∇', '\\partial': '∂', '\\sum': 'Σ',
                   '\\odot': '⊙', '\\ln': 'ln ', '\\log': 'log ', '\\exp': 'exp ',
                   '\\|': '||', '\\{': '{', '\\}': '}', '\\$': '$', '\\%': '%',
                   '\\,': ' ', '\\;': ' ', '\\:': ' ', '\\ ': ' ', '\\!': '', '\\quad': '  ',
                   '\\left': '', '\\right': '', '\\big': '', '\\Big': ''})
_PREFIX = ('\\nabla', '\\partial', '\\sum', '\\sqrt', '\\ln', '\\log', '\\exp')
_ACCENTS = {'hat': '\u0302', 'bar': '\u0304', 'tilde': '\u0303', 'dot': '\u0307'}
_TEXT_COMMANDS = ('text', 'mathrm', 'mathbf', 'mathit', 'mathsf', 'mathtt', 'operatorname',
                  'boldsymbol', 'textrm', 'textit', 'textbf', 'mathcal')
_SUPERSCRIPT = str.maketrans('0123456789+-()n', '⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁽⁾ⁿ')
_SIMPLE = re.compile(r'[\w.\u0300-\u036f]+')


def _segments(text):
    """``[(is_math, piece), ...]``: the pieces of ``text`` between unescaped dollars."""
    parts = _MATH_SPLIT.split(text)
    return [(i % 2 == 1, part) for i, part in enumerate(parts) if part or i % 2]


def _math_problem(text):
    """Why ``text`` is not well-formed quiz maths (an odd number of dollars, unbalanced
    braces in a formula), or None."""
    parts = _MATH_SPLIT.split(text)
    if len(parts) % 2 == 0:
        return 'an unclosed $...$ (write a literal dollar as \\$)'
    for math_part in parts[1::2]:
        depth = 0
        for char in re.sub(r'\\.', '', math_part):
            depth += {'{': 1, '}': -1}.get(char, 0)
            if depth < 0:
                break
        if depth:
            return 'unbalanced braces in $%s$' % math_part
    return None


def _wrap(piece):
    return piece if len(piece) <= 1 or _SIMPLE.fullmatch(piece) else '(%s)' % piece


def _argument(tex, i):
    """The plain text of the LaTeX argument starting at ``tex[i]`` (a ``{group}``, a command
    or one character) and the index after it."""
    while i < len(tex) and tex[i] == ' ':
        i += 1
    if i >= len(tex):
        return '', i
    if tex[i] == '{':
        depth, j = 1, i + 1
        while j < len(tex) and depth:
            if tex[j] == '\\':
                j += 2
                continue
            depth += {'{': 1, '}': -1}.get(tex[j], 0)
            j += 1
        return _latex_plain(tex[i + 1:j - 1]), j
    if tex[i] == '\\':
        command = re.match(r'\\([A-Za-z]+|.)', tex[i:]).group(0)
        return _latex_plain(command), i + len(command)
    return tex[i], i + 1


def _latex_plain(tex):
    out, i = [], 0
    while i < len(tex):
        char = tex[i]
        if char == '\\' and i + 1 < len(tex):
            command = re.match(r'\\([A-Za-z]+|.)', tex[i:])
            name, i = command.group(1), i + len(command.group(0))
            if name in ('frac', 'dfrac', 'tfrac'):
                top, i = _argument(tex, i)
                bottom, i = _argument(tex, i)
                out.append('%s/%s' % (_wrap(top), _wrap(bottom)))
            elif name == 'sqrt':
                arg, i = _argument(tex, i)
                out.append('√' + _wrap(arg))
            elif name in _ACCENTS:
                arg, i = _argument(tex, i)
                out.append(arg + _ACCENTS[name])
            elif name in _TEXT_COMMANDS:
                arg, i = _argument(tex, i)
                out.append(arg)
            else:
                out.append(_SYMBOLS.get(command.group(0), name))
                if command.group(0) in _PREFIX:  # read as in LaTeX: "\\nabla f" is ∇f
                    while i < len(tex) and tex[i] == ' ':
                        i += 1
        elif char in '^_':
            arg, i = _argument(tex, i + 1)
            if char == '^' and arg and all(c in '0123456789+-()n' for c in arg):
                out.append(arg.translate(_SUPERSCRIPT))
            else:
                out.append(char + _wrap(arg))
        elif char in '{}':
            i += 1
        else:
            out.append(char)
            i += 1
    return ''.join(out)


def plain(text):
    """``text`` with its ``$...$`` maths made readable as plain text: ``$\\eta g$`` -> ``η g``,
    ``$\\frac{1}{1-\\mu}$`` -> ``1/(1-μ)``, ``$v^2$`` -> ``v²``, ``\\$`` -> ``$``."""
    return ''.join(_latex_plain(piece) if is_math else piece.replace('\\$', '$')
                   for is_math, piece in _segments(text))


def to_html(text):
    """``text`` as HTML for the widget: escaped, ``$...$`` kept for MathJax to typeset,
    text between backticks in a monospace font."""
    out = []
    for is_math, piece in _segments(text):
        if is_math:
            out.append('$%s$' % html.escape(piece, quote=False))
        else:
            pieces = html.escape(piece, quote=False).split('`')
            out.append(''.join('<code>%s</code>' % p if k % 2 else p
                               for k, p in enumerate(pieces)))
    return ''.join(out)


_NUMBER_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
               ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}
_THOUSANDS = re.compile(r'(?<=\d),(?=\d{3}(?!\d))')
_MAX_NUMBER_TEXT = 100


class NotANumber(ValueError):
    """Text that ``parse_number`` does not read as a number."""


def parse_number(text):
    """The number a learner typed: ``0.2``, ``-3``, ``1e-3``, ``5,000``, ``1/5``,
    ``1 / (1 - 0.9)``: numbers combined with ``+ - * /`` and brackets, parsed with ``ast``
    and computed here, never evaluated as code. Raises ``NotANumber`` for anything else
    (``abc``, ``2^3``, ``1/0``, ``inf``, more than 100 characters)."""
    if isinstance(text, numbers.Real) and not isinstance(text, bool):
        value = float(text)
    elif not isinstance(text, str):
        raise NotANumber('not a number: %r' % (text,))
    else:
        source = text.strip().replace('\u2212', '-').replace('×', '*').replace('÷', '/')
        if not source or len(source) > _MAX_NUMBER_TEXT:
            raise NotANumber('not a number: %r' % text)
        source = _THOUSANDS.sub('', source)
        try:
            value = _number_node(ast.parse(source, mode='eval').body)
        except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
            raise NotANumber('not a number: %r' % text) from None
    if not math.isfinite(value):
        raise NotANumber('not a finite number: %r' % (text,))
    return value


def _number_node(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _number_node(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _NUMBER_OPS:
        return _NUMBER_OPS[type(node.op)](_number_node(node.left), _number_node(node.right))
    raise ValueError('not a number')


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

    ``answer`` is the 0-based index or the text of a choice, or a number (or text that
    ``parse_number`` reads). Experiment questions need the notebook's values as keywords, as
    for ``ask``. Returns a ``Verdict`` (true when correct; prints as feedback with the
    explanation). Text that is not a number is a wrong answer here; ``Attempt`` tells the
    learner instead.
    """
    q = question(question_id)
    expected = expected_answer(q, **computed)
    explanation = q.explanation
    if q.is_numeric:
        shown = _format_number(expected)
        try:
            given = parse_number(answer)
        except NotANumber:
            given = None
        correct = given is not None and _close(given, expected, q)
    else:
        shown = str(expected)
        choices = choices_for(q, **computed)
        given = answer
        if isinstance(answer, numbers.Integral) and not isinstance(answer, bool):
            given = choices[answer] if 0 <= answer < len(choices) else None
        elif isinstance(answer, str):
            given = answer.strip()
            # a choice may be typed as its readable text (what the terminal shows)
            given = next((c for c in choices if given in (c, plain(c))), given)
        else:
            given = None
        correct = given == expected
    explanation = explanation.replace('{answer}', shown)
    return Verdict(q.id, correct, shown, given, explanation)


# -------------------------------------------------------------------------------------------
# Two tries: a hint after the first wrong answer, the answer after the second or on request

TRIES = 2
GENERIC_HINT = 'Reread the question.'


def hint(question_id):
    """The question's ``hint`` from the bank, or the generic one."""
    return question(question_id).data.get('hint', GENERIC_HINT)


class Feedback(object):
    """What a learner reads after a button: ``kind`` (``'empty'``, ``'invalid'``, ``'hint'``,
    ``'correct'``, ``'answer'`` after the last wrong try, ``'shown'`` on request), ``head``
    and ``body`` (bank text, maths in ``$...$``), and the ``verdict`` when there is one.
    ``str()`` gives plain text, ``html()`` the coloured box the widget shows."""

    # border and background colours; the text keeps a dark colour on both light and dark themes
    COLOURS = {'correct': ('#2e7d32', '#e8f5e9'), 'hint': ('#ef6c00', '#fff3e0'),
               'answer': ('#c62828', '#ffebee'), 'shown': ('#1565c0', '#e3f2fd'),
               'invalid': ('#ef6c00', '#fff3e0'), 'empty': ('#757575', '#f5f5f5')}

    def __init__(self, kind, head, body='', verdict=None):
        self.kind, self.head, self.body, self.verdict = kind, head, body, verdict

    @property
    def correct(self):
        return self.kind == 'correct'

    @property
    def final(self):
        """True once the answer is known to the learner (right, or revealed)."""
        return self.kind in ('correct', 'answer', 'shown')

    def __str__(self):
        return plain(('%s %s' % (self.head, self.body)).strip())

    __repr__ = __str__

    def html(self):
        border, background = self.COLOURS[self.kind]
        return ('<div class="gluon-opt-quiz-feedback gluon-opt-quiz-%s" style="border-left: '
                '4px solid %s; background: %s; color: #212121; padding: 6px 10px; '
                'margin-top: 4px; line-height: 1.45; white-space: normal; '
                'font-family: var(--jp-content-font-family, sans-serif)"><b>%s</b> %s</div>'
                % (self.kind, border, background, to_html(self.head), to_html(self.body)))


class Attempt(object):
    """One learner answering one question: ``submit(answer)`` and ``reveal()`` return the
    ``Feedback`` to show. The first wrong answer gets a hint (``hint``; for numbers also
    whether the guess was too large or too small), the second the answer and explanation.
    Empty input, text that is not a number and answers that are not one of the choices cost
    no try. ``reveal_how`` tells the learner
    how to see the answer without a second try (the widget's button, the terminal's ``?``)."""

    def __init__(self, question_id, reveal_how='press Show answer', **computed):
        self.question = question(question_id)
        self.computed = computed
        self.reveal_how = reveal_how
        self.wrong = 0
        self.revealed = self.solved = False
        expected_answer(self.question, **computed)  # a missing value fails now, not on Check

    def submit(self, answer):
        q = self.question
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            return Feedback('empty', 'Type a number first.' if q.is_numeric
                            else 'Pick an answer first.')
        if q.is_numeric:
            try:
                answer = parse_number(answer)
            except NotANumber:
                return Feedback('invalid', 'Not a number:', '%s is not a number I can read; '
                                'type one such as `0.2`, `1e-3` or `1/5`.' % _quote(answer))
        else:
            choices = choices_for(q, **self.computed)
            is_index = (isinstance(answer, numbers.Integral) and not isinstance(answer, bool)
                        and 0 <= answer < len(choices))
            is_text = isinstance(answer, str) and answer.strip() in (
                choices + [plain(c) for c in choices])
            if not (is_index or is_text):
                return Feedback('invalid', 'Not one of the choices:', '%s; answer with a '
                                'letter from a to %s.' % (_quote(answer),
                                                          chr(ord('a') + len(choices) - 1)))
        verdict = check(q, answer, **self.computed)
        if verdict.correct:
            self.solved = True
            return Feedback('correct', 'Correct!', verdict.explanation, verdict)
        self.wrong += 1
        if self.wrong >= TRIES or self.revealed:
            self.revealed = True
            return Feedback('answer', 'Not quite: the answer is %s.' % verdict.expected,
                            verdict.explanation, verdict)
        body = hint(q)
        if q.is_numeric:
            expected = expected_answer(q, **self.computed)
            body = 'Your number is too %s. %s' % ('large' if answer > expected else 'small',
                                                   body)
        return Feedback('hint', 'Not quite.', '%s One more try before the answer is shown '
                        '(or %s).' % (body, self.reveal_how), verdict)

    def reveal(self):
        self.revealed = True
        q = self.question
        expected = expected_answer(q, **self.computed)
        shown = _format_number(expected) if q.is_numeric else str(expected)
        return Feedback('shown', 'The answer is %s.' % shown,
                        q.explanation.replace('{answer}', shown))


def _quote(answer):
    text = str(answer)
    return repr(text if len(text) <= 40 else text[:37] + '...')


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
    lines = ['[%s] %s' % (q.id, plain(q.prompt))]
    choices = choices_for(q, **computed)
    if choices is None:
        lines.append('   (answer with a number)')
    else:
        for i, c in enumerate(choices):
            lines.append('   %s) %s' % (chr(ord('a') + i), plain(c)))
    return '\n'.join(lines)


def _check_call(q, computed):
    keywords = ''.join(', %s=...' % name for name in computed)
    return 'quiz.check(%r, <answer>%s)' % (q.id, keywords)


def fallback_text(question_id, **computed):
    """The question as a saved notebook shows it before its cell has run: the text of
    ``render_text`` and how to get the interactive quiz."""
    q = question(question_id)
    return ('%s\n   (Not interactive yet: run this cell in Jupyter with the notebook\'s kernel '
            '(Run > Run All Cells) to answer with Check; or answer in code with %s.)'
            % (render_text(q, **computed), _check_call(q, computed)))


def _fallback_html(q, computed):
    choices = choices_for(q, **computed)
    # lettered by hand: JupyterLab's sanitizer drops <ol type="a">
    items = ('<p><i>(answer with a number)</i></p>' if choices is None else
             '<p>%s</p>' % '<br>'.join('%s) %s' % (chr(ord('a') + i), to_html(c))
                                       for i, c in enumerate(choices)))
    return ('<div class="gluon-opt-quiz-static"><p><b>Quiz</b> <code>%s</code></p><p>%s</p>%s'
            '<p><i>Not interactive yet: run this cell in Jupyter with the notebook\'s kernel '
            '(Run &gt; Run All Cells) to answer with <b>Check</b>; or answer in code with '
            '<code>%s</code>.</i></p></div>'
            % (q.id, to_html(q.prompt), items, html.escape(_check_call(q, computed))))


def ask(question_id, **computed):
    """Show a question. In Jupyter: an interactive widget (the prompt with its maths, the
    choices or a number box, Check and Show answer buttons, coloured feedback: a hint after
    the first wrong answer, the answer after the second). Its saved text and HTML
    fallbacks say how to make it interactive. Elsewhere: print it, and say how to answer
    with ``quiz.check``. Returns None."""
    q = question(question_id)
    expected_answer(q, **computed)  # fail now, not on Check, when a value is missing
    if _in_jupyter():
        try:
            widget = _widget(q, computed)
        except ImportError:
            widget = None
        if widget is not None:
            from IPython.display import display
            bundle = widget._repr_mimebundle_()
            # What a viewer without the widget shows (an untrusted or unrun notebook, nbval).
            bundle['text/plain'] = fallback_text(q, **computed)
            bundle['text/html'] = _fallback_html(q, computed)
            display(bundle, raw=True)
            return None
    print(render_text(q, **computed))
    print("   check your answer with %s" % _check_call(q, computed))
    return None


# Checkbox labels render maths (radio buttons' do not), so the choices are checkboxes that
# behave as radio buttons; these rules let their labels wrap instead of being cut off.
_STYLE = ('<style>.gluon-opt-quiz .widget-checkbox {height: auto; width: auto; '
          'max-width: 100%;} .gluon-opt-quiz .widget-checkbox .widget-label-basic '
          '{white-space: normal; overflow: visible; height: auto; align-items: flex-start; '
          'line-height: 1.45;} .gluon-opt-quiz .widget-checkbox input {flex: none; '
          'margin-top: 0.3em;} .gluon-opt-quiz .widget-htmlmath {width: auto;}</style>')


def _widget(q, computed):
    import ipywidgets as widgets
    attempt = Attempt(q, **computed)
    choices = choices_for(q, **computed)
    prompt = widgets.HTMLMath(value=(
        '<div class="gluon-opt-quiz-prompt" style="line-height: 1.45"><b>Quiz</b> '
        '<code class="gluon-opt-quiz-id" style="font-size: 80%%; opacity: 0.7">%s</code><br>'
        '%s</div>' % (q.id, to_html(q.prompt))))
    if choices is None:
        entry = widgets.Text(value='', placeholder='a number, e.g. 0.2, 1e-3 or 1/5',
                             description='Answer:')
        options = []
    else:
        options = [widgets.Checkbox(value=False, description=c, indent=False,
                                    layout=widgets.Layout(width='auto', height='auto'))
                   for c in choices]
        entry = widgets.VBox(options)

        def one_at_a_time(change):
            if change['new']:
                for other in options:
                    if other is not change['owner'] and other.value:
                        other.value = False

        for option in options:
            option.observe(one_at_a_time, 'value')

    def answer():
        if choices is None:
            return entry.value
        return next((i for i, option in enumerate(options) if option.value), None)

    check_button = widgets.Button(description='Check', button_style='primary')
    show_button = widgets.Button(description='Show answer')
    feedback = widgets.HTMLMath(value='')

    def on_check(_=None):
        feedback.value = attempt.submit(answer()).html()

    def on_show(_=None):
        feedback.value = attempt.reveal().html()

    check_button.on_click(on_check)
    show_button.on_click(on_show)
    box = widgets.VBox([widgets.HTML(_STYLE), prompt, entry,
                        widgets.HBox([check_button, show_button]), feedback])
    box.add_class('gluon-opt-quiz')
    # handles for tests, which press the buttons without a browser
    box.on_click = box.on_check = on_check
    box.on_show, box.entry, box.options, box.feedback, box.attempt = (
        on_show, entry, options, feedback, attempt)
    return box
