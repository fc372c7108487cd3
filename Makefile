# govsite — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependencies change.
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The embedded defaults: SQLite under var/, jobs in-process, the sandbox gateway on :4000 and the site on :8000.
# Both ports move together when LiteLLM (whose own default is 4000) or another site holds them:
#   make demo PORT=8080 SANDBOX_PORT=4100
PORT ?= 8000
SANDBOX_PORT ?= 4000
SITE_URL ?= http://127.0.0.1:$(PORT)
demo: export DEBUG = true
demo: export SANDBOX_PORT := $(SANDBOX_PORT)
demo: export SITE_URL := $(SITE_URL)
demo: export DATABASE_URL =
demo: export REDIS_URL =
demo: export LITELLM_URL =
demo: export LITELLM_LOCAL_MODEL_COST_MAP = True
demo: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	@echo "govsite: http://127.0.0.1:$(PORT)  (sandbox gateway: http://127.0.0.1:$(SANDBOX_PORT))"
	@bash -c 'trap "kill 0" EXIT; \
	  $(BIN)/python manage.py sandbox_gateway --port $(SANDBOX_PORT) & \
	  $(BIN)/python manage.py seed_demo --history && \
	  { $(BIN)/python manage.py run_schedules & \
	    $(BIN)/python manage.py runserver 127.0.0.1:$(PORT); }'

# Uses DATABASE_URL / REDIS_URL when set (CI points them at PostgreSQL and Redis).
test: $(STAMP)
	$(BIN)/pytest

# Benchmarks print figures; they need DATABASE_URL pointing at PostgreSQL (each makes its own <name>_bench database).
# Full scale is the default (50 M ledger rows); a shared machine passes e.g. BENCH_ROWS="--existing 2000000".
# bench_load reads the dashboards from GOVSITE_BENCH_REPLICA_URL (a streaming replica's server) when set.
bench: $(STAMP)
	DEBUG=true $(BIN)/python manage.py bench_ingest $(BENCH_ROWS)
	DEBUG=true $(BIN)/python manage.py bench_retention
	DEBUG=true $(BIN)/python manage.py bench_completeness
	DEBUG=false SECRET_KEY=bench-only $(BIN)/python manage.py bench_dashboards --check
	DEBUG=true $(BIN)/python manage.py bench_export
	DEBUG=true $(BIN)/python manage.py bench_focus $(BENCH_FOCUS_ARGS)
	DEBUG=true $(BIN)/python manage.py bench_load --check $(BENCH_ARGS)
	DEBUG=true $(BIN)/python manage.py bench_provision

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .import_linter_cache
