# Two commands set everything up on a fresh machine: `make run` and `make test`, in either order.
# `make run` installs only what the bot needs (the project's dependencies, ~0.4 GB); `make test`
# and `make dev` add the `dev` extra (TensorFlow for training, the test tools, ~2.5 GB in all).
# Each set has its own stamp, remade when pyproject.toml changes; the dev set includes the run
# set, so installing it stamps both and a later `make run` installs nothing more.
VENV      := .venv
PYTHON    := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PY_BOOT   ?= python3

.PHONY: run test dev lint system-deps clean

$(PYTHON):
	$(PY_BOOT) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip

## What the bot imports when it serves: no extra, so no TensorFlow.
$(RUN_STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --quiet -e .
	touch $(RUN_STAMP)

## Training (the `train` extra) and the test tools, on top of the run set.
$(DEV_STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

## Optional system tools (MuseScore, FluidSynth, soundfont); installed when we are allowed to.
system-deps:
	@bash scripts/install-system-deps

## Run the bot: the console chat without tokens, Discord/Telegram when their tokens are set.
run: $(RUN_STAMP) system-deps
	$(VENV)/bin/melodybot run

## The whole test suite plus the linter.
test: $(DEV_STAMP) system-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q

## Everything `make test` installs (training, tests, linter), without running anything.
dev: $(DEV_STAMP)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache out
