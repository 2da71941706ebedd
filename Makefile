# Two entry points: `make run` opens the workbench on the example spec with the embedded model,
# `make test` runs every test. Both create the virtual environment first.

PYTHON ?= python3
VENV ?= .venv
SPEC ?= specs/habit.md
STAMP := $(VENV)/.installed-stamp

.PHONY: run test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --editable '.[local,test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sddtui $(SPEC) --embedded

test: $(STAMP)
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV)
