"""Array layouts and codes shared by the compiled kernels and the Python code driving them.

Responsible for the numbers only (no numba here, so importing it is free): the
status codes of the capture-record walks, the column indices of the flow table's
pool, fragment table, meta/config/stats arrays, and the TCP, direction and state
codes, and the PacketBatch kind/fragment codes. The kernels of this folder compile
them in as constants; ``flows/builder.py`` and ``packets/pcap.py`` read the arrays
with them.
"""

from __future__ import annotations

# --- capture record walks (kernels/walk.py) ------------------------------------
NEED_DATA = 0  # the record at ``pos`` does not fit in the chunk (or EOF reached)
FULL = 1  # the scratch arrays are full: call again from ``pos``
PY_BLOCK = 2  # pcapng SHB/IDB at ``pos``: parsed in Python, then call again
CORRUPT = 3  # impossible record/block length at ``pos``
BAD_IFACE = 4  # pcapng packet block names an interface with no IDB

MAX_RECORD = 1 << 28  # a record/block claiming more than 256 MiB is corrupt

# --- pool columns -----------------------------------------------------------------
I_FIRST, I_LAST, I_CLOSED, I_UID = 0, 1, 2, 3
N_I64 = 4
U_AHI, U_ALO, U_BHI, U_BLO = 0, 1, 2, 3
U_PK0, U_PK1, U_BY0, U_BY1, U_IB0, U_IB1 = 4, 5, 6, 7, 8, 9
N_U64 = 10
C_VLAN, C_PROTO, C_PA, C_PB, C_IPV = 0, 1, 2, 3, 4
C_FL0, C_FL1, C_ST0, C_ST1, C_PV0, C_PV1 = 5, 6, 7, 8, 9, 10
C_DATA0, C_DATA1, C_DC0, C_DC1 = 11, 12, 13, 14
C_DIR, C_ORIG, C_RCAND, C_ORST, C_SLOT, C_LIVE = 15, 16, 17, 18, 19, 20
N_I32 = 21

# --- fragment table columns ---------------------------------------------------------
F_STATE, F_VLAN, F_PROTO, F_FID, F_POOL, F_UID, F_SIDE = 0, 1, 2, 3, 4, 5, 6
F_FIRST, F_LAST, F_PPK, F_PBY, F_PIB = 7, 8, 9, 10, 11
N_F64 = 12
N_FU64 = 5  # src hi, src lo, dst hi, dst lo, hash
FS_EMPTY, FS_RESOLVED, FS_PENDING, FS_DELETED = 0, 1, 2, 3

# --- meta (int64 array) -------------------------------------------------------------
M_FREE_N, M_ENDED_N, M_UID, M_NEXT_SWEEP, M_H_USED, M_H_TOMB, M_F_USED, M_F_TOMB = range(8)
M_LIVE = 8
N_META = 9

# --- config (int64 array, nanoseconds) ----------------------------------------------
G_TCP, G_UDP, G_ICMP, G_OTHER, G_LINGER, G_FRAG, G_SWEEP = range(7)
N_CFG = 7

# --- stats (int64 array) ------------------------------------------------------------
S_PACKETS, S_IP, S_NON_IP, S_NOT_DECODED, S_IN_FLOWS, S_BYTES_IN_FLOWS = 0, 1, 2, 3, 4, 5
S_NO_PORTS, S_FRAG_ATTR, S_FRAG_UNATTR, S_FRAG_UNATTR_BYTES, S_FLOWS_CREATED = 6, 7, 8, 9, 10
S_SPLIT_IDLE, S_SPLIT_CLOSED, S_SPLIT_REUSE, S_FRAG_UNATTR_IP_BYTES = 11, 12, 13, 14
N_STATS = 15
#: FlowStats field names, in stats-array order
STAT_NAMES = ("packets", "ip_packets", "non_ip", "not_decoded", "packets_in_flows",
              "bytes_in_flows", "ip_without_ports", "fragments_attributed",
              "fragments_unattributed", "fragments_unattributed_bytes", "flows_created",
              "split_idle", "split_closed", "split_reuse",
              "fragments_unattributed_ip_bytes")  # fmt: skip

# --- walk status --------------------------------------------------------------------
DONE, NEED_HASH, NEED_POOL, NEED_FRAG = 0, 1, 2, 3

# --- TCP endpoint states (Zeek's TCP_ENDPOINT_*) ------------------------------------
T_INACTIVE, T_SYN_SENT, T_SYN_ACK_SENT, T_PARTIAL, T_ESTABLISHED, T_CLOSED, T_RESET = range(7)

# --- direction codes ----------------------------------------------------------------
D_SYN, D_FIRST, D_SERVICE = 0, 1, 2

# --- state codes (order of flows.STATE_NAMES) ---------------------------------------
(
    Z_S0, Z_S1, Z_SF, Z_REJ, Z_S2, Z_S3, Z_RSTO, Z_RSTR, Z_RSTOS0, Z_RSTRH, Z_SH, Z_SHR, Z_OTH
) = range(13)  # fmt: skip

FIN, SYN, RST, ACK = 1, 2, 4, 16

#: ``meta[M_NEXT_SWEEP]`` before the first packet
NO_SWEEP = -(2**63)

# PacketBatch.kind (flowaudit.packets.batch)
KIND_IP = 0  # IPv4/IPv6 with a decoded header (ports valid when FRAG_HAS_L4 set)
KIND_NON_IP = 1  # ARP, LLDP, STP, ... counted, not flows
KIND_TRUNCATED = 2  # caplen too short for the headers it announces
KIND_UNSUPPORTED = 3  # link type / encapsulation the reader does not decode
KIND_MALFORMED = 4  # headers inconsistent (bad IHL, bad version ...)

# frag bits
FRAG_IS_FRAGMENT = 1  # part of a fragmented datagram (offset > 0 or more-fragments set)
FRAG_FIRST = 2  # the fragment with offset 0
FRAG_HAS_L4 = 4  # sport/dport/tcp_flags were read from this packet

# tunnels opened by kernels/tunnel.py (PacketBatch.inner's ``tunnel``); 0 = none
TUN_VXLAN, TUN_GENEVE, TUN_GRE = 1, 2, 3
TUNNEL_NAMES = ("", "vxlan", "geneve", "gre")
