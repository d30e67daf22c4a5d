# The two quick-start targets: `make demo` and `make test`. Each creates .venv when missing.
# `make test PYTHON=/path/to/python3.13` builds and tests in its own .venv-python3.13.
PYTHON ?= python3
VENV ?= .venv$(if $(filter python3,$(PYTHON)),,-$(notdir $(PYTHON)))
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ppdgm-installed

.PHONY: demo test wheel-check lint docs docs-serve bench-smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# PyPI's torch is the CUDA build (its CPU-only wheel cannot load torchvision's ops): about
	@# 6 GB installed. --no-cache-dir keeps pip from holding a second copy of the wheels.
	@df -Pk . | awk 'NR==2 && $$4 < 9000000 {printf "warning: %.1f GB free here; installing PyTorch needs about 9 GB at its peak\n", $$4/1e6}'
	$(PY) -m pip install --no-cache-dir --upgrade pip
	$(PY) -m pip install --no-cache-dir -e '.[dev]'
	@# torchvision's compiled ops only load against the torch it was built for: prove the pair imports.
	$(PY) -c "import torch, torchvision, torchvision.utils; print('torch', torch.__version__, '/ torchvision', torchvision.__version__)"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ppdgm demo

test: $(STAMP)
	@# One pytest-xdist worker per core (the tests share no state across files or processes); the
	@# slowest tests are listed at the end, to keep the suite within its ten minutes.
	$(PY) -m pytest -n auto --durations=15

# The wheel and sdist built from this tree, installed into a fresh environment without it, run
# `ppdgm demo` and `ppdgm tour --topics vae` (.ci/check-wheel says what else it checks).
wheel-check: $(STAMP)
	.ci/check-wheel $(VENV)

# The documentation site (mkdocs.yml, pages in docs/) into site/; --strict fails on a broken link
# or API reference. NO_MKDOCS_2_WARNING silences Material's notice about its successor.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

lint: $(STAMP)
	$(VENV)/bin/ruff check ppdgm tests examples benchmarks

clean:
	rm -rf .venv .venv-* ppdgm-demo .pytest_cache site
