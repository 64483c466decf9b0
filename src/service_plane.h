/* service_plane.h - the service plane of SPEC sections 3 (steps 4-6) and 4:
 * the next-hop decision on (SPI, SI) and switching on the destination
 * spmac to a local service proxy, the local port proxy, or (next issue) the
 * Geneve tunnel to the host owning that spmac.
 *
 * Owns: the frame's service-plane MAC pair (between hosts) and md.si.
 * Must not: know guests (only the carried return address leads home). */
#ifndef DETOUR_SERVICE_PLANE_H
#define DETOUR_SERVICE_PLANE_H

#include "hostcfg.h"
#include "pkt.h"

enum spd_kind {
	SPD_NODE,       /* local service proxy of node `node` */
	SPD_PORT_PROXY, /* this host's port proxy: the packet is home */
	SPD_REMOTE,     /* another host: `vtep` (next issue) */
	SPD_NONE,       /* no such spmac / path: drop */
};

/* Small enough to come back in registers: a by-value address here was
 * stored piecewise and read back whole, a store-forwarding stall per hop. */
struct sp_dest {
	enum spd_kind kind;
	uint16_t node;
	const struct ipaddr *vtep; /* SPD_REMOTE: in the topology or in p->md */
};

/* Advance p past the hop it has just done (md.si) -- or, with first=true,
 * to its first hop -- and switch on the next hop: a local node, the local
 * port proxy, or another host. A frame for another host is addressed:
 * src = the sender's spmac (the port proxy's with first, else that of node
 * p->next, the hop just done), dst = the next node's spmac or, at the end
 * of the path, the return spmac; a local one keeps its MACs (the proxy it
 * goes to writes its own). */
struct sp_dest service_plane_forward(const struct hostcfg *hc, struct pkt *p, bool first);

#endif
