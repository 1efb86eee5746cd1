# Two entry points for a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.radsynth-installed

.PHONY: demo contact-sheet test lint setup clean

setup: $(STAMP)

# torch is installed first and pinned: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): requirements.txt pyproject.toml scripts/install_system_packages.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	bash scripts/install_system_packages.sh
	touch $(STAMP)

# The study's Figure 1 by the built-in model: 8 regions x 4 images, all kept, on the CPU.
demo: $(STAMP)
	$(BIN)/radsynth figure1 --out out
	@echo "Figure 1 written to out/figure1.png (single images with their seeds in out/figure1/)"

contact-sheet: $(STAMP)
	$(BIN)/radsynth phantoms --contact-sheet out/contact_sheet.png

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts docs/trials
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q -n 2

clean:
	rm -rf $(VENV) out
