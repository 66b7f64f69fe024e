# One command each: `make demo` runs the product end to end, `make test` runs the suite.
# Both create .venv and install on first use; later runs reuse it.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint coverage local-up local-down seed bench bench-throttle bench-chaos bench-events constraints clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/asr demo

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

coverage: $(STAMP)
	$(BIN)/asr coverage --write

local-up: $(STAMP)
	$(BIN)/asr local up

local-down: $(STAMP)
	$(BIN)/asr local down

seed: $(STAMP)
	$(BIN)/asr local seed --reset

# Benchmarks (not part of `make test`): see "Benchmarks" in the README. BENCH_ARGS adds options,
# e.g. make bench BENCH_ARGS="--findings 500 --accounts 2 --regions 1 --skip-naive".
BENCH_JSON ?= .asr/bench/latest.json
bench: $(STAMP)
	mkdir -p $(dir $(BENCH_JSON))
	$(BIN)/python bench/sweep.py --findings 10000 --accounts 10 --regions 2 --json $(BENCH_JSON) $(BENCH_ARGS)

bench-throttle: $(STAMP)
	mkdir -p $(dir $(BENCH_JSON))
	$(BIN)/python bench/sweep.py --throttle --findings 1000 --json $(BENCH_JSON:.json=-throttle.json) $(BENCH_ARGS)

bench-chaos: $(STAMP)
	mkdir -p $(dir $(BENCH_JSON))
	$(BIN)/python bench/sweep.py --chaos --findings 1000 --json $(BENCH_JSON:.json=-chaos.json) $(BENCH_ARGS)

bench-events: $(STAMP)
	mkdir -p $(dir $(BENCH_JSON))
	$(BIN)/python bench/events.py --clicks 7 --json $(BENCH_JSON:.json=-events.json) $(BENCH_ARGS)

# After changing requirements.txt: install it unconstrained, then pin what was installed.
constraints:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^asr'; } > constraints.new
	mv constraints.new constraints.txt

clean:
	-$(BIN)/asr local down
	rm -rf .airflow .asr .pytest_cache
