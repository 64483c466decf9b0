/* hostcfg.h - one host's view of the desired state: which local interfaces
 * are guest ports and service-node ports, its port-proxy spmac and VTEP,
 * the derived paths, the compiled classifier, and the liveness of service
 * nodes with the per-chain path selectors that follow from it.
 *
 * Owns: everything derived from (topology, host name). Built whole on load
 * or reload and swapped in. Node liveness and what follows from it (the
 * per-chain selectors, bypassed and blocked chains) is a separate object,
 * struct hc_live, that hostcfg_set_node_rcu() replaces whole and publishes
 * with an RCU pointer (liburcu) while workers forward: readers take
 * hostcfg_live() once per use and never keep it across a quiescent state;
 * the writer frees the old object after a grace period.
 * Must not: hold per-packet or per-flow state (that is the worker's). */
#ifndef DETOUR_HOSTCFG_H
#define DETOUR_HOSTCFG_H

#include <urcu/static/pointer.h>

#include "classifier.h"
#include "path.h"
#include "selector.h"
#include "topology.h"

#define PORT_NONE 0xffff
#define HC_NSH_TMPL 32          /* bytes per template: 30 used, [31] = 1 when present */
#define HC_NSH_TMPL_LEN 30
#define HC_NSH_TMPL_SI 21       /* offset of the SI to patch */
#define HC_NSH_TMPL_FLAGS 29    /* offset of the chain TLV's flags byte */

enum port_kind {
	PORT_GUEST = 0,  /* a guest's port: guest plane */
	PORT_SN = 1,     /* the single port of an nsh or l3 node */
	PORT_SN_IN = 2,  /* l2 node, `in` side (forward traffic enters the node here) */
	PORT_SN_OUT = 3, /* l2 node, `out` side */
};

struct hc_port {
	char ifname[TOPO_IFNAME_MAX];
	enum port_kind kind;
	uint16_t ref;     /* guest index (PORT_GUEST) or node index */
	uint32_t vni;     /* guest network VNI (PORT_GUEST) */
	enum port_io io;  /* resolved: the port's, else its host's, else AF_PACKET */
};

struct hostcfg {
	struct topology *topo;   /* owned */
	struct path_set *ps;     /* owned */
	struct classifier *cls;  /* owned */
	uint16_t self;           /* this host's index */
	struct mac pp_spmac;     /* this host's port proxy spmac */
	struct ipaddr vtep;

	uint16_t n_ports;
	struct hc_port *ports;
	uint16_t *guest_port;    /* [n_guests]: local port id or PORT_NONE */
	uint16_t (*node_port)[2];/* [n_nodes]: local port ids ([0] single/in, [1] out); PORT_NONE: on another host */
	uint8_t *node_mode;      /* [n_nodes]: its service's enum svc_mode (read on every hop:
				  * one load instead of four dependent ones through the topology) */
	uint8_t *guest_rules;    /* [n_guests]: bit 0 rules at egress, bit 1 rules at ingress */

	/* hosts joined by Geneve */
	uint16_t n_peers;
	struct ipaddr *peers;    /* VTEPs of every other host */
	uint8_t *net_hosts;      /* [n_networks * n_hosts]: host has guests in the network */
	uint16_t mtu;            /* this host's underlay MTU */

	/* encapsulation templates: the head of the frame to the nsh node at
	 * (path, position, direction), Ethernet + NSH base + chain TLV, with
	 * SI and flags to patch in (service_proxy.c) */
	uint8_t (*nsh_tmpl)[HC_NSH_TMPL];   /* [n_paths * PATH_MAX_HOPS * 2] */
	uint8_t *path_remote;    /* [n_paths]: a node of the path is on another host */

	struct hc_live *live;    /* RCU pointer: read through hostcfg_live() */
};

/* Liveness and selection. Immutable once published. */
struct hc_live {
	uint8_t *node_up;        /* [n_nodes] */
	struct selector **sel;   /* [n_chains] over that chain's paths */
	uint32_t *bypass;        /* [n_chains] chain positions skipped (failure allow, no live node) */
	uint8_t *blocked;        /* [n_chains] a `block` service has no live node */
	uint8_t *path_live;      /* [n_paths] all nodes live but at bypassed positions */
	uint64_t generation;     /* bumped on every liveness change */
};

/* The NSH template of (path, position, direction), or NULL. */
static inline const uint8_t *hostcfg_nsh_tmpl(const struct hostcfg *hc, uint16_t path, unsigned pos, bool reverse)
{
	const uint8_t *t = hc->nsh_tmpl[((size_t)path * PATH_MAX_HOPS + pos) * 2 + (reverse ? 1 : 0)];
	return t[HC_NSH_TMPL - 1] ? t : NULL;
}

static inline const struct hc_live *hostcfg_live(const struct hostcfg *hc)
{
	return _rcu_dereference(hc->live);
}

/* Build the view of host `host` from t (which it takes ownership of, also on
 * failure). NULL with err set when the host is not in t or memory runs out. */
struct hostcfg *hostcfg_build(struct topology *t, const char *host, char *err, size_t errlen);
void hostcfg_free(struct hostcfg *hc);

/* Administrative / probed state of a node: publishes a new liveness object
 * and returns the one it replaced (NULL when nothing changed or memory ran
 * out, in which case nothing changed), to be freed with hostcfg_live_free()
 * once no worker can read it any more (after an RCU grace period). */
struct hc_live *hostcfg_set_node_rcu(struct hostcfg *hc, uint16_t node, bool up);
void hostcfg_live_free(const struct hostcfg *hc, struct hc_live *l);
/* The same with no concurrent readers (tests, set-up): frees at once. */
void hostcfg_set_node(struct hostcfg *hc, uint16_t node, bool up);
/* Copy liveness of nodes with the same name from old (used on reload). */
void hostcfg_inherit_liveness(struct hostcfg *hc, const struct hostcfg *old);

/* Choose a path of chain for a flow hash. Returns the path index, or
 * PATH_NONE when the chain is blocked. */
#define PATH_NONE 0xffff
uint16_t hostcfg_pick_path(const struct hostcfg *hc, uint16_t chain, uint64_t hash);

/* Is a path usable: all its nodes live except at bypassed positions.
 * (Every packet of a connection asks: one load.) */
static inline bool hostcfg_path_live(const struct hostcfg *hc, uint16_t path)
{
	return hostcfg_live(hc)->path_live[path];
}

/* The node serving hop `si` of path p in a direction, skipping bypassed
 * services: returns the node and sets *si_out to its SI, or TOPO_NO_INDEX at
 * the end of the path. (On every hop of every packet: inline.) */
static inline uint16_t hostcfg_next_hop(const struct hostcfg *hc, const struct path *p, bool reverse, uint8_t si,
					uint8_t *si_out)
{
	uint32_t bypass = hostcfg_live(hc)->bypass[p->chain];
	for (;;) {
		unsigned hop = 255u - si;
		if (hop >= p->n_hops)
			return TOPO_NO_INDEX;
		unsigned pos = reverse ? p->n_hops - 1u - hop : hop;
		if (!(bypass & (1u << pos))) {
			*si_out = si;
			return p->nodes[pos];
		}
		if (si == 0)
			return TOPO_NO_INDEX;
		si--;
	}
}

uint16_t hostcfg_port_by_ifname(const struct hostcfg *hc, const char *ifname);
/* Network index of a guest-plane VNI; TOPO_NO_INDEX if none. */
uint16_t hostcfg_network_by_vni(const struct hostcfg *hc, uint32_t vni);
static inline bool hostcfg_net_on_host(const struct hostcfg *hc, uint16_t net, uint16_t host)
{
	return hc->net_hosts[(size_t)net * hc->topo->n_hosts + host];
}

#endif
