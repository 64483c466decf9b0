/* path.h - derived service-plane state of SPEC section 6: the paths of every
 * chain with their forward and reverse SPIs, the spmacs of every port proxy
 * and service proxy, and the (SPI, SI) next-hop table.
 *
 * Owns: the deterministic derivation from a topology, so every host computes
 * identical SPIs and spmacs from the same file (no dependence on host, time
 * or memory addresses).
 * Must not: know about liveness or selection (selector.h) or packets. */
#ifndef DETOUR_PATH_H
#define DETOUR_PATH_H

#include "topology.h"

#define PATH_MAX_PER_CHAIN 64
#define PATH_MAX_HOPS 16

struct path {
	uint16_t chain;                 /* chain index */
	uint32_t spi_fwd, spi_rev;      /* 24-bit, never 0 */
	uint16_t n_hops;                /* = services in chain */
	uint16_t nodes[PATH_MAX_HOPS];  /* forward order: node index per hop */
	uint16_t host_crossings;
};

/* Next hop of a frame at (SPI, SI) after the node at that position. */
enum nh_kind {
	NH_NODE = 0,     /* send to node `node` (hop at SI) */
	NH_END = 1,      /* end of path: return to the carried return address */
};

struct path_set {
	uint16_t n_paths;
	struct path *paths;
	/* per chain: index range of its paths in `paths` (paths grouped by chain) */
	uint16_t *chain_first, *chain_n;
	/* spmac of each node's service proxy, and of each host's port proxy */
	struct mac *node_spmac;  /* [n_nodes] */
	struct mac *host_spmac;  /* [n_hosts] */
};

/* Derive everything from t. Never fails for a validated topology except on
 * memory exhaustion (NULL). Paths per chain: every combination of one node
 * per service, sorted by fewest host crossings then by node names, capped at
 * PATH_MAX_PER_CHAIN. SPIs are a stable hash of (chain name, node names), so
 * a path keeps its SPI when other paths come or go. */
struct path_set *path_set_build(const struct topology *t);
void path_set_free(struct path_set *ps);

/* Path by SPI (forward or reverse); NULL if unknown. *reverse set accordingly. */
const struct path *path_by_spi(const struct path_set *ps, uint32_t spi, bool *reverse);

/* The node at hop `si` of path p in direction `reverse`: SI 255 is the first
 * hop. Returns TOPO_NO_INDEX when si is past the last hop (end of path) or
 * before the first. */
uint16_t path_node_at(const struct path *p, bool reverse, uint8_t si);

/* Which spmac owns an address: a node proxy, a host port proxy, or none. */
struct spmac_owner {
	bool is_node;          /* else host port proxy */
	uint16_t index;        /* node or host index */
};
bool path_spmac_lookup(const struct path_set *ps, const struct topology *t, const struct mac *m,
		       struct spmac_owner *out);

#endif
