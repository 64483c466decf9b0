/* service_plane.c - next hop on (SPI, SI) and spmac switching. */
#include "service_plane.h"

/* Addressed to another host: the frame carries the service-plane MAC pair
 * across, from the sender (the port proxy on the first hop, else the node
 * just done); a local hop's proxy writes the MACs its node needs instead. */
static struct sp_dest to_remote(const struct hostcfg *hc, struct pkt *p, bool first, const struct mac *to,
				const struct ipaddr *vtep)
{
	const struct mac *from = first ? &hc->pp_spmac : &hc->ps->node_spmac[p->next];
	memcpy(p->data, to->b, 6);
	memcpy(p->data + 6, from->b, 6);
	return (struct sp_dest){.kind = SPD_REMOTE, .vtep = vtep};
}

static struct sp_dest to_home(const struct hostcfg *hc, struct pkt *p, bool first)
{
	if (mac_eq(&p->md.ret_spmac, &hc->pp_spmac) && ipaddr_eq(&p->md.ret_vtep, &hc->vtep))
		return (struct sp_dest){.kind = SPD_PORT_PROXY};
	return to_remote(hc, p, first, &p->md.ret_spmac, &p->md.ret_vtep);
}

struct sp_dest service_plane_forward(const struct hostcfg *hc, struct pkt *p, bool first)
{
	struct sp_dest d = {.kind = SPD_NONE};
	bool reverse;
	const struct path *path = NULL;
	uint16_t pi = (uint16_t)(p->md.path_plus1 - 1);
	if (p->md.path_plus1 && pi < hc->ps->n_paths &&
	    (p->md.path_rev ? hc->ps->paths[pi].spi_rev : hc->ps->paths[pi].spi_fwd) == p->md.spi) {
		path = &hc->ps->paths[pi];
		reverse = p->md.path_rev;
	} else {
		path = path_by_spi(hc->ps, p->md.spi, &reverse);
		if (!path)
			return d;
		p->md.path_plus1 = (uint16_t)(path - hc->ps->paths + 1);
		p->md.path_rev = reverse;
	}
	uint8_t si;
	uint16_t node;
	if (first)
		node = hostcfg_next_hop(hc, path, reverse, 255, &si);
	else if (p->md.si == 0)
		node = TOPO_NO_INDEX;
	else
		node = hostcfg_next_hop(hc, path, reverse, (uint8_t)(p->md.si - 1), &si);
	if (node == TOPO_NO_INDEX) {
		/* the end of the path is a hop too: SI counts it (SPEC 3, step 6) */
		if (!first && p->md.si)
			p->md.si--;
		return to_home(hc, p, first);
	}
	p->md.si = si;
	if (hc->node_port[node][0] == PORT_NONE) /* on another host */
		return to_remote(hc, p, first, &hc->ps->node_spmac[node], &hc->topo->hosts[hc->topo->nodes[node].host].vtep);
	d.kind = SPD_NODE;
	d.node = node;
	return d;
}
