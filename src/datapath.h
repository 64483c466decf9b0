/* datapath.h - the packet engine of one worker: takes batches of received
 * frames per port and runs them through the stages of SPEC section 3
 * (parse, classify + connection table + path selection, port proxy,
 * service plane, service proxies, guest plane), collecting output frames in
 * per-port batches handed to a transmit callback.
 *
 * Owns: the worker's mutable state: buffer pool, connection table, proxy
 * flow-state table, MAC table, counters. All of it is touched by this
 * worker only: no locks.
 * Must not: do I/O itself (the tx callback and the caller's RX do), or
 * change the host configuration (it reads it). */
#ifndef DETOUR_DATAPATH_H
#define DETOUR_DATAPATH_H

#include "conntrack.h"
#include "drop.h"
#include "guest_plane.h"
#include "flowcache.h"
#include "hostcfg.h"
#include "pkt.h"
#include "service_proxy.h"

/* Transmit frames on local port `port`. The callee copies or sends them;
 * the datapath frees the buffers when it returns, except those the callee
 * kept (it sets their pointers to NULL and must give them back to the
 * worker's pool, e.g. by passing them to dp_input). */
typedef void (*dp_tx_fn)(void *ctx, uint16_t port, struct pkt **pkts, uint32_t n);
/* Send Geneve payloads (UDP 6081) to VTEPs; the datapath frees the buffers. */
typedef void (*dp_tunnel_fn)(void *ctx, struct pkt **pkts, const struct ipaddr *dst, uint32_t n);

#define PORT_TUNNEL 0xfffd /* in_port of frames that came from another host */

/* Several workers (steer.h): give a frame a service node returned, which
 * matches no flow state here, to the next worker (frame as received);
 * true if it took it. */
typedef bool (*dp_pass_fn)(void *ctx, struct pkt *p);

struct dp_port_stats {
	uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes, drops;
};

struct dp_node_stats {
	uint64_t to_node, from_node, drops;
};

enum dp_stage { ST_GUEST_RX, ST_NODE_RX, ST_TUNNEL_RX, ST_CLASSIFY, ST_TO_NODE, ST_HOME, ST_L2, ST__MAX };

#define DP_QUEUE 1024
#define DP_FLOWCACHE 32768 /* flow cache entries (16 bytes each) */

struct dp_queue {
	uint32_t head, n;
	struct pkt *p[DP_QUEUE];
};

struct dp_path_stats {
	uint64_t fwd_pkts, rev_pkts;
};

struct datapath {
	struct hostcfg *hc;
	struct pkt_pool *pool;
	struct conntrack *ct;
	struct flowcache fc;    /* in front of the classifier and ct */
	struct spx_table *spx;
	struct guest_plane *gp;
	dp_tx_fn tx;
	void *tx_ctx;
	dp_tunnel_fn tun_tx;
	void *tun_ctx;
	struct steer *steer;    /* several workers: NAT tuples are recorded there */
	uint16_t worker;
	dp_pass_fn pass;
	void *pass_ctx;
	struct pkt_batch tun_out;
	struct ipaddr tun_dst[BATCH_MAX];
	uint64_t now_ns;
	uint64_t swept_ns;      /* connection aging: the sweep has visited the entries due by then */
	bool ct_overflow;       /* table was full: replies may be stateless */

	uint16_t n_ports;
	struct pkt_batch *out;  /* [n_ports] */
	struct dp_port_stats *port_stats; /* [n_ports] */
	uint64_t *rule_hits;    /* [n_rules] */
	uint8_t *nat_guest;     /* [n_guests]: a NAT alias exists at this guest's points */
	struct dp_node_stats *node_stats; /* [n_nodes] */
	struct dp_path_stats *path_stats; /* [n_paths] */
	struct dp_queue q[ST__MAX];
	uint64_t drops[DROP__MAX];
	uint64_t stateless_flows, copies, flows_repinned, nat_aliases, nat_aliases_stale, passed_on;
	uint64_t mtu_too_big, mtu_fragmented; /* guest packets answered with ICMP / fragmented for the tunnel */
};

/* pool_size buffers, ct_capacity connections. */
struct datapath *dp_create(struct hostcfg *hc, uint32_t pool_size, uint32_t ct_capacity, dp_tx_fn tx, void *tx_ctx);
/* Entries of the proxy flow-state table that dp_create gives a connection
 * table of ct_capacity. */
uint32_t dp_spx_capacity(uint32_t ct_capacity);
void dp_destroy(struct datapath *dp);
/* Swap in a new configuration (reload). Flows whose path still exists with
 * the same SPI keep it; the others are re-selected on their next packet. */
bool dp_set_config(struct datapath *dp, struct hostcfg *hc);

/* Where tunnelled packets go (hosts joined by Geneve). Without it they drop. */
void dp_set_tunnel(struct datapath *dp, dp_tunnel_fn fn, void *ctx);
/* This datapath is worker `worker` of those steer spreads flows over. */
void dp_set_worker(struct datapath *dp, struct steer *s, uint16_t worker, dp_pass_fn pass, void *ctx);
/* Process n frames received on local port `port`, or n Geneve payloads
 * from known VTEPs when port is PORT_TUNNEL. Takes ownership. */
void dp_input(struct datapath *dp, uint16_t port, struct pkt **pkts, uint32_t n);
/* The same for frames that each carry the port they came in on (in_port:
 * a local port or PORT_TUNNEL), e.g. handed over by another worker. */
void dp_input_handed(struct datapath *dp, struct pkt **pkts, uint32_t n);
/* Hand all pending output batches to the tx callback. */
void dp_flush(struct datapath *dp);
/* Housekeeping: age connections. The sweep over the connection table is
 * paced by time (the whole table once per DP_SWEEP_NS), not by calls: a
 * worker woken for every packet or two scans no more than one woken once
 * in a while. Bounded work per call (DP_SWEEP_MAX entries). */
#define DP_SWEEP_NS 1000000000ull
#define DP_SWEEP_MIN 64
#define DP_SWEEP_MAX 32768
void dp_tick(struct datapath *dp, uint64_t now_ns);

#endif
