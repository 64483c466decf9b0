/* port_proxy.c - service-plane entry and exit of local guests' traffic. */
#include "port_proxy.h"

void port_proxy_encap(const struct hostcfg *hc, struct pkt *p, const struct path *path, bool reverse,
		      uint16_t guest, bool ingress, bool is_copy)
{
	struct sp_meta *md = &p->md;
	md->spi = reverse ? path->spi_rev : path->spi_fwd;
	md->si = 255;
	md->dir = reverse ? SP_DIR_REVERSE : SP_DIR_FORWARD;
	md->fp_action = FP_NONE;
	md->fp_service = 0;
	md->is_copy = is_copy;
	md->ingress = ingress;
	md->chain = path->chain;
	md->guest_port = guest;
	md->vni = p->key.vni;
	md->flow_tag = flow_tuple_tag(pkt_tuple_hash(p));
	memcpy(md->orig_dst.b, p->data, 6);
	memcpy(md->orig_src.b, p->data + 6, 6);
	md->ret_vtep = hc->vtep;
	md->ret_spmac = hc->pp_spmac;
	md->n_unknown = 0;
	md->ttl = 0; /* fresh: the tunnel sends NSH_DEFAULT_TTL */
	md->path_plus1 = (uint16_t)(path - hc->ps->paths + 1);
	md->path_rev = reverse;
	p->flags |= PKT_F_HAS_MD;
}

void port_proxy_decap(struct pkt *p)
{
	memcpy(p->data, p->md.orig_dst.b, 6);
	memcpy(p->data + 6, p->md.orig_src.b, 6);
	p->flags &= ~PKT_F_HAS_MD;
}
