"""Shared fixtures: a clean Pyro state per test, the device the suite runs on, and a headless
browser that renders a page and says which of its images did not load."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pyro
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # The suite's tensors are tiny: handing them between threads costs more than it saves, and on
    # a busy machine two intra-op threads wait on each other (10-100x slower steps).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _clean_pyro_state():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


@pytest.fixture
def device() -> torch.device:
    """The device under test: CPU by default, ``PPDGM_TEST_DEVICE=cuda`` runs the suite on a GPU."""
    spec = os.environ.get("PPDGM_TEST_DEVICE", "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("PPDGM_TEST_DEVICE asks for CUDA but none is available")
    return torch.device(spec)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# After the page's load event, its title says how many images it has and which did not load.
_PROBE = ("<script>addEventListener('load', () => { const bad = [...document.images].filter("
          "i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));"
          "document.title = 'images:' + document.images.length + ';broken:' + bad.join(','); });"
          "</script>")


@pytest.fixture
def render_page(tmp_path: Path) -> Callable[[Path], tuple[str, Path]]:
    """``render(page)``: Chromium's DOM of ``page`` after load, whose title reads
    ``images:N;broken:SRC,...``, and a PNG screenshot of it. Skips without Chromium."""
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")

    def render(page: Path) -> tuple[str, Path]:
        # Beside the page, so that its relative links resolve as they do for the page itself.
        probed = page.with_name(f"probed-{page.name}")
        probed.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
        shot = tmp_path / f"{page.parent.name}-{page.stem}.png"
        subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,4000",
                        probed.as_uri()], capture_output=True, timeout=120, check=True)
        dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", probed.as_uri()], capture_output=True,
                             text=True, timeout=120, check=True).stdout
        probed.unlink()
        return dom, shot

    return render
