#!/usr/bin/env bash
# The GPU check in one run (docs/scaling.md, "GPU check"): pytest -m gpu, then rollout and
# GRPO-step timings of random-weight models on CUDA, recorded as JSON under $OUT (else
# runs/gpu_check) with a summary; about 8 minutes at most on one H200.
#
#   bash benchmarks/perf/gpu_check.sh                      # on a machine with a CUDA GPU
#   GPU_CHECK_DRY_RUN=1 bash benchmarks/perf/gpu_check.sh  # the same steps on the CPU, tiny sizes
#   bash benchmarks/perf/gpu_check.sh --wheels             # here: download .whl/ for the GPU machine
#
# A machine that reaches no registry gets the packages it lacks from the wheels in .whl/
# (git-ignored; carried with the working tree). The steps themselves are
# trainers/perf/gpu_check.py's; the exit status is 1 if any step failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
dry_run=${GPU_CHECK_DRY_RUN:-}

# what the GPU machine's image lacks (Python 3.12, x86-64, no registry), at the versions
# installed here; vLLM's wheel is too big to travel
if [ "${1:-}" = "--wheels" ]; then
  names="gymnasium farama-notifications pettingzoo pydantic pydantic-core annotated-types typing-inspection
         typing-extensions llguidance trl datasets dill multiprocess platformdirs"
  # shellcheck disable=SC2086
  pins=$("$PYTHON" -c 'import sys; from importlib.metadata import version; print(*(f"{n}=={version(n)}" for n in sys.argv[1:]))' $names)
  rm -rf .whl
  # shellcheck disable=SC2086
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .whl \
    --platform manylinux_2_31_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 $pins
  du -sh .whl
  exit 0
fi

if [ -z "$dry_run" ] && ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  echo "no CUDA GPU here: the GPU check has nothing to run"
  exit 0
fi

# 1. packages the machine lacks, from carried wheels (no index, no dependency resolution:
#    .whl/ holds exactly the missing ones, one version each)
install="skipped: every package imports"
if ! "$PYTHON" -c 'import gymnasium, pettingzoo, pydantic, llguidance, trl, datasets' 2>/dev/null; then
  site=/tmp/gpu_check_site
  if ! compgen -G '.whl/*.whl' >/dev/null; then
    install="failed: packages are missing and .whl/ holds no wheels"
  elif "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl; then
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    install="ok: $(compgen -G '.whl/*.whl' | wc -l) wheels from .whl/ into $site"
  else
    install="failed: pip could not install .whl/*.whl (see the output above)"
  fi
fi
# dialogym itself, where it is not installed: a folder of links that maps the rooms the way
# pyproject.toml's package-dir does (no build backend needed)
if ! "$PYTHON" -c 'import dialogym.agents' 2>/dev/null; then
  src=/tmp/gpu_check_src
  mkdir -p "$src/dialogym"
  ln -sf "$PWD"/dialogym/*.py "$src/dialogym/"
  for room in envs agents benchmarks trainers; do ln -sfn "$PWD/$room" "$src/dialogym/$room"; done
  export PYTHONPATH="$src${PYTHONPATH:+:$PYTHONPATH}"
fi
echo "install: $install"

# 2-5. pytest -m gpu, rollout timings, GRPO step timings (started by path: see its docstring)
export GPU_CHECK_INSTALL="$install"
exec "$PYTHON" trainers/perf/gpu_check.py run ${dry_run:+--dry-run}
