"""NetFlow v5/v9/IPFIX: ``reader`` (datagrams → flow tables), ``decode`` (v5 and template
data sets), ``templates`` (template → numpy dtype), ``pcap`` (export datagrams in a pcap)."""
