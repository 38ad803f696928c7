"""Evidence for findings: which frames (``select``), copied byte for byte (``slicer``),
dissected by tshark (``enrich``), written as ``<id>.pcap`` + ``<id>.json`` (``write``)."""
