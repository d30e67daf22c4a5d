"""Every code block of the README and the documentation runs as written, as a reader runs it.

Each page runs in a fresh process in a folder of its own, its blocks in the order they appear:
Python blocks share one namespace (a later block may continue an earlier one, and says so in its
first line), shell blocks run in bash with this environment's ``ppdgm`` on ``PATH`` and ``.venv``
pointing at this environment. A shell block made only of plain ``ppdgm ...`` lines runs each line
in a process of its own forked from one that imported the command line before anything ran (the
same process a shell would start, less torch's two seconds of import per line). A block that
cannot run here says why in the line above it, ``<!-- not run: REASON -->``, and the reason must
be one of :data:`REASONS`; such blocks are listed here as skipped tests, by page and line, never
dropped silently. Pages whose runnable blocks are the same (the README and the getting-started
page) run them once, under one test named after all of them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHARED = REPO.parent / "shared"

#: The only reasons a block may give for not being run.
REASONS = (
    "needs a GPU",
    "needs several processes",
    "needs the internet",
    "is the quick start, which CI runs from a fresh clone",
)
_FENCE = re.compile(r"^([ \t]*)```(\w*)\n(.*?)^[ \t]*```", re.M | re.S)
_MARK = re.compile(r"<!-- not run: (.*?) -->\s*$")


def blocks(page: Path) -> list[dict]:
    """The page's fenced blocks in order: language, code, line number and why it is not run."""
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        indent, lang, code = match.groups()
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        # A block inside a list item is indented with it.
        code = "".join(row[len(indent):] if row.startswith(indent) else row
                       for row in code.splitlines(keepends=True))
        found.append({"lang": lang, "code": code, "line": line,
                      "skip": mark.group(1) if mark else None})
    return found


def _runnable(block: dict) -> bool:
    return block["lang"] in ("python", "bash")


def _todo(page: Path) -> list[dict]:
    return [b for b in blocks(page) if _runnable(b) and b["skip"] is None]


def _page_cases():
    groups: dict[str, list[Path]] = {}  # pages that repeat another's runnable blocks run once
    skips = []
    for page in PAGES:
        todo = _todo(page)
        if todo:
            groups.setdefault(json.dumps([(b["lang"], b["code"]) for b in todo]), []).append(page)
        for b in blocks(page):
            if _runnable(b) and b["skip"] is not None:
                skips.append(pytest.param(page, b, id=f"{page.name}:{b['line']}"))
    runs = [pytest.param(pages, id="+".join(p.name for p in pages)) for pages in groups.values()]
    return runs, skips


_RUNS, _SKIPS = _page_cases()

_DRIVER = r'''
import json, os, shlex, subprocess, sys, traceback
page, blocks, env = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])


def ppdgm_commands(code):
    # The block's commands as argument lists when each is a plain `ppdgm ...` call with nothing
    # for a shell to interpret; None otherwise (the block then runs in bash).
    argvs = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] not in ("ppdgm", ".venv/bin/ppdgm") \
                or any(c in line.split("#")[0] for c in "$|&;<>()`*?~"):
            return None
        argvs.append(words[1:])
    return argvs


def command_server():
    # A process that imports the command line once, before any block computes, and forks a
    # fresh process per command: each `ppdgm` line runs in a process of its own, as from a
    # shell, without paying torch's import each time. Forking before any computation keeps
    # OpenMP's threads out of the children.
    commands, codes = os.pipe(), os.pipe()
    if os.fork():
        os.close(commands[0]), os.close(codes[1])
        return os.fdopen(commands[1], "w"), os.fdopen(codes[0])
    os.close(commands[1]), os.close(codes[0])
    import ppdgm.cli
    answers = os.fdopen(codes[1], "w")
    for request in os.fdopen(commands[0]):
        argv, cwd = json.loads(request)
        child = os.fork()
        if child == 0:
            os.chdir(cwd)
            sys.argv = ["ppdgm", *argv]
            try:
                status = ppdgm.cli.main(argv)
            except SystemExit as stop:
                status = stop.code if isinstance(stop.code, int) else 1
            except BaseException:
                traceback.print_exc()
                status = 1
            sys.stdout.flush(), sys.stderr.flush()
            os._exit(status or 0)
        answers.write(f"{os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])}\n")
        answers.flush()
    os._exit(0)


requests, statuses = command_server()
namespace = {"__name__": "__main__"}
for block in blocks:
    where = f"{page}:{block['line']}"
    print(f"--- running {where} ({block['lang']})", flush=True)
    try:
        if block["lang"] == "python":
            exec(compile(block["code"], where, "exec"), namespace)
            continue
        argvs = ppdgm_commands(block["code"])
        if argvs is None:
            subprocess.run(["bash", "-euo", "pipefail", "-c", block["code"]], check=True, env=env)
            continue
        for argv in argvs:
            sys.stdout.flush(), sys.stderr.flush()
            requests.write(json.dumps([argv, os.getcwd()]) + "\n")
            requests.flush()
            status = int(statuses.readline())
            if status != 0:
                raise RuntimeError(f"`ppdgm {shlex.join(argv)}` exited with {status}")
    except BaseException:
        traceback.print_exc()
        print(f"BLOCK FAILED: {where}", flush=True)
        sys.exit(1)
'''


def test_the_marks_are_known_and_every_runnable_block_is_python_or_bash():
    for page in PAGES:
        for b in blocks(page):
            if b["skip"] is not None:
                assert b["skip"] in REASONS, (page.name, b["line"], b["skip"])
                assert _runnable(b), (page.name, b["line"], "a mark on a block that never runs")
            if b["lang"] not in ("python", "bash", "text", ""):
                pytest.fail(f"{page.name}:{b['line']}: unknown block language {b['lang']!r}")


@pytest.mark.parametrize("pages", _RUNS)
def test_the_page_runs_as_written(pages, tmp_path):
    page = pages[0]  # the others hold the very same runnable blocks
    work = tmp_path / "work"
    work.mkdir()
    # What a reader in the repository has: .venv, and ../shared/data beside the checkout.
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED)
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONWARNINGS", None)
    todo = _todo(page)
    done = subprocess.run([sys.executable, "-c", _DRIVER, page.name, json.dumps(todo), json.dumps(env)],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]


@pytest.mark.parametrize("page, block", _SKIPS)
def test_a_block_that_cannot_run_here_says_why(page, block):
    pytest.skip(f"{page.name}:{block['line']} {block['skip']}")
