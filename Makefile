# The two commands (see README.md):
#   make quickstart   set up .venv and run the main job on embedded local Ray (CPU, a few minutes, offline)
#   make test         set up .venv and run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
# torch is only a range in pyproject.toml; this picks the builds that pip resolves from local disk on
# the project machines. Override on other machines, e.g. `make test TORCH_SPEC="torch torchvision"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin

.PHONY: setup data quickstart test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[test]"
	touch $@

# Real Fashion-MNIST from Debian (used by the data tests and the extractor script); best effort.
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -q && apt-get install -y -q dataset-fashion-mnist) >/dev/null 2>&1 \
	    || echo "note: could not install dataset-fashion-mnist; its tests will be skipped"; \
	fi

quickstart: setup
	$(BIN)/raynas search eagan --preset quickstart

test: setup data
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
