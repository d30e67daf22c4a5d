# The two quick-start targets: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ppdgm-installed

.PHONY: demo test lint bench-smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	@# torchvision's compiled ops only load against the torch it was built for: prove the pair imports.
	$(PY) -c "import torch, torchvision, torchvision.utils; print('torch', torch.__version__, '/ torchvision', torchvision.__version__)"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ppdgm demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check ppdgm tests examples benchmarks

clean:
	rm -rf $(VENV) ppdgm-demo .pytest_cache
