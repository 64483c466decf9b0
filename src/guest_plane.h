/* guest_plane.h - per-network L2 switching among guest ports (SPEC section
 * 1, "guest plane"): a MAC table per worker holding the topology's static
 * guest MACs and learned ones, and the flood sets of each network.
 *
 * Owns: the MAC table. Static entries come from the host configuration and
 * are never overwritten by learning (a guest cannot steal another guest's
 * MAC). Must not: classify, or see the service plane. */
#ifndef DETOUR_GUEST_PLANE_H
#define DETOUR_GUEST_PLANE_H

#include "hostcfg.h"

#define GP_TABLE_SIZE 4096 /* power of two */
#define GP_REMOTE 0xfffe   /* the MAC lives on another host: see gp_entry.host */

struct gp_entry {
	uint32_t vni;      /* 0 = empty */
	struct mac mac;
	uint16_t port;     /* local port id, or GP_REMOTE */
	uint16_t host;     /* GP_REMOTE: the host index */
	uint8_t is_static;
	uint64_t seen_ns;
};

struct guest_plane {
	struct gp_entry t[GP_TABLE_SIZE];
	uint64_t learned, learn_refused;
};

/* Reset, then load static entries for every guest of hc: local ones to
 * their ports, remote ones to their hosts. */
void guest_plane_load(struct guest_plane *gp, const struct hostcfg *hc);
/* Output port for (vni, dst): a local port, GP_REMOTE (then *host is set),
 * or PORT_NONE if unknown. */
uint16_t guest_plane_lookup(const struct guest_plane *gp, uint32_t vni, const struct mac *dst, uint16_t *host);
/* Learn src on port (no-op for static entries and multicast sources). */
void guest_plane_learn(struct guest_plane *gp, uint32_t vni, const struct mac *src, uint16_t port,
		       uint64_t now_ns);

#endif
