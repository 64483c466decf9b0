/* guest_plane.c - MAC table: open addressing, linear probing. */
#include "guest_plane.h"

/* The MAC and VNI packed in registers: a key buffer written in parts and
 * hashed in words would stall on store forwarding (every packet of the
 * guest plane comes here). */
static uint32_t slot_of(uint32_t vni, const struct mac *m)
{
	uint32_t lo;
	uint16_t hi;
	memcpy(&lo, m->b, 4);
	memcpy(&hi, m->b + 4, 2);
	uint64_t w[2] = {lo | (uint64_t)hi << 32, vni};
	return (uint32_t)hash_bytes(w, sizeof(w), 0x9a7e) & (GP_TABLE_SIZE - 1);
}

static struct gp_entry *find(struct guest_plane *gp, uint32_t vni, const struct mac *m, bool insert)
{
	uint32_t s = slot_of(vni, m);
	for (int i = 0; i < 32; i++, s = (s + 1) & (GP_TABLE_SIZE - 1)) {
		struct gp_entry *e = &gp->t[s];
		if (e->vni == vni && mac_eq(&e->mac, m))
			return e;
		if (e->vni == 0)
			return insert ? e : NULL;
	}
	return NULL;
}

void guest_plane_load(struct guest_plane *gp, const struct hostcfg *hc)
{
	memset(gp->t, 0, sizeof(gp->t));
	const struct topology *t = hc->topo;
	for (uint16_t g = 0; g < t->n_guests; g++) {
		uint32_t vni = t->networks[t->guests[g].network].vni;
		struct gp_entry *e = find(gp, vni, &t->guests[g].mac, true);
		if (!e)
			continue;
		e->vni = vni;
		e->mac = t->guests[g].mac;
		e->port = hc->guest_port[g] != PORT_NONE ? hc->guest_port[g] : GP_REMOTE;
		e->host = t->guests[g].host;
		e->is_static = 1;
	}
}

uint16_t guest_plane_lookup(const struct guest_plane *gp, uint32_t vni, const struct mac *dst, uint16_t *host)
{
	const struct gp_entry *e = find((struct guest_plane *)gp, vni, dst, false);
	if (!e)
		return PORT_NONE;
	*host = e->host;
	return e->port;
}

void guest_plane_learn(struct guest_plane *gp, uint32_t vni, const struct mac *src, uint16_t port, uint64_t now_ns)
{
	if (mac_is_multicast(src) || mac_is_zero(src))
		return;
	struct gp_entry *e = find(gp, vni, src, true);
	if (!e) {
		gp->learn_refused++;
		return;
	}
	if (e->vni && e->is_static)
		return;
	if (e->vni == 0 || e->port != port)
		gp->learned++;
	e->vni = vni;
	e->mac = *src;
	e->port = port;
	e->seen_ns = now_ns;
}
