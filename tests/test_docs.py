"""The documentation site: MkDocs builds it strictly (a broken link or reference fails the build),
the pages' Python imports only public names, and a real browser loads every figure of the home
page and of a family page."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ppdgm

REPO = Path(__file__).resolve().parents[1]
MKDOCS = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
pytestmark = pytest.mark.skipif(MKDOCS is None, reason="mkdocs is not installed (pip install 'ppdgm[docs]')")


def _build(config: Path, site: Path, *, execute: bool = True) -> subprocess.CompletedProcess:
    # The tutorials run while the site is built (mkdocs-jupyter): a failing cell fails it.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PPDGM_DOCS_EXECUTE": str(execute).lower()}
    return subprocess.run([MKDOCS, "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=600, cwd=config.parent, env=env)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    done = _build(REPO / "mkdocs.yml", site)
    assert done.returncode == 0, done.stderr[-3000:]
    return site


def test_the_site_builds_strictly_with_every_page_and_the_api_reference(site):
    for page in ("index.html", "getting-started/index.html", "diffusion/index.html",
                 "reference/models/index.html", "benchmarks/index.html"):
        assert (site / page).stat().st_size > 5_000, page
    reference = (site / "reference" / "inference" / "index.html").read_text()
    assert 'id="ppdgm.inference.engine.Engine"' in reference
    assert 'id="ppdgm.inference.sampling.schedulers.scheduler_sample"' in reference


def test_a_broken_link_fails_the_build(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "docs", copy / "docs", symlinks=True)
    shutil.copy(REPO / "mkdocs.yml", copy / "mkdocs.yml")
    (copy / "benchmarks").symlink_to(REPO / "benchmarks")
    (copy / "ppdgm").symlink_to(REPO / "ppdgm")
    page = copy / "docs" / "em.md"
    page.write_text(page.read_text() + "\nSee [the missing page](no-such-page.md).\n")
    done = _build(copy / "mkdocs.yml", tmp_path / "site", execute=False)
    assert done.returncode != 0 and "no-such-page.md" in done.stderr


def test_the_pages_import_only_public_names_one_line_per_example():
    for page in sorted((REPO / "docs").glob("*.md")):
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S):
            imports = re.findall(r"^from ppdgm(\S*) import \(?([^)]*?)\)?$", block, re.M | re.S)
            assert len(imports) <= 1, (page.name, block[:200])
            for module, names in imports:
                assert module == "", (page.name, f"from ppdgm{module} import ...")
                for name in filter(None, re.split(r"[,\s]+", names.strip())):
                    assert name in ppdgm.__all__, (page.name, name)


TUTORIALS = sorted(p.stem for p in (REPO / "docs" / "tutorials").glob("*.py"))


@pytest.mark.parametrize("page", ["index.html", "gan/index.html", "benchmarks/index.html",
                                  *(f"tutorials/{name}/index.html" for name in TUTORIALS)])
def test_a_browser_loads_every_figure(site, render_page, page):
    dom, shot = render_page(site / page)
    found = re.search(r"<title>images:(\d+);broken:(.*?)</title>", dom)
    assert found, dom[:300]
    least = 1 if page.startswith("tutorials/") else 3
    assert int(found.group(1)) >= least and found.group(2) == "", found.group(0)
    assert shot.stat().st_size > 20_000


def test_the_tutorials_are_rendered_executed_with_this_runs_outputs(site):
    for name in TUTORIALS:
        page = (site / "tutorials" / name / "index.html").read_text()
        assert "data:image/png;base64," in page, f"{name}: no figure in the rendered notebook"
        assert "Traceback" not in page, name
