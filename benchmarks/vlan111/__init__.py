"""Building blocks of ``benchmarks/gen_vlan111.py``, the VLAN 111 capture generator.

``_frames`` (hosts, numba frame kernel, payload pool), ``_families`` (the seed port matrix
as data), ``_flows`` (packet shapes per protocol, unique flow keys), ``_planner`` (the traffic
mix and long-lived sessions), ``_output`` (packet matrix, truth rows, pcap chunks). The
script is the entry point (command line and ``generate()``); these modules have no API of
their own.
"""
