# Everyday tasks. `make install` once, then `make check` before you push.
PY ?= python

.PHONY: install test lint format typecheck check demo bench notebooks release-check docs docs-serve clean

install:          ## install the package, every extra and the dev tools (CPU-only torch)
	$(PY) -m pip install -c constraints.txt -e ".[all,dev]"

test:             ## run the test suite (the same command CI runs)
	$(PY) -m pytest

lint:             ## ruff lint and format check
	ruff check .
	ruff format --check .

format:           ## apply ruff's formatting and safe fixes
	ruff check --fix .
	ruff format .

typecheck:        ## mypy --strict over the packages
	mypy

check: lint typecheck test   ## everything CI checks

demo:             ## the scripted two-user demo, offline, on the embedded defaults
	lightmem demo

release-check:    ## build the sdist and wheel, twine check, smoke-test the wheel with each extra
	bash .ci/release

bench:            ## latency figures (add, search, embed) at 1k and 10k memories
	$(PY) benchmarks/latency.py --quick

notebooks:        ## run the notebooks offline and store their outputs (the tests compare)
	$(PY) notebooks/execute.py

docs:             ## the documentation site in site/ (needs the docs extra); fails on any warning
	$(PY) -m mkdocs build --strict

docs-serve:       ## serve the site on http://127.0.0.1:8000, rebuilt on every change
	$(PY) -m mkdocs serve -a 127.0.0.1:8000

clean:
	rm -rf .venv-ci .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info site .cache/mkdocs-jupyter
