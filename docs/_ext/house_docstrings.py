"""Read gluon_opt's docstrings as they are written for ``help()``, before napoleon parses them.

The docstrings (summary, update rule, parameters, example, paper) use the numpy layout, in
ways that numpydoc's and reST's grammars read differently from a person:

* a ``Parameters`` section ends where an unindented paragraph follows a blank line
  (numpydoc wants two blank lines, and otherwise takes the paragraph for a parameter);
* an entry ``name : float, default 0.9 (the paper's)`` has its explanation on the type's
  line (Sphinx makes the whole type line into cross-references, where inline markup breaks);
* lists of ``name : description`` entries stand without a section header (the attributes of
  a record, the parameters every optimizer shares), some entries without an indented
  continuation (reST then reads the run as one paragraph);
* a usage block is indented under a paragraph without ``::`` (reST: a block quote);
* ``|g|`` is an absolute value (reST: a substitution).

``read(lines)`` rewrites those, in place, into what reST reads the way a person does; a
docstring written in reST already is left as it is.
"""
import re

#: napoleon's numpy sections whose body is a list of ``name : type`` entries
ENTRY_SECTIONS = {'parameters', 'params', 'args', 'arguments', 'other parameters',
                  'keyword args', 'keyword arguments', 'attributes', 'returns', 'return',
                  'yields', 'yield', 'raises', 'raise', 'warns', 'receives', 'methods'}
_UNDERLINE = re.compile(r'^[=\-`:\'"~^_*+#<>]{2,}\s*$')
_NAMES = r'\*{0,2}[A-Za-z_][\w.]*(?:\s*,\s*\*{0,2}[A-Za-z_][\w.]*)*'
#: ``name : type`` or ``a, b : description`` (the entries of a list)
_ENTRY = re.compile(r'^(%s) : (\S.*)$' % _NAMES)
#: a bare ``name`` (numpydoc allows an entry without a type)
_BARE = re.compile(r'^%s$' % _NAMES)
_BULLET = re.compile(r'^(\s*)([-*+]|\d+[.)]|#\.)\s+')


def _indent(line):
    return len(line) - len(line.lstrip())


def _section(lines, i):
    """The lower-cased title when a section starts at line ``i``, else None."""
    if i + 1 < len(lines) and lines[i].strip() and not lines[i][0].isspace() \
            and _UNDERLINE.match(lines[i + 1]):
        return lines[i].strip().lower()
    return None


_BRACKETS = {'(': 1, '[': 1, ')': -1, ']': -1}


def _closing(text, start):
    """The index of the bracket closing the one at ``text[start]``, or None."""
    depth = 0
    for k in range(start, len(text)):
        depth += _BRACKETS.get(text[k], 0)
        if depth == 0:
            return k
    return None


def _split_entry(rest, continuation):
    """``(type, description)`` of an entry ``name : rest`` (``continuation`` its indented
    lines): the type ends where an explanation starts, at ``; ``, ``: ``, ``. `` or a
    parenthesis that closes the entry (``float, default 0.9 (the paper's)``), outside any
    parentheses. Sphinx shows a type as cross-references, where inline markup breaks: a type
    that would keep some becomes part of the description."""
    text = ' '.join([rest] + [c.strip() for c in continuation])
    for match in re.finditer(r'; |: |\. | \(', text):
        kind, at = match.group(0), match.start()
        depth = 0  # brackets of either kind: intervals are written [0, 1) and (0, 1]
        for char in text[:at]:
            depth = max(0, depth + _BRACKETS.get(char, 0))
        kind_end = at + (1 if kind == '. ' else 0)
        if depth or '`' in text[:kind_end]:
            continue
        if kind == ' (':
            close = _closing(text, at + 1)
            if close is None or text[close + 1:].strip(' .'):
                continue  # the parenthesis does not end the entry: part of the type
            return text[:at], text[at + 2:close]
        return text[:kind_end], text[at + 2:]
    if '`' in rest:
        return '', text
    return rest, ' '.join(c.strip() for c in continuation)


def _end_entry_sections(lines):
    """In an entry section (``Parameters``, ...), each entry's type is split from the
    explanation written after it (``_split_entry``), and the section ends at a blank line
    followed by an unindented line that is not an entry: napoleon needs two blank lines."""
    out, i, inside = [], 0, False
    while i < len(lines):
        title = _section(lines, i)
        if title is not None:
            inside = title in ENTRY_SECTIONS
            out += lines[i:i + 2]
            i += 2
            continue
        line = lines[i]
        if inside and line and not line[0].isspace() and out and not out[-1].strip():
            if not (_ENTRY.match(line) or _BARE.match(line)):
                out.append('')
                inside = False
        entry = _ENTRY.match(line) if inside else None
        if entry:
            i += 1
            continuation = []
            while i < len(lines) and lines[i].strip() and lines[i][0].isspace():
                continuation.append(lines[i])
                i += 1
            kind, description = _split_entry(entry.group(2), continuation)
            out.append('%s : %s' % (entry.group(1), kind) if kind else entry.group(1))
            if description:
                out.append('    ' + description)
            continue
        out.append(line)
        i += 1
    return out


def _entry_lists(lines):
    """Outside the sections, a run of ``name : description`` entries becomes a definition list:
    ``name : type`` over a description that starts a sentence already is one (the type its
    classifier); in any other entry the text after the colon is the definition. The run ends
    with a blank line."""
    out, i, section = [], 0, None
    while i < len(lines):
        title = _section(lines, i)
        if title is not None:
            section = title
            out += lines[i:i + 2]
            i += 2
            continue
        line = lines[i]
        starts_run = (_ENTRY.match(line) and (i == 0 or not lines[i - 1].strip()
                                               or lines[i - 1].rstrip().endswith(':')))
        if section in ENTRY_SECTIONS or not starts_run:
            out.append(line)
            i += 1
            continue
        if out and out[-1].strip():
            out.append('')
        while i < len(lines) and _ENTRY.match(lines[i]):
            match = _ENTRY.match(lines[i])
            i += 1
            continued = i < len(lines) and lines[i].strip() and lines[i][0].isspace()
            if continued and lines[i].lstrip()[0].isupper():
                out.append(match.group(0))  # name : type, then its description
            else:
                out += [match.group(1), '    ' + match.group(2)]
            while i < len(lines) and lines[i].strip() and lines[i][0].isspace():
                out.append(lines[i])
                i += 1
        if i < len(lines) and lines[i].strip():
            out.append('')
    return out


def _literal_blocks(lines):
    """An indented block after a blank line under a plain paragraph (its lines equally
    indented; not a list item, a directive, a doctest or a ``::`` line) is a literal block, as
    ``help()`` shows it."""
    out, literal_above = [], None  # the indent a literal block must exceed, inside one
    for i, line in enumerate(lines):
        if literal_above is not None and line.strip() and _indent(line) <= literal_above:
            literal_above = None
        if literal_above is None and line.strip() and i >= 2 and not lines[i - 1].strip() \
                and lines[i - 2].strip():
            first = i - 2
            while first > 0 and lines[first - 1].strip():
                first -= 1
            paragraph = lines[first:i - 1]
            indent = _indent(paragraph[0])
            plain = (all(_indent(p) == indent for p in paragraph)
                     and not any(p.rstrip().endswith('::') or _BULLET.match(p)
                                 or p.lstrip().startswith(('..', '>>>', '|'))
                                 or _UNDERLINE.match(p) for p in paragraph))
            if plain and _indent(line) > indent:
                out += [' ' * indent + '::', '']
                literal_above = indent
        if literal_above is None and line.rstrip().endswith('::'):
            literal_above = _indent(line)
        out.append(line)
    return out


_CODE = re.compile(r'(``.*?``|`[^`]*`)')
_BARS = re.compile(r'(?<![\w|\\])\|([^|`\s][^|`]*?)\|(?![\w|])')


def _absolute_values(lines):
    """``|g|`` is an absolute value here, never a reST substitution: escape the bars outside
    inline literals, literal blocks and directives."""
    out, literal_above = [], None
    for line in lines:
        if literal_above is not None and line.strip() and _indent(line) <= literal_above:
            literal_above = None
        if literal_above is None and not line.lstrip().startswith(('|', '+')):
            parts = _CODE.split(line)  # text, code, text, ...
            parts[::2] = [_BARS.sub(r'\\|\1\\|', part) for part in parts[::2]]
            line = ''.join(parts)
        if literal_above is None and line.rstrip().endswith('::'):
            literal_above = _indent(line)
        out.append(line)
    return out


def read(lines):
    """Rewrite a docstring's ``lines`` (a list, changed in place) as described above."""
    lines[:] = _absolute_values(_literal_blocks(_entry_lists(_end_entry_sections(
        list(lines)))))


def process_docstring(app, what, name, obj, options, lines):
    read(lines)
