"""The choice lists every layer shares (CLI options, API checks, error messages).

One source for each; imports nothing, so the CLI can build its options without
loading any of the modules that implement them.
"""

from __future__ import annotations

#: report formats of ``audit`` (flowaudit.report.render)
REPORT_FORMATS = ("text", "json", "markdown", "csv", "html")
#: result formats of ``query`` (flowaudit.report.tables): json is one array, ndjson one
#: object per line, parquet keeps DuckDB's types (to a file only)
QUERY_FORMATS = ("table", "csv", "json", "ndjson", "parquet")
#: input formats of ``ingest``: ``auto`` picks by content, ``pcap`` covers pcapng too
INPUT_FORMATS = ("auto", "pcap", "netflow", "nfcapd", "zeek", "hubble")
#: the flow-record formats among them (read by flowaudit.records)
RECORD_FORMATS = ("netflow", "nfcapd", "zeek", "hubble")
#: what ``--format auto`` recognises by content besides pcap/pcapng
DETECTED_RECORD_FORMATS = ("nfcapd", "zeek", "hubble")
#: packet engines: the fast reader, tshark, or the fast reader with tshark as fallback
ENGINES = ("auto", "fast", "tshark")
#: SQL backends of ``audit``, ``query`` and ``ingest``: DuckDB in this process, or Spark
#: (``pip install 'flowaudit[spark]'``; the same SQL transpiled, flowaudit.spark)
BACKENDS = ("duckdb", "spark")

__all__ = [
    "BACKENDS",
    "DETECTED_RECORD_FORMATS",
    "ENGINES",
    "INPUT_FORMATS",
    "QUERY_FORMATS",
    "RECORD_FORMATS",
    "REPORT_FORMATS",
]
