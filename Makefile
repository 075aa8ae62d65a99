# Two commands for a fresh machine: `make serve` and `make test` (each installs what it needs).
# The torch extra (torch==2.13.0 CPU, resemblyzer) is installed too so its tests run, not skip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[default,ray,torch,test]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/speechengine serve --config config.yml

test: $(STAMP)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
