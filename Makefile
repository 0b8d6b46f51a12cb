# The two set-up commands of the README. Each installs what it needs, then runs.
.PHONY: serve test lint bench

serve:          ## start the relay and its pages in dev mode on http://127.0.0.1:8787
	@bash scripts/setup.sh
	.venv/bin/aipipe serve --dev

test:           ## install everything (deps, npm runtime, Chromium, wrk) and run the whole suite
	@bash scripts/setup.sh --browser
	.venv/bin/ruff check .
	.venv/bin/python -m pytest --ignore=tests/e2e $(PYTEST_ARGS)
	# Browser tests run on their own: Playwright's sync API keeps an event loop in the main thread.
	.venv/bin/python -m pytest tests/e2e $(PYTEST_ARGS)

bench:          ## relay benchmark: direct vs through the relay (wrk) -> bench/results/latest.md
	@bash scripts/setup.sh --browser
	.venv/bin/python bench/run.py
	.venv/bin/python bench/ledger_scale.py

lint:
	.venv/bin/ruff check .
