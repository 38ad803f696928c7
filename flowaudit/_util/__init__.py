"""Small helpers every layer may use: Arrow building (``arrow``), files (atomic writes,
the one file digest), times (µs, UTC, ISO-8601). Nothing here imports another layer."""
