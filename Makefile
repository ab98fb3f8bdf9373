# Two commands set everything up on a fresh machine: `make run` and `make test`.
VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PY_BOOT ?= python3

.PHONY: run test lint system-deps bench clean

$(STAMP): pyproject.toml
	$(PY_BOOT) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Optional system tools (MuseScore, FluidSynth, soundfont); installed when we are allowed to.
system-deps:
	@bash scripts/install-system-deps

## Run the bot: the console chat without tokens, Discord/Telegram when their tokens are set.
run: $(STAMP) system-deps
	$(VENV)/bin/melodybot run

## The whole test suite plus the linter.
test: $(STAMP) system-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache out
