/* service_proxy.h - the service proxy of SPEC sections 3 and 4: one per
 * service node. Formats service-plane packets in the node's mode (nsh, l2,
 * l3), takes them back, checks what the node returned, and recovers the
 * service-plane metadata that SFC-unaware nodes cannot carry.
 *
 * Metadata recovery: when a packet goes to a node, its metadata is stored
 * in a per-worker flow-state table under the flow's 5-tuple as sent (plus
 * what the node returns besides: the chain and direction for nsh, the side
 * for l2), and for nodes that may rewrite addresses (l3, nsh) also under
 * each of its two endpoints (address, port, protocol). On return, the exact
 * key is looked up first; a miss means the node rewrote the packet (NAT),
 * and the endpoint the node did not rewrite (the source for DNAT, the
 * destination for SNAT and for un-NATed replies) finds the entry, which is
 * then learned under the rewritten 5-tuple. A key written by two guests or
 * tenants recovers nothing (fail closed).
 *
 * An entry is 32 bytes, four to a set of two cache lines: the key's hash,
 * what varies per flow and hop, and a reference to the flow's context
 * (guest port, VNI, original MACs, return address: what all flows between
 * two guests share), which a small second table keeps once. A context in
 * use is never written over: a packet of a new context that finds no room
 * is dropped before it reaches the node (DROP_SN_STATE_FULL). A key's set
 * comes from its tuple alone, so a flow's state at all of this host's
 * nodes shares one set (the next hop finds it in cache); a full set
 * spills into its partner (the other set of its 256-byte pair), a pair
 * full of live exact keys into the place's other pair (one of many,
 * chosen by the place's bits, so no fixed group of sets churns). Endpoint
 * keys give way to exact keys (an exact key is read by every packet, an
 * endpoint key only until a rewritten tuple is learnt): an endpoint key
 * never pushes out a live exact key, and an exact key takes an endpoint
 * key's way in its own set (moving it to the partner if there is room).
 * A live key pushed out leaves a tombstone for SPX_INFLIGHT_S (10 s): the
 * same key written by another owner meanwhile is refused
 * (DROP_SN_KEY_CONFLICT), so a packet of the pushed-out flow still at the
 * node never comes back into another guest's or tenant's state.
 *
 * Owns: the flow-state table (the per-node counters are the datapath's).
 * Must not: choose next hops (service_plane) or classify. */
#ifndef DETOUR_SERVICE_PROXY_H
#define DETOUR_SERVICE_PROXY_H

#include "drop.h"
#include "hostcfg.h"
#include "pkt.h"

struct spx_table;

/* capacity: entries, at least 64, a multiple of 64. */
struct spx_table *spx_table_create(uint32_t capacity);
void spx_table_destroy(struct spx_table *t);
void spx_table_stats(const struct spx_table *t, uint64_t *entries, uint64_t *evicted, uint64_t *misses);
/* Where the exact keys of a 5-tuple (flow_tuple_hash) live: the first set
 * of their pair, and of the pair they spill into (tests fill them). */
void spx_table_pairs(const struct spx_table *t, uint64_t tuple_hash, uint32_t *pair, uint32_t *spill);
/* Memory the table holds (its sets, contexts and tombstones). */
size_t spx_table_bytes(const struct spx_table *t);

/* p is a parsed service-plane packet (PKT_F_HAS_MD, md.si = this node's
 * hop) going to local node `node`. Records the metadata and rewrites the
 * frame for the node's mode. Returns the local port to send on, or
 * PORT_NONE with *why set. */
uint16_t service_proxy_to_node(const struct hostcfg *hc, struct spx_table *t, uint16_t node, struct pkt *p,
			       uint64_t now_ns, enum drop_reason *why);

enum spx_result {
	SPX_OK,    /* p is back on the service plane: md valid, md.si = SI of the hop done */
	SPX_DROP,  /* *why says why */
	SPX_REPLY, /* p was turned into an ARP/ND answer: send it back out p->in_port */
};

/* A frame arrived on a port of local node `node`: service_proxy_rx_parse
 * (decode, answer ARP/ND), then service_proxy_rx_finish (recover the
 * metadata, check the return); a vector of frames can prefetch the state
 * between the two. service_proxy_from_node does both. */
enum spx_result service_proxy_rx_parse(const struct hostcfg *hc, uint16_t node, struct pkt *p, enum drop_reason *why);
enum spx_result service_proxy_rx_finish(const struct hostcfg *hc, struct spx_table *t, uint16_t node, struct pkt *p,
					uint64_t now_ns, enum drop_reason *why);
/* Prefetch the flow state of packet p at node (before to_node or
 * rx_finish): service_proxy_prefetch fetches its set (known from the key's
 * hash) and keeps the key in p (sp_hash, sp_place) for the calls that
 * follow. A vector later, before to_node, service_proxy_prefetch_new reads
 * the set and, for a flow not yet recorded at a routed or nsh node,
 * fetches the endpoint keys' sets its record will write. A packet back
 * from one local node and off to the next needs no second prefetch: all
 * the keys of one 5-tuple share a set, fetched on its return (clear
 * sp_hash instead: prefetch_new computes the key). */
void service_proxy_prefetch(const struct hostcfg *hc, const struct spx_table *t, uint16_t node, struct pkt *p);
void service_proxy_prefetch_new(const struct hostcfg *hc, const struct spx_table *t, uint16_t node, struct pkt *p);
enum spx_result service_proxy_from_node(const struct hostcfg *hc, struct spx_table *t, uint16_t node,
					struct pkt *p, uint64_t now_ns, enum drop_reason *why);

#endif
