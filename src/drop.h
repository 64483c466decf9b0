/* drop.h - every reason the data plane drops a packet, counted per reason.
 * Owns the reason list only; counters live in each worker's stats. */
#ifndef DETOUR_DROP_H
#define DETOUR_DROP_H

#define DROP_REASONS(X)                                                        \
	X(NONE, "none")                                                        \
	X(ETH_TRUNC, "ethernet header truncated")                              \
	X(VLAN_TRUNC, "802.1Q header truncated")                               \
	X(ARP_TRUNC, "ARP truncated")                                          \
	X(IP4_TRUNC, "IPv4 header truncated")                                  \
	X(IP4_BAD_VER, "IPv4 bad version")                                     \
	X(IP4_BAD_IHL, "IPv4 bad header length")                               \
	X(IP4_BAD_LEN, "IPv4 total length beyond frame")                       \
	X(IP4_BAD_CSUM, "IPv4 header checksum wrong")                          \
	X(IP6_TRUNC, "IPv6 header truncated")                                  \
	X(IP6_BAD_VER, "IPv6 bad version")                                     \
	X(IP6_BAD_LEN, "IPv6 payload length beyond frame")                     \
	X(IP6_EXT_TRUNC, "IPv6 extension header truncated")                    \
	X(IP6_EXT_CHAIN, "IPv6 extension chain too long")                      \
	X(TCP_TRUNC, "TCP header truncated")                                   \
	X(TCP_BAD_OFF, "TCP bad data offset")                                  \
	X(UDP_TRUNC, "UDP header truncated")                                   \
	X(UDP_BAD_LEN, "UDP bad length")                                       \
	X(UDP_BAD_CSUM, "UDP checksum wrong")                                  \
	X(ICMP_TRUNC, "ICMP header truncated")                                 \
	X(NSH_TRUNC, "NSH truncated")                                          \
	X(NSH_BAD_VER, "NSH bad version")                                      \
	X(NSH_BAD_LEN, "NSH bad length")                                       \
	X(NSH_BAD_MDTYPE, "NSH unsupported MD type")                           \
	X(NSH_BAD_TLV, "NSH malformed context TLV")                            \
	X(NSH_CRIT_TLV, "NSH unknown critical TLV")                            \
	X(NSH_TTL, "NSH TTL expired")                                          \
	X(GENEVE_TRUNC, "Geneve truncated")                                    \
	X(GENEVE_BAD_VER, "Geneve bad version")                                \
	X(GENEVE_BAD_OPT, "Geneve malformed options")                          \
	X(GENEVE_CRIT_OPT, "Geneve unknown critical option")                   \
	X(GENEVE_BAD_PROTO, "Geneve unknown protocol")                         \
	X(GSO_UNSUPPORTED, "oversized frame that cannot be segmented")         \
	X(GUEST_SERVICE_PLANE, "guest sent service-plane traffic")             \
	X(GUEST_NO_NETWORK, "frame on a port with no network")                 \
	X(L2_NO_PORT, "no output port")                                        \
	X(L2_HAIRPIN, "destination is the input port")                         \
	X(RULE_BLOCK, "no live path, failure policy block")                    \
	X(FLOW_DROP, "flow programmed to drop")                                \
	X(SP_NO_NEXTHOP, "no next hop for SPI/SI")                             \
	X(SP_UNKNOWN_SPMAC, "unknown service-plane MAC")                       \
	X(SP_BAD_RETURN, "bad return address")                                 \
	X(SN_BAD_SPI, "service node returned another SPI")                     \
	X(SN_BAD_SI, "service node returned a bad SI")                         \
	X(SN_NOT_NSH, "service node returned a non-NSH frame")                 \
	X(SN_NO_FLOW, "service node returned a frame of no known flow")        \
	X(SN_DOWN, "service node is down")                                     \
	X(SN_STATE_FULL, "service proxy: no room for a new flow context")      \
	X(SN_KEY_CONFLICT, "service proxy: another guest's flow held the key moments ago") \
	X(COPY_END, "copy reached the end of its path")                        \
	X(POOL_EMPTY, "buffer pool empty")                                     \
	X(STEER_FULL, "hand-off to another worker: its ring is full")          \
	X(STEER_STALE, "handed over across a reload that renumbered the ports") \
	X(TX_FULL, "transmit queue full")                                      \
	X(QUEUE_FULL, "engine stage queue full")                               \
	X(NO_UNDERLAY, "another host is out of reach (no underlay)")           \
	X(UL_NOT_GENEVE, "uplink frame that is not Geneve to this VTEP")       \
	X(TX_ERROR, "transmit error")                                          \
	X(TOO_BIG, "frame too big")                                            \
	X(LOOP, "forwarding loop")

enum drop_reason {
#define DROP_ENUM(name, text) DROP_##name,
	DROP_REASONS(DROP_ENUM)
#undef DROP_ENUM
	DROP__MAX
};

const char *drop_reason_text(enum drop_reason r);
const char *drop_reason_name(enum drop_reason r);

#endif
