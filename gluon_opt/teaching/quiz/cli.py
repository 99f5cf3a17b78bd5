"""The terminal quiz: ``gluon-opt quiz [chapter]`` (or ``python -m gluon_opt.teaching.quiz``).

Questions about the learner's own experiment need values only the notebook computes; the
terminal skips them and says so. Answers: a letter (or the text) for choices, a number for
numeric questions (``1/5`` too, read by ``quiz.engine.parse_number``). Typed answers get two
tries as in the notebook (``quiz.engine.Attempt``: a hint after the first wrong one, the
answer after the second; ``?`` shows it at once); ``--answers`` gives one answer per
question, each getting the verdict ``quiz.engine.check`` gives.
"""
import sys

from .engine import (Attempt, NotANumber, QuizError, chapters, check, choices_for, load,
                     parse_chapter, parse_number, render_text, title)

__all__ = ['add_arguments', 'run', 'main', 'parse_answer']


def add_arguments(parser):
    parser.add_argument('chapter', nargs='?', default=None,
                        help='chapter number (e.g. 3 or ch03); without it, list the quizzes')
    parser.add_argument('--answers', nargs='+', default=None, metavar='ANSWER',
                        help='answer non-interactively, in question order (letters for '
                             'choices, numbers for numeric questions; experiment questions '
                             'are skipped and take no answer)')
    return parser


def parse_answer(text, choices):
    """A typed answer -> what ``check`` takes: a letter -> the choice's index; a number for
    numeric questions; otherwise the text itself (a choice may be typed out in full)."""
    text = text.strip()
    if choices is None:
        try:
            return parse_number(text)
        except NotANumber:
            return text
    if len(text) == 1 and text.isalpha():
        index = ord(text.lower()) - ord('a')
        if 0 <= index < len(choices):
            return index
    return text


def run(args, out=None, read=None):
    """Run the quiz described by ``args`` (from ``add_arguments``); returns the exit status
    (0 when every answered question was right, 1 otherwise, 2 on usage errors)."""
    out = out or sys.stdout
    read = read or input
    if args.chapter is None:
        out.write('Quizzes (run one with: gluon-opt quiz <chapter>):\n')
        for ch in chapters():
            out.write('  %2d  %s (%d questions)\n' % (ch, title(ch), len(load(ch))))
        return 0
    try:
        questions = load(parse_chapter(args.chapter))
    except QuizError as e:
        out.write('error: %s\n' % e)
        return 2
    answers = list(args.answers) if args.answers is not None else None
    askable = [q for q in questions if q.kind != 'experiment']
    if answers is not None and len(answers) != len(askable):
        out.write('error: --answers needs %d answers (one per question that is not about your '
                  'experiment), got %d\n' % (len(askable), len(answers)))
        return 2
    out.write('Chapter %d: %s\n\n' % (questions[0].chapter, title(questions[0].chapter)))
    right = asked = 0
    for q in questions:
        if q.kind == 'experiment':
            out.write('[%s] is about your own experiment: answer it in the notebook.\n\n' % q.id)
            continue
        choices = choices_for(q)
        out.write(render_text(q) + '\n')
        if answers is not None:
            typed = answers.pop(0)
            out.write('> %s\n' % typed)
            verdict = check(q, parse_answer(typed, choices))
            out.write('%s\n\n' % verdict)
            asked += 1
            right += verdict.correct
            continue
        feedback = _ask_in_terminal(q, choices, out, read)
        if feedback is None:  # end of input
            out.write('\n')
            break
        asked += 1
        right += feedback.correct
    out.write('Score: %d / %d\n' % (right, asked))
    return 0 if asked and right == asked else 1


def _ask_in_terminal(q, choices, out, read):
    """Read answers to ``q`` until it is answered right, revealed, or the input ends (None);
    returns the last ``Feedback``."""
    attempt = Attempt(q, reveal_how='type ? to see it')
    while True:
        try:
            typed = read('> ')
        except EOFError:
            return None
        if typed.strip() == '?':
            feedback = attempt.reveal()
        else:
            feedback = attempt.submit(parse_answer(typed, choices) if typed.strip() else '')
        out.write('%s\n' % feedback)
        if feedback.final:
            out.write('\n')
            return feedback


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog='gluon-opt quiz', description='Take a course quiz.')
    add_arguments(parser)
    return run(parser.parse_args(argv))
