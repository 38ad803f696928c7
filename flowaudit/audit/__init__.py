"""The audit: flows × matrix in DuckDB (``engine`` + ``sql/``), verdicts (``run``), the
result (``result``, a leaf), the coverage grid (``coverage``) and baselines (``baseline``)."""
