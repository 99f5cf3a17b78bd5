"""Run one submission's cells inside the grading sandbox, and observe its answers.

    python -m gluon_opt.teaching.runner FD < plan.json     (results: JSON lines on FD)

This is the only part of ``gluon-opt assignment grade`` that executes student code, and it
runs inside the sandbox (``gluon_opt.teaching.sandbox``). The plan (JSON on stdin, written by
the grader) lists code cells to run in order, in one IPython shell, and *probes*: for each
check of a test cell, an expression naming the student's answer (``'myadam'``,
``learning_rate``) and the public test instances (start weights and gradients, random
matrices: never an expected answer). For a probe the runner evaluates the expression and
records ``grading.observe(check, answer, instances)``: the weights the student's optimizer
produced, the values the student's function returned, the answer's value.

One JSON line per cell goes to file descriptor FD as soon as the cell ends, so a submission
that later crashes its process keeps what it had done. Everything here is in reach of the
student's code, so the grader treats these lines as untrusted data: it reads them with size
limits, never unpickles or executes them, and decides every verdict itself.
"""
import json
import os
import signal
import sys

__all__ = ['main']


class _Budget(object):
    """Outputs kept for the feedback, at most ``limit`` characters in all."""

    def __init__(self, limit):
        self.left, self.cut = int(limit), 0

    def text(self, text):
        if len(text) <= self.left:
            self.left -= len(text)
            return text
        kept = text[:max(self.left, 0)]
        self.cut += len(text) - len(kept)
        self.left = 0
        return kept + '\n[output cut: this submission\'s outputs exceed the limit]\n'


def _outputs(captured, budget):
    out = []
    for name in ('stdout', 'stderr'):
        text = getattr(captured, name)
        if text:
            out.append({'type': 'stream', 'name': name, 'text': budget.text(text)})
    for rich in captured.outputs:
        data = {}
        for mime in ('image/png', 'image/jpeg', 'text/plain'):
            value = rich.data.get(mime)
            if isinstance(value, str) and (mime == 'text/plain' or len(value) <= budget.left):
                data[mime] = budget.text(value) if mime == 'text/plain' else value
                if mime != 'text/plain':
                    budget.left -= len(value)
        if not data:
            data['text/plain'] = '[output of type %s not shown]' % ', '.join(sorted(rich.data))
        out.append({'type': 'display', 'data': data})
    return out


class _Timeout(KeyboardInterrupt):
    """A cell ran past its time (a KeyboardInterrupt, so IPython stops the cell)."""


def _alarm(signum, frame):
    raise _Timeout()


def _error(result):
    err = result.error_before_exec or result.error_in_exec
    if err is None:
        return None
    return {'ename': type(err).__name__ if not isinstance(err, _Timeout) else 'Timeout',
            'evalue': str(err)[:2000]}


def main():
    plan = json.load(sys.stdin)
    out = os.fdopen(int(sys.argv[1]), 'w', encoding='utf-8')
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from gluon_opt.teaching import grading
    shell = InteractiveShell.instance(colors='NoColor')
    budget = _Budget(plan.get('max_output_chars', 1 << 20))
    timeout = float(plan.get('timeout', 300))
    signal.signal(signal.SIGALRM, _alarm)

    def emit(record):
        out.write(json.dumps(record) + '\n')
        out.flush()

    for cell in plan['cells']:
        record = {'index': cell['index']}
        if cell['kind'] == 'code':
            with capture_output() as captured:
                signal.setitimer(signal.ITIMER_REAL, timeout)
                try:
                    result = shell.run_cell(cell['source'], store_history=False)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            record['outputs'] = _outputs(captured, budget)
            record['error'] = _error(result)
        else:
            observations = []
            for probe in cell['probes']:
                signal.setitimer(signal.ITIMER_REAL, timeout)
                try:
                    try:
                        answer = eval(compile(probe['expr'], '<test>', 'eval'), shell.user_ns)
                    except Exception as err:  # noqa: BLE001 (e.g. NameError: not defined)
                        observations.append({'error': grading._error_text(err)})
                        continue
                    observations.append(grading.observe(probe['check'], answer,
                                                        probe['public']))
                except _Timeout:
                    observations.append({'error': 'Timeout'})
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            record['observations'] = observations
        emit(record)
    emit({'done': True, 'cut': budget.cut})


if __name__ == '__main__':
    main()
