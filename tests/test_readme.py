"""Every code block of README.md and docs/tutorial.md runs as written.

The blocks of one document run in order, in one namespace and one temporary directory (as in a
notebook: a block may use what an earlier one defined), each as its own test. Conventions:

- ```python blocks are executed; each document provides its own data (the README's classification
  examples load scikit-learn's digits in the block that first needs them).
- ```bash blocks: every ``annfast ...`` command in them (split at ``&&``; ``# comments`` dropped;
  ``> FILE`` honoured) runs with the installed command line, in the temporary directory, which holds
  ``houses.csv`` (the bundled ``annfast/data/house_prices.csv``) and ``diabetes.train`` /
  ``diabetes.test`` (PROBEN1's, from ``tests/data``). Other commands (pip, pytest) are not run.
- A comment on the line just before a block changes how it runs:
  ``<!-- test: needs matplotlib, distributed -->`` skips it unless those modules import;
  ``<!-- test: slow -->`` skips it with ANNFAST_QUICK=1; ``<!-- test: script -->`` runs it as a script of
  its own in a fresh interpreter (``__name__ == "__main__"``; what multiprocessing needs);
  ``<!-- test: skip REASON -->`` never runs it (use sparingly: say why).
"""
import importlib.util
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import QUICK

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ["README.md", "docs/tutorial.md"]
_FENCE = re.compile(r"(?:<!--\s*test:\s*(?P<marker>[^>]*?)\s*-->\s*\n)?^(?P<indent>[ \t]*)```(?P<lang>\w*)[ \t]*\n"
                    r"(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


def blocks(doc: str) -> list:
    """Return [(line, lang, marker, code)] of the python and bash blocks of a document, in order."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        if m.group("lang") not in ("python", "bash"):
            continue
        indent = m.group("indent")
        code = "".join(line[len(indent):] if line.startswith(indent) else line
                       for line in m.group("body").splitlines(keepends=True))
        out.append((text.count("\n", 0, m.start("lang")) + 1, m.group("lang"), m.group("marker") or "", code))
    return out


def _cases():
    for doc in DOCS:
        if not (ROOT / doc).exists():      # tests run from a copy of tests/ (a wheel's): nothing to check
            continue
        for index, (line, lang, _, _) in enumerate(blocks(doc)):
            yield pytest.param(doc, index, id=f"{doc}:{line}:{lang}")


def _skip_reason(marker: str):
    """Why a block with this marker does not run here, or None."""
    if marker.startswith("skip"):
        return marker
    for part in (p.strip() for p in marker.split(",")):
        if part.startswith("needs "):
            missing = [m for m in part[len("needs "):].split() if importlib.util.find_spec(m) is None]
            if missing:
                return f"needs {', '.join(missing)} (an optional extra)"
    if "slow" in marker and QUICK:
        return "slow: skipped with ANNFAST_QUICK=1"
    return None


def _needs(marker: str) -> list:
    return [m for part in marker.split(",") if part.strip().startswith("needs ")
            for m in part.strip()[len("needs "):].split()]


def _data_files(where: pathlib.Path) -> None:
    import annfast

    shutil.copy(pathlib.Path(annfast.__file__).parent / "data" / "house_prices.csv", where / "houses.csv")
    for name in ("diabetes.train", "diabetes.test"):
        shutil.copy(ROOT / "tests" / "data" / name, where / name)


def _run_bash(code: str, where: pathlib.Path) -> None:
    for raw in code.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        for command in (c.strip() for c in line.split("&&")):
            if not command.startswith("annfast"):
                continue
            words = shlex.split(command)
            out = None
            if ">" in words:
                k = words.index(">")
                words, out = words[:k], words[k + 1]
            done = subprocess.run([sys.executable, "-m", "annfast", *words[1:]], cwd=where, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, f"{command!r} failed:\n{done.stdout}\n{done.stderr}"
            if out is not None:
                (where / out).write_text(done.stdout, encoding="utf-8")


def _run_python(code: str, ns: dict, where: pathlib.Path, label: str, as_script: bool) -> None:
    if as_script:
        script = where / "block.py"
        script.write_text(code, encoding="utf-8")
        done = subprocess.run([sys.executable, str(script)], cwd=where, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{label} failed:\n{done.stdout}\n{done.stderr}"
        return
    exec(compile(code, label, "exec"), ns)


_STATE: dict = {}      # doc -> {"done": index of the last block run, "ns": namespace, "dir": its directory}


@pytest.mark.parametrize("doc, index", list(_cases()))
def test_code_block_runs(doc, index, tmp_path_factory, monkeypatch):
    all_blocks = blocks(doc)
    state = _STATE.get(doc)
    if state is None:
        where = tmp_path_factory.mktemp(doc.replace("/", "-").replace(".", "-"))
        _data_files(where)
        state = _STATE[doc] = {"done": -1, "ns": {"__name__": "__doc_block__"}, "dir": where}
    monkeypatch.chdir(state["dir"])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # blocks before this one that have not run (this test selected alone): run them first, quietly
    for k in range(state["done"] + 1, index + 1):
        line, lang, marker, code = all_blocks[k]
        reason = _skip_reason(marker)
        state["done"] = k
        if reason is not None:
            if k == index:
                pytest.skip(reason)
            continue
        label = f"{doc}:{line}"
        if lang == "bash":
            _run_bash(code, state["dir"])
        else:
            _run_python(code, state["ns"], state["dir"], label, "script" in marker)


def test_markers_name_real_modules():
    """A typo in a 'needs' marker would skip its block forever: names must be importable module names."""
    for doc in DOCS:
        if not (ROOT / doc).exists():
            continue
        for line, _, marker, _ in blocks(doc):
            for name in _needs(marker):
                assert re.fullmatch(r"[A-Za-z_][\w.]*", name), f"{doc}:{line}: bad module name {name!r}"
                assert name in {"matplotlib", "sklearn", "distributed", "dask", "tqdm", "torch", "pandas"}, (
                    f"{doc}:{line}: {name!r} is not one of annfast's optional extras")


def test_every_doc_has_blocks():
    for doc in DOCS:
        if (ROOT / doc).exists():
            assert blocks(doc), f"no code blocks found in {doc}"
    if not all((ROOT / doc).exists() for doc in DOCS):
        pytest.skip("the documents are not here (tests run from a copy of tests/)")


def test_requirements_test_txt_is_the_test_extra():
    """README's second command installs requirements-test.txt: it must list exactly the [test] extra."""
    tomllib = pytest.importorskip("tomllib")
    if not (ROOT / "requirements-test.txt").exists():
        pytest.skip("requirements-test.txt is not here (tests run from a copy of tests/)")
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    listed = [line.split("#", 1)[0].strip() for line in (ROOT / "requirements-test.txt").read_text().splitlines()]
    assert sorted(x for x in listed if x) == sorted(extra)

