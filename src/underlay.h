/* underlay.h - a host's underlay: UDP sockets on its VTEP address carrying
 * Geneve (port 6081) to and from the other hosts' VTEPs, with batched
 * receive and send, the allow-list of known VTEPs, and per-VTEP counters.
 *
 * Design: one socket bound to (VTEP, port) receives; UNDERLAY_TX_SOCKS
 * sockets bound to (VTEP, ephemeral port) send, one chosen per packet by
 * the flow hash, so that underlay ECMP sees a source port per flow (a UDP
 * socket cannot set its source port per packet). Outer packets are never
 * fragmented (IP_PMTUDISC_DO / IPV6_DONTFRAG): oversized sends fail with
 * DROP_TOO_BIG and the MTU logic (icmperr.h) keeps packets within the MTU.
 *
 * With an uplink (underlay_attach_uplink), Geneve also goes straight
 * through an AF_XDP port on the interface that holds the VTEP address:
 * its XDP program takes only UDP to (VTEP, port), the kernel keeps the
 * rest (ARP, ND, fragments, the host's own traffic). Sending there needs
 * the next hop's Ethernet address, which the caller resolves (neigh.h) and
 * publishes per peer (underlay_set_peers' nh words, read with relaxed
 * atomics); packets to a peer without one, and whatever the kernel still
 * receives on the socket, take the sockets: nothing waits or is lost while
 * a neighbour resolves.
 *
 * Owns: the sockets, the uplink port and the counters. Receive writes
 * straight into pool buffers at their default headroom, so decapsulation
 * is a pull.
 * Must not: parse Geneve (tunnel.h) or know the topology (the caller gives
 * the VTEP and the peers). Not thread-safe: one worker owns an underlay;
 * counters are plain integers written by that worker. */
#ifndef DETOUR_UNDERLAY_H
#define DETOUR_UNDERLAY_H

#include <stdatomic.h>

#include "drop.h"
#include "pkt.h"

#define UNDERLAY_TX_SOCKS 16
#define UNDERLAY_BURST BATCH_MAX

struct underlay;

struct underlay_stats {
	uint64_t rx_pkts, rx_bytes;   /* accepted datagrams (UDP payload bytes) */
	uint64_t tx_pkts, tx_bytes;   /* sent datagrams */
	uint64_t rx_unknown_vtep;     /* from an address that is not a known VTEP: dropped */
	uint64_t rx_trunc;            /* longer than a buffer (PKT_DATA_ROOM): dropped */
	uint64_t rx_no_buf;           /* bursts cut short by an empty pool */
	uint64_t tx_full;             /* EAGAIN/ENOBUFS: dropped (DROP_TX_FULL) */
	uint64_t tx_too_big;          /* EMSGSIZE, would fragment: dropped (DROP_TOO_BIG) */
	uint64_t tx_error;            /* other send errors, wrong address family (DROP_TX_ERROR) */
	uint64_t tx_sock_pkts[UNDERLAY_TX_SOCKS]; /* packets sent per source port (sockets) */
	uint64_t up_rx_pkts, up_tx_pkts; /* of rx_pkts/tx_pkts: through the uplink */
	uint64_t up_rx_bad;           /* uplink frames with bad outer headers: dropped */
	uint64_t up_tx_no_nh;         /* sent on the sockets: the peer's next hop is not known */
	struct ipaddr last_unknown;   /* last non-VTEP sender seen (for diagnostics) */
};

struct underlay_peer_stats {
	struct ipaddr vtep;
	uint64_t rx_pkts, rx_bytes, rx_drops;
	uint64_t tx_pkts, tx_bytes, tx_drops;
	uint64_t up_rx_pkts, up_tx_pkts; /* of rx_pkts/tx_pkts: through the uplink */
};

/* Open the sockets on vtep (IPv4-mapped or IPv6) and port (GENEVE_PORT).
 * NULL with a message in err on failure. The allow-list starts empty. */
struct underlay *underlay_open(const struct ipaddr *vtep, uint16_t port, char *err, size_t errlen);
/* The same for one of `workers` (> 1) worker threads, each with an
 * underlay of its own, opened in worker order: the receive sockets form
 * a SO_REUSEPORT group whose eBPF program (steer_bpf.h) gives every
 * datagram to the worker that owns its inner flow (the kernel's hash of
 * the outer addresses where the program cannot be loaded). */
struct underlay *underlay_open_shared(const struct ipaddr *vtep, uint16_t port, uint16_t workers, char *err,
				      size_t errlen);
/* Does the group pick the owner worker (the program is attached)? */
bool underlay_steered(const struct underlay *u);
void underlay_close(struct underlay *u);

/* The receive socket (poll it for POLLIN). */
int underlay_fd(const struct underlay *u);
/* Local address and port it was opened with. */
const struct ipaddr *underlay_vtep(const struct underlay *u);
uint16_t underlay_port(const struct underlay *u);

/* Also send and receive through an AF_XDP port on ifname, the uplink, as
 * worker `worker` of `workers` (0/0: the only one). false with a message
 * when the port cannot be had: the sockets carry everything then. */
bool underlay_attach_uplink(struct underlay *u, const char *ifname, uint16_t worker, uint16_t workers, char *err,
			    size_t errlen);
/* The uplink port's fd to poll (POLLIN), its name and index; -1/NULL/0 without one. */
int underlay_uplink_fd(const struct underlay *u);
const char *underlay_uplink_name(const struct underlay *u);
int underlay_uplink_ifindex(const struct underlay *u);

/* A next-hop word: UNDERLAY_NH_VALID | the 48-bit Ethernet address. 0 = unknown. */
#define UNDERLAY_NH_VALID (1ull << 48)
uint64_t underlay_nh_word(const uint8_t mac[6]);
/* Its Ethernet address; false for 0 (unknown). */
bool underlay_nh_mac(uint64_t w, uint8_t mac[6]);

/* Replace the set of known VTEPs (the other hosts; duplicates are merged).
 * nh (may be NULL) holds the next hop of vteps[i] in nh[i], written by
 * another thread at any time; it must stay valid until the next call or
 * the close. Counters of VTEPs still in the set are kept. false (nothing
 * changed) with err set when memory runs out or n > 65535. */
bool underlay_set_peers(struct underlay *u, const struct ipaddr *vteps, uint32_t n, const _Atomic uint64_t *nh,
			char *err, size_t errlen);
bool underlay_known_vtep(const struct underlay *u, const struct ipaddr *a);

/* Receive up to max (<= UNDERLAY_BURST) datagrams into buffers from pool:
 * pkts[i]->data..len is the UDP payload and from[i] its sender VTEP.
 * Datagrams from unknown senders or too long are dropped and counted here.
 * Returns how many were stored (0 when nothing is waiting). */
uint32_t underlay_rx_burst(struct underlay *u, struct pkt_pool *pool, struct pkt **pkts, struct ipaddr *from,
			   uint32_t max);

/* Send pkts[i]->data..len (a Geneve payload) to dst[i]:port, from the
 * source port chosen by flow_hash[i] (NULL: pkts[i]->hash). Packets of one
 * flow keep their order. Does not free the packets. res (may be NULL)
 * receives DROP_NONE or the drop reason per packet. Returns packets sent. */
uint32_t underlay_tx_burst(struct underlay *u, struct pkt *const *pkts, const struct ipaddr *dst,
			   const uint64_t *flow_hash, uint32_t n, enum drop_reason *res);

/* The UDP source port a flow hash is sent from. */
uint16_t underlay_tx_port(const struct underlay *u, uint64_t flow_hash);

/* Count a drop against the peer vtep (e.g. a malformed Geneve payload
 * found by tunnel_decap); ignored if vtep is not a peer. */
void underlay_peer_rx_drop(struct underlay *u, const struct ipaddr *vtep);

void underlay_get_stats(const struct underlay *u, struct underlay_stats *out);
/* Peers in the order given to underlay_set_peers (duplicates removed). */
uint32_t underlay_n_peers(const struct underlay *u);
bool underlay_peer_stats(const struct underlay *u, uint32_t i, struct underlay_peer_stats *out);

#endif
