# `make check` mirrors CI: format, lint, types, tests.
.PHONY: check fmt lint types test
check: lint types test
fmt:
	ruff format flowaudit tests benchmarks
lint:
	ruff check flowaudit tests benchmarks
	ruff format --check flowaudit tests benchmarks
types:
	mypy
test:
	python -m pytest -q
