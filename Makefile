# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned to the wheels this machine (and CI) has on disk; pip then keeps them.
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev,export,cpu]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	# One thread: with anything else on the 2 cores, OpenMP threads spin against it (docs/BENCHMARKS.md).
	OMP_NUM_THREADS=1 $(PY) tools/run_pipeline.py --config configs/pipeline/synthetic_cpu.yaml

test: $(STAMP)
	# One thread per process: the tests are small, and OpenMP threads spinning against other work
	# on 2 cores cost far more than they give (measured: 3 s vs 159 s for one GAN test under load).
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests

lint: $(STAMP)
	$(PY) -m ruff check reid_stargan tools tests bench

clean:
	rm -rf $(VENV) *.egg-info
