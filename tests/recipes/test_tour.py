"""``ppdgm tour`` writes one page whose every figure a real browser loads (headless Chromium)."""

import json
import re
import time

import pytest
import torch

from ppdgm.cli import main
from ppdgm.recipes.tour import TOPICS, run_tour


def test_the_page_renders_every_figure_in_a_browser(tmp_path, render_page):
    threads = torch.get_num_threads()
    result = run_tour(tmp_path / "tour", topics=["helmholtz", "em", "vae"])
    page = result.files["index"]
    html = page.read_text()
    assert html.count("<section") == 3 and html.count("<img") == 6
    dom, shot = render_page(page)
    assert re.search(r"<title>images:6;broken:</title>", dom), dom[:300]
    assert shot.stat().st_size > 10_000
    numbers = json.loads((tmp_path / "tour" / "tour.json").read_text())
    assert set(numbers["seconds"]) == {"helmholtz", "em", "vae"}
    assert torch.get_num_threads() == threads  # the tour's one thread is given back


def test_a_missing_figure_is_caught_by_the_browser_check(tmp_path, render_page):
    result = run_tour(tmp_path / "tour", topics=["em"])
    (tmp_path / "tour" / "mixture" / "components.png").unlink()
    dom, _ = render_page(result.files["index"])
    assert "broken:mixture/components.png" in dom


def test_the_command_line_runs_chosen_topics_and_refuses_unknown_ones(tmp_path, capsys):
    assert main(["tour", "--topics", "em", "--out", str(tmp_path / "t")]) == 0
    assert "index.html" in capsys.readouterr().out
    assert main(["tour", "--topics", "em,poetry", "--out", str(tmp_path / "u")]) != 0
    assert "topics: expected some of" in capsys.readouterr().err
    with pytest.raises(ValueError, match="'diffusion' samples the model that 'modes' trains"):
        run_tour(tmp_path / "v", topics=["diffusion"])


@pytest.mark.slow
def test_the_whole_tour_takes_at_most_five_minutes_and_renders(tmp_path, render_page):
    started = time.perf_counter()
    result = run_tour(tmp_path / "tour")
    assert time.perf_counter() - started < 300
    dom, _ = render_page(result.files["index"])
    assert f"<section id=\"topic-{len(TOPICS)}\"" in result.files["index"].read_text()
    assert re.search(r"<title>images:\d+;broken:</title>", dom), dom[:300]
