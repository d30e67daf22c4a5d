"""``ppdgm tour`` writes one page whose every figure a real browser loads (headless Chromium)."""

import json
import re
import shutil
import subprocess
import time

import pytest
import torch

from ppdgm.cli import main
from ppdgm.recipes.tour import TOPICS, run_tour

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# After the page's load event, its title says how many images it has and which did not load.
PROBE = ("<script>addEventListener('load', () => { const bad = [...document.images].filter("
         "i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));"
         "document.title = 'images:' + document.images.length + ';broken:' + bad.join(','); });"
         "</script>")


def _render(page, tmp_path):
    """Chromium's DOM of ``page`` after load (with the probe added), and a screenshot of it."""
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
    shot = tmp_path / "page.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,4000",
                    probed.as_uri()], capture_output=True, timeout=120, check=True)
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", probed.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return dom, shot


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_the_page_renders_every_figure_in_a_browser(tmp_path):
    threads = torch.get_num_threads()
    result = run_tour(tmp_path / "tour", topics=["helmholtz", "em", "vae"])
    page = result.files["index"]
    html = page.read_text()
    assert html.count("<section") == 3 and html.count("<img") == 6
    dom, shot = _render(page, tmp_path)
    assert re.search(r"<title>images:6;broken:</title>", dom), dom[:300]
    assert shot.stat().st_size > 10_000
    numbers = json.loads((tmp_path / "tour" / "tour.json").read_text())
    assert set(numbers["seconds"]) == {"helmholtz", "em", "vae"}
    assert torch.get_num_threads() == threads  # the tour's one thread is given back


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_a_missing_figure_is_caught_by_the_browser_check(tmp_path):
    result = run_tour(tmp_path / "tour", topics=["em"])
    (tmp_path / "tour" / "mixture" / "components.png").unlink()
    dom, _ = _render(result.files["index"], tmp_path)
    assert "broken:mixture/components.png" in dom


def test_the_command_line_runs_chosen_topics_and_refuses_unknown_ones(tmp_path, capsys):
    assert main(["tour", "--topics", "em", "--out", str(tmp_path / "t")]) == 0
    assert "index.html" in capsys.readouterr().out
    assert main(["tour", "--topics", "em,poetry", "--out", str(tmp_path / "u")]) != 0
    assert "topics: expected some of" in capsys.readouterr().err
    with pytest.raises(ValueError, match="'diffusion' samples the model that 'modes' trains"):
        run_tour(tmp_path / "v", topics=["diffusion"])


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_the_whole_tour_takes_at_most_five_minutes_and_renders(tmp_path):
    started = time.perf_counter()
    result = run_tour(tmp_path / "tour")
    assert time.perf_counter() - started < 300
    dom, _ = _render(result.files["index"], tmp_path)
    assert f"<section id=\"topic-{len(TOPICS)}\"" in result.files["index"].read_text()
    assert re.search(r"<title>images:\d+;broken:</title>", dom), dom[:300]
