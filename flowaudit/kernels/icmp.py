"""Protocol numbers and the ICMP/ICMPv6 request/reply tables (Community ID spec, Zeek).

Data only: the flow-table kernel keys ICMP flows with these tables, Community ID
hashes with them, record readers orient ICMP records with them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58
PROTO_SCTP = 132

#: protocols whose tuple carries ports (ICMP/ICMPv6 "ports" are type/code)
PORT_PROTOCOLS = (PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMP6, PROTO_SCTP)

# request/reply counterpart types (Community ID spec, same pairs as Zeek)
ICMP4_PAIRS: dict[int, int] = {
    8: 0, 0: 8,  # echo
    13: 14, 14: 13,  # timestamp
    15: 16, 16: 15,  # information
    10: 9, 9: 10,  # router solicitation / advertisement
    17: 18, 18: 17,  # address mask
}  # fmt: skip
ICMP6_PAIRS: dict[int, int] = {
    128: 129, 129: 128,  # echo
    133: 134, 134: 133,  # router solicitation / advertisement
    135: 136, 136: 135,  # neighbour solicitation / advertisement
    130: 131, 131: 130,  # multicast listener query / report
    139: 140, 140: 139,  # node information query / response
    144: 145, 145: 144,  # home agent address discovery request / reply
}  # fmt: skip
#: the request side of each pair: its sender is a flow's initiator
ICMP4_REQUESTS = frozenset({8, 13, 15, 10, 17})
ICMP6_REQUESTS = frozenset({128, 133, 135, 130, 139, 144})


def _pair_table(pairs: dict[int, int]) -> npt.NDArray[np.int32]:
    t = np.full(256, -1, dtype=np.int32)
    for k, v in pairs.items():
        t[k] = v
    return t


ICMP4_PAIR_TABLE = _pair_table(ICMP4_PAIRS)
ICMP6_PAIR_TABLE = _pair_table(ICMP6_PAIRS)
