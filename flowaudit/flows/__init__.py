"""Packets → bidirectional flows: the builder (``builder``), Community ID
(``community_id``) and the service ports that orient flows without a SYN (``ports``)."""
