"""The code-shape rules of the project: short functions and short lines in annfast/*.py, annfast/*.pyx, csrc/*.

Rules
-----
1. No function longer than ``MAX_FUNCTION_LINES`` (60) lines unless a reason is written beside it.

   A function's length is the number of *code lines of its body*: the lines from the line after its signature
   (its header, however many lines that takes) to its last line, without its docstring (Python, Cython), and
   without blank lines and lines that hold only a comment. Lines of a nested function or class, of a multi-line
   string other than the docstring and C preprocessor lines inside the body count: they are part of the body.
   (In C the body is the lines strictly between the line of its opening brace and that of its closing brace.)
   (Counted so, every function over 60 lines carries a reason, and all but two of those that carry one are over
   it -- ``Network._plan_fit`` (52) and the C ``AF_K(dense)`` (58, 62 from its signature to its closing brace) are
   under. A rule that counts the signature, the docstring or the comments measures the documentation, not the
   code: ``Network.fit``, 30 code lines under a 150-line docstring, would be "long".)

   The reason:
   - Python and Cython: a comment ``# long: <reason>`` on the ``def`` line (trailing) or on the comment lines
     just above it (above its decorators, if any), or a docstring line that says ``Long because <reason>``.
   - C: a comment containing ``(Over 60 lines: <reason>`` just before the function (in the comment lines that
     end on the line before its signature).

   Python functions are found with ``ast`` (``lineno`` of the ``def``, ``end_lineno``); Cython functions (``def``,
   ``cdef``, ``cpdef``, also methods) by indentation, with a small lexer that knows strings, triple-quoted
   strings, comments and brackets; C functions by matching the braces of top-level definitions with comments,
   strings, character literals and preprocessor lines skipped.
2. No line longer than ``MAX_LINE`` (120) characters in those files.

The checkers are tested on synthetic source first (``test_the_checkers_*``), so that they can fail.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 60
MAX_LINE = 120

#: C findings to fix: each entry is (file, function) for a function over the limit, or (file, line number) for a
#: long line. Empty: every C function over the limit has its reason beside it, and no line is too long.
CSRC_PENDING: set[tuple[str, object]] = set()

#: Cython findings to fix, as CSRC_PENDING. Empty.
PYX_PENDING: set[tuple[str, object]] = set()
PENDING = CSRC_PENDING | PYX_PENDING


#: the checked sources are here; tests run against an installed wheel from a copy of tests/ have none (the
#: per-file checks then have no cases, the self-tests still run)
SOURCES = (ROOT / "csrc").is_dir() and (ROOT / "annfast" / "_core.pyx").is_file()


def _py_files():
    return sorted((ROOT / "annfast").glob("*.py")) if SOURCES else []


def _pyx_files():
    return sorted((ROOT / "annfast").glob("*.pyx")) if SOURCES else []


def _c_files():
    return sorted(p for p in (ROOT / "csrc").iterdir() if p.suffix in (".c", ".h", ".inc")) if SOURCES else []


# ---- Python ---------------------------------------------------------------------------------------------------

def _py_code_lines(source: str) -> set[int]:
    """Line numbers that hold a token other than a comment or a line break (a multi-line string: all its lines)."""
    lines = set()
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def _has_long_comment(lines: list[str], first: int, def_line: int) -> bool:
    """Whether ``# long:`` stands on the def line or on the comment lines just above ``first`` (1-based lines)."""
    if re.search(r"#\s*long:", lines[def_line - 1]):
        return True
    k = first - 2
    while k >= 0 and lines[k].strip().startswith("#"):
        if re.match(r"\s*#\s*long:", lines[k]):
            return True
        k -= 1
    return False


def python_functions(source: str):
    """Yield (name, def line, code lines of the body, has a reason) for every function of Python source."""
    tree = ast.parse(source)
    code = _py_code_lines(source)
    lines = source.splitlines()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(node, clean=False)
        start = node.body[0].end_lineno + 1 if doc is not None else node.body[0].lineno
        n = len([k for k in range(start, node.end_lineno + 1) if k in code])
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        reason = _has_long_comment(lines, first, node.lineno) or (doc is not None and "Long because" in doc)
        yield node.name, node.lineno, n, reason


# ---- Cython ---------------------------------------------------------------------------------------------------

def _lex_python_like(source: str):
    """Per line: (indent, has code, starts a logical line, text without comments/strings, in a string from start).

    A small lexer for Cython (which ``tokenize`` does not read): strings ('...', "...", triple-quoted, with
    prefixes), comments and bracket depth. Text inside strings is replaced by nothing, so that ``#``, brackets and
    colons in strings do not count.
    """
    out = []
    depth = 0
    triple = None          # the quote of the triple-quoted string we are in
    continued = False      # the line before ended with a backslash
    for raw in source.splitlines():
        starts = depth == 0 and triple is None and not continued
        in_string_at_start = triple is not None
        stripped = []
        has_code = triple is not None
        i, n = 0, len(raw)
        while i < n:
            c = raw[i]
            if triple:
                if raw.startswith(triple, i):
                    i += 3
                    triple = None
                elif c == "\\":
                    i += 2
                else:
                    i += 1
                continue
            if c == "#":
                break
            if c in "'\"":
                has_code = True
                if raw.startswith(c * 3, i):
                    triple = c * 3
                    i += 3
                    continue
                i += 1
                while i < n and raw[i] != c:
                    i += 2 if raw[i] == "\\" else 1
                i += 1
                stripped.append('""')
                continue
            if not c.isspace():
                has_code = True
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth = max(0, depth - 1)
            stripped.append(c)
            i += 1
        continued = triple is None and raw.rstrip().endswith("\\")   # the next line continues this one
        indent = len(raw) - len(raw.lstrip())
        out.append((indent, has_code, starts and not in_string_at_start, "".join(stripped), in_string_at_start))
    return out


_PYX_DEF = re.compile(r"^\s*(?:async\s+)?(?:def|cpdef|cdef)\b(?!\s+(?:class|extern|struct|union|enum|packed|"
                      r"ctypedef|public\s+(?:struct|class)|readonly\b))")


def pyx_functions(source: str):
    """Yield (name, def line, code lines of the body, has a reason) for each def/cdef/cpdef function of Cython."""
    lex = _lex_python_like(source)
    lines = source.splitlines()
    n = len(lines)
    for k in range(n):
        indent, _, starts, text, _ = lex[k]
        if not starts or not _PYX_DEF.match(text):
            continue
        # the header: until the logical line ends (bracket depth back to 0) with a colon
        h = k
        while h + 1 < n and not lex[h + 1][2]:
            h += 1
        header = " ".join(lex[j][3] for j in range(k, h + 1)).strip()
        if "(" not in header or not header.endswith(":"):
            continue               # a variable declaration (cdef int x = 0), or a cdef block
        name = re.search(r"(\w+)\s*\(", header).group(1)
        # the body: every following line indented deeper, or blank, or a comment, or inside a string
        end = h
        j = h + 1
        while j < n:
            ind, code, starts_line, _, _ = lex[j]
            if code and starts_line and ind <= indent:
                break
            if code:
                end = j
            j += 1
        body = list(range(h + 1, end + 1))           # 0-based line indexes
        doc_lines: set[int] = set()
        first_code = next((j for j in body if lex[j][1]), None)
        if first_code is not None and re.match(r"\s*[rRuUbB]{0,2}(\"|')", lines[first_code]):
            d = first_code
            while d + 1 <= end and not lex[d + 1][2]:
                d += 1
            doc_lines = set(range(first_code, d + 1))
        count = len([j for j in body if lex[j][1] and j not in doc_lines])
        doc = "\n".join(lines[j] for j in sorted(doc_lines))
        first = k
        while first > 0 and lines[first - 1].strip().startswith("@"):
            first -= 1
        reason = _has_long_comment(lines, first + 1, k + 1) or "Long because" in doc
        yield name, k + 1, count, reason


# ---- C --------------------------------------------------------------------------------------------------------

def _c_blank_out(source: str) -> tuple[str, list[bool], list[bool]]:
    """Return the source with comments, strings, character literals and preprocessor lines replaced by spaces
    (line breaks kept), and per line: whether it holds code, whether it holds a comment.

    A preprocessor line (with its backslash continuations) holds code but takes no part in the brace scan.
    """
    out = []
    n = len(source)
    i = 0
    line_start = True
    code = [False]
    comment = [False]

    def newline():
        out.append("\n")
        code.append(False)
        comment.append(False)

    while i < n:
        c = source[i]
        if c == "\n":
            newline()
            i += 1
            line_start = True
            continue
        if line_start and c in " \t":
            out.append(c)
            i += 1
            continue
        if line_start and c == "#":
            while i < n and source[i] != "\n":   # a preprocessor line and its continuations
                if source[i] == "\\" and i + 1 < n and source[i + 1] == "\n":
                    newline()
                    code[-1] = True
                    i += 2
                    continue
                if source.startswith("/*", i):     # a comment on it may span lines
                    end = source.find("*/", i + 2)
                    end = n if end < 0 else end + 2
                    for ch in source[i:end]:
                        if ch == "\n":
                            newline()
                            comment[-1] = True
                    i = end
                    continue
                code[-1] = True
                out.append(" ")
                i += 1
            continue
        line_start = False
        if source.startswith("//", i):
            comment[-1] = True
            while i < n and source[i] != "\n":
                i += 1
            continue
        if source.startswith("/*", i):
            comment[-1] = True
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
            for ch in source[i:end]:
                if ch == "\n":
                    newline()
                    comment[-1] = True
                else:
                    out.append(" ")
            i = end
            continue
        if c in "\"'":
            code[-1] = True
            j = i + 1
            while j < n and source[j] != c and source[j] != "\n":
                j += 2 if source[j] == "\\" else 1
            out.append(" " * (min(j + 1, n) - i))
            i = j + 1
            continue
        if not c.isspace():
            code[-1] = True
        out.append(c)
        i += 1
    return "".join(out), code, comment


def _c_function_name(header: str) -> str | None:
    """The name of the function a top-level header (the text before a ``{``) defines, or None if it is none."""
    header = header.strip()
    if not header.endswith(")") or re.match(r"(typedef|struct|union|enum|extern)\b", header) or "=" in header:
        return None
    # the parameter list: the last top-level parenthesized group
    depth, k = 0, len(header) - 1
    while k >= 0:
        if header[k] == ")":
            depth += 1
        elif header[k] == "(":
            depth -= 1
            if depth == 0:
                break
        k -= 1
    before = header[:k].rstrip()
    m = re.search(r"(\w+\s*\([^()]*\)|\w+)$", before)   # name, or a macro-made name: AF_K(dense)
    if not m or not re.search(r"\w", before[:m.start()]):
        return None                # no return type before it: a macro invocation, not a definition
    return re.sub(r"\s+", "", m.group(1))


def c_functions(source: str):
    """Yield (name, first header line, code lines of the body, has a reason) for every C function definition."""
    blank, code, comment = _c_blank_out(source)
    lines = source.splitlines()
    line_of = [0] * (len(blank) + 1)
    ln = 1
    for i, ch in enumerate(blank):
        line_of[i] = ln
        if ch == "\n":
            ln += 1
    depth = 0
    item_start = 0     # where the current top-level item (declaration or definition) starts
    open_at = first = 0
    name = None
    for i, ch in enumerate(blank):
        if ch == "{":
            if depth == 0:
                header = blank[item_start:i]
                name = _c_function_name(header)
                if name is None and re.match(r"\s*extern\s*$", header):   # extern "C" {: not a block of its own
                    item_start = i + 1
                    continue
                open_at = i
                first = line_of[item_start + len(header) - len(header.lstrip())]
            depth += 1
        elif ch == "}":
            if depth == 0:       # the end of extern "C" { ... }
                item_start = i + 1
                continue
            depth -= 1
            if depth == 0:
                if name is not None:
                    o, c = line_of[open_at], line_of[i]
                    count = sum(1 for k in range(o + 1, c) if code[k - 1])
                    yield name, first, count, _c_reason(lines, comment, first)
                item_start = i + 1
                name = None
        elif ch == ";" and depth == 0:
            item_start = i + 1


def _c_reason(lines: list[str], comment: list[bool], first: int) -> bool:
    """Whether the comment lines that end on the line before line ``first`` contain "(Over 60 lines:"."""
    k = first - 2
    text = []
    while k >= 0 and comment[k] and lines[k].strip():
        text.append(lines[k])
        k -= 1
    return "(Over 60 lines:" in " ".join(reversed(text)).replace("\n", " ")


# ---- the checks -----------------------------------------------------------------------------------------------

def long_functions(functions, limit=MAX_FUNCTION_LINES):
    """The (name, line, length) of the functions over ``limit`` code lines that give no reason."""
    return [(name, line, n) for name, line, n, reason in functions if n > limit and not reason]


def long_lines(source: str, limit=MAX_LINE):
    """The (line number, length) of the lines longer than ``limit`` characters."""
    return [(k, len(line)) for k, line in enumerate(source.splitlines(), 1) if len(line) > limit]


def _functions_of(path: Path):
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return list(python_functions(source))
    if path.suffix == ".pyx":
        return list(pyx_functions(source))
    return list(c_functions(source))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", _py_files() + _pyx_files() + _c_files(), ids=_rel)
def test_functions_are_at_most_60_code_lines_or_say_why(path):
    found = [f for f in long_functions(_functions_of(path)) if (_rel(path), f[0]) not in PENDING]
    assert not found, (f"{_rel(path)}: functions over {MAX_FUNCTION_LINES} code lines with no reason beside them "
                       f"(name, line, code lines): {found}; split them, or say why not (see this module's docstring)")


@pytest.mark.parametrize("path", _py_files() + _pyx_files() + _c_files(), ids=_rel)
def test_lines_are_at_most_120_characters(path):
    found = [f for f in long_lines(path.read_text(encoding="utf-8")) if (_rel(path), f[0]) not in PENDING]
    assert not found, f"{_rel(path)}: lines over {MAX_LINE} characters (line, length): {found}"


def test_the_pending_findings_are_still_there():
    """CSRC_PENDING and PYX_PENDING name only findings that exist: one the rework removed must leave the list."""
    for rel, what in PENDING:
        path = ROOT / rel
        if isinstance(what, int):
            assert what in dict(long_lines(path.read_text(encoding="utf-8"))), (rel, what)
        else:
            assert what in [f[0] for f in long_functions(_functions_of(path))], (rel, what)


def test_the_checkers_find_the_functions_they_should():
    """Every function of every file is found, with a plausible length (the scanners do not skip or merge any)."""
    if not SOURCES:
        pytest.skip("the sources are not here (tests run from a copy of tests/)")
    for path in _pyx_files():
        names = {f[0] for f in _functions_of(path)}
        source = path.read_text(encoding="utf-8")
        expected = set(re.findall(r"^\s*(?:def|cpdef)\s+(\w+)\s*\(", source, re.M))
        assert expected <= names, (path, expected - names)
    for path in _c_files():
        for name, line, n, _ in _functions_of(path):
            assert 0 <= n < 400, (path, name, line, n)
    kernels = {f[0]: f for f in _functions_of(ROOT / "csrc" / "af_kernels.inc")}
    assert "AF_K(dense)" in kernels and kernels["AF_K(dense)"][3]   # its "(Over 60 lines:" note is found


# ---- the checkers on synthetic source: they can fail -------------------------------------------------------------

def _py_function(n_code: int, head: str = "def f(x):", doc: str | None = None) -> str:
    body = [f'    """{doc}"""'] if doc else []
    for k in range(n_code):
        body.append(f"    x = x + {k}")
        if k % 10 == 0:
            body += ["", "    # a comment, not counted"]
    return "\n".join([head] + body + ["    return x", ""])


def test_the_checkers_report_a_long_python_function_and_accept_one_with_a_reason():
    src = _py_function(60)          # 60 assignments and the return: 61 code lines
    assert long_functions(python_functions(src)) == [("f", 1, 61)]
    assert long_functions(python_functions(_py_function(59))) == []
    assert long_functions(python_functions(_py_function(60, "def f(x):   # long: a table, row by row"))) == []
    assert long_functions(python_functions("# long: a table, row by row\n" + _py_function(60))) == []
    assert long_functions(python_functions(_py_function(60, doc="Sum.\n\n    Long because reasons."))) == []
    # a docstring that does not say why is not a reason, and does not count
    assert long_functions(python_functions(_py_function(60, doc="Sum.\n\n    It adds.\n    More.\n"))) == [
        ("f", 1, 61)]
    method = "class A:\n" + "\n".join("    " + line for line in _py_function(60).splitlines())
    assert long_functions(python_functions(method)) == [("f", 2, 61)]
    outer = "def g():\n" + "\n".join("    " + line for line in _py_function(30).splitlines()) + "\n    return f\n"
    assert long_functions(python_functions(outer)) == []          # 32 + 1 + 1 lines: the nested one counts
    outer = outer.replace("return f", "return f\n" + "\n".join(f"    y = {k}" for k in range(28)))
    assert long_functions(python_functions(outer)) == [("g", 1, 61)]


def test_the_checkers_report_a_long_cython_function_and_accept_one_with_a_reason():
    head = "cdef int f(double x,\n           int y) except -1 nogil:"
    src = _py_function(60, head, doc="Sum, with ':' and (brackets.\n\n    Not long.") + "\ncdef int z = 1\n"
    assert long_functions(pyx_functions(src)) == [("f", 1, 61)]
    assert long_functions(pyx_functions(_py_function(59, head))) == []
    assert long_functions(pyx_functions(_py_function(60, "cpdef g(x):   # long: a table"))) == []
    assert long_functions(pyx_functions(_py_function(60, "def g(x):", doc="G.\n\n    Long because a table."))) == []
    assert list(pyx_functions("cdef class A:\n    cdef int x\ncdef enum:\n    B = 1\n"
                              'cdef extern from "a.h" nogil:\n    int h(int)\n')) == []
    method = "cdef class A:\n" + "\n".join("    " + line for line in _py_function(61, "def m(self, x):").splitlines())
    assert long_functions(pyx_functions(method)) == [("m", 2, 62)]
    # a string that looks like a dedented line does not end the function
    tricky = _py_function(30) + '    s = """\nnot code at column 0\n"""\n' + "\n".join(
        line for line in _py_function(30).splitlines()[1:])
    assert long_functions(pyx_functions(tricky)) == [("f", 1, 65)]


def _c_function(n_code: int, note: str = "") -> str:
    body = [f"    x += {k};" + (" /* a } in a comment */" if k == 3 else "") for k in range(n_code)]
    body.insert(5, '    s = "} {";')
    body.insert(6, "    /* a comment line,\n     * not counted */")
    body.insert(7, "#if 0")
    body.insert(9, "#endif")
    return f"{note}static int AF_K(f)(int x,\n                  const char *s)\n{{\n" + "\n".join(body) + "\n}\n"


def test_the_checkers_report_a_long_c_function_and_accept_one_with_a_reason():
    src = "#include <x.h>\nstruct s { int a; };\nint table[2] = {1, 2};\n" + _c_function(58)
    assert long_functions(c_functions(src)) == [("AF_K(f)", 4, 61)]   # 58 + the string, #if, #endif
    assert long_functions(c_functions(_c_function(57))) == []
    noted = _c_function(58, "/* Sums. (Over 60 lines: unrolled by hand.) */\n")
    assert long_functions(c_functions(noted)) == []
    far = _c_function(58, "/* (Over 60 lines: unrolled by hand.) */\nint g(void);\n")   # not beside it
    assert long_functions(c_functions(far)) == [("AF_K(f)", 3, 61)]
    wrapped = '#ifdef __cplusplus\nextern "C" {\n#endif\n' + _c_function(58) + "#ifdef __cplusplus\n}\n#endif\n"
    assert long_functions(c_functions(wrapped)) == [("AF_K(f)", 4, 61)]


def test_the_checkers_report_a_line_of_121_characters():
    assert long_lines("x" * 120 + "\n" + "y" * 121 + "\n") == [(2, 121)]
    assert long_lines("é" * 120) == []   # characters, not bytes
