"""Flow-record files → FLOW_SCHEMA tables: NetFlow/IPFIX (``netflow/``), nfcapd, Zeek
conn.log, Hubble JSON; ``common`` builds the tables, ``pairing`` joins unidirectional
records into bidirectional flows."""
