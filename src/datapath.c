/* datapath.c - the stages of the packet walk (SPEC section 3) for one worker.
 *
 * Frames are received and transmitted in batches; within a batch each frame
 * runs to completion through the stages below, and its output is appended
 * to the batch of its output port:
 *
 *   guest port RX -> parse -> guest guard -> classify (egress)
 *        -> [port proxy -> service plane -> service proxy -> node port TX]
 *        -> guest plane -> classify (ingress of the destination) -> guest TX
 *   node port RX -> service proxy (check, recover) -> service plane
 *        -> next service proxy | port proxy (home) -> guest plane / guest TX
 */
#include "datapath.h"

#include <stdlib.h>

#include "port_proxy.h"
#include "service_plane.h"
#include "wire.h"

static void dp_drop(struct datapath *dp, struct pkt *p, enum drop_reason why)
{
	dp->drops[why]++;
	if (p->in_port < dp->n_ports)
		dp->port_stats[p->in_port].drops++;
	pkt_free(dp->pool, p);
}

static void flush_port(struct datapath *dp, uint16_t port)
{
	struct pkt_batch *b = &dp->out[port];
	if (!b->n)
		return;
	struct dp_port_stats *st = &dp->port_stats[port];
	for (uint32_t i = 0; i < b->n; i++)
		st->tx_bytes += b->p[i]->len;
	st->tx_pkts += b->n;
	dp->tx(dp->tx_ctx, port, b->p, b->n);
	pkt_free_bulk(dp->pool, b->p, b->n);
	b->n = 0;
}

static void emit(struct datapath *dp, uint16_t port, struct pkt *p)
{
	struct pkt_batch *b = &dp->out[port];
	batch_add(b, p);
	if (batch_full(b))
		flush_port(dp, port);
}

void dp_flush(struct datapath *dp)
{
	for (uint16_t i = 0; i < dp->n_ports; i++)
		flush_port(dp, i);
}

static void to_service_plane(struct datapath *dp, struct pkt *p, const struct mac *from, bool first);
static void guest_plane_forward(struct datapath *dp, struct pkt *p, uint32_t vni);

/* ---- port proxy: the packet is home ------------------------------------ */

#define ZONE_NAT_ALIAS 0x8000

/* A node on the path may have rewritten the packet (NAT). The replies then
 * carry the rewritten addresses: give the connection an alias under them so
 * the replies still find the reverse path (and the node can undo its NAT). */
static void learn_nat(struct datapath *dp, const struct pkt *p, uint16_t guest, bool ingress)
{
	struct flow_key k = p->key;
	k.vni = p->md.vni;
	k.zone = (uint16_t)(guest * 2 + (ingress ? 1 : 0));
	int dir;
	if (conntrack_lookup(dp->ct, &k, &dir))
		return; /* not rewritten */
	k.zone |= ZONE_NAT_ALIAS;
	if (conntrack_lookup(dp->ct, &k, &dir))
		return; /* alias known */
	bool reverse;
	const struct path *path = path_by_spi(dp->hc->ps, p->md.spi, &reverse);
	if (!path || reverse)
		return;
	struct conn *c = conntrack_insert(dp->ct, &k, (uint16_t)(guest * 2 + (ingress ? 0 : 1)), dp->now_ns);
	if (!c)
		return;
	c->spi_fwd = path->spi_fwd;
	c->spi_rev = path->spi_rev;
	c->chain = path->chain;
	c->rule = CLS_NO_RULE;
	c->action = RULE_REDIRECT;
	dp->nat_aliases++;
	dp->nat_guest[guest] = 1;
}

static void port_proxy_home(struct datapath *dp, struct pkt *p)
{
	const struct hostcfg *hc = dp->hc;
	if (p->md.is_copy) {
		dp_drop(dp, p, DROP_COPY_END);
		return;
	}
	uint16_t guest = p->md.guest_port;
	if (guest >= hc->topo->n_guests || hc->guest_port[guest] == PORT_NONE) {
		dp_drop(dp, p, DROP_SP_BAD_RETURN);
		return;
	}
	bool ingress = p->md.ingress;
	uint32_t vni = p->md.vni;
	if (p->md.dir == SP_DIR_FORWARD && p->key.is_ip && flow_tuple_tag(&p->key) != p->md.flow_tag)
		learn_nat(dp, p, guest, ingress);
	port_proxy_decap(p);
	uint16_t port = hc->guest_port[guest];
	if (ingress) {
		/* classified on its way into this guest: deliver it */
		emit(dp, port, p);
		return;
	}
	/* classified on its way out of this guest: continue on the guest plane */
	p->in_port = port;
	p->flags |= PKT_F_EGRESS_DONE;
	guest_plane_forward(dp, p, vni);
}

/* ---- service plane ----------------------------------------------------- */

static void to_node(struct datapath *dp, struct pkt *p, uint16_t node)
{
	enum drop_reason why = DROP_NONE;
	uint16_t port = service_proxy_to_node(dp->hc, dp->spx, node, p, dp->now_ns, &why);
	if (port == PORT_NONE) {
		dp->node_stats[node].drops++;
		dp_drop(dp, p, why);
		return;
	}
	dp->node_stats[node].to_node++;
	emit(dp, port, p);
}

static void to_service_plane(struct datapath *dp, struct pkt *p, const struct mac *from, bool first)
{
	struct sp_dest d = service_plane_forward(dp->hc, p, from, first);
	switch (d.kind) {
	case SPD_NODE:
		if (!dp->hc->node_up[d.node]) {
			dp_drop(dp, p, DROP_SN_DOWN);
			return;
		}
		to_node(dp, p, d.node);
		return;
	case SPD_PORT_PROXY:
		port_proxy_home(dp, p);
		return;
	case SPD_REMOTE:
		/* hosts joined by Geneve: next issue */
		dp_drop(dp, p, DROP_SP_UNKNOWN_SPMAC);
		return;
	case SPD_NONE:
		break;
	}
	dp_drop(dp, p, DROP_SP_NO_NEXTHOP);
}

/* ---- classification point ---------------------------------------------- */

/* Put p (or, for `copy`, a duplicate) on the path. */
static void steer(struct datapath *dp, struct pkt *p, uint16_t path_idx, bool reverse, uint16_t guest, bool ingress,
		  bool is_copy)
{
	const struct path *path = &dp->hc->ps->paths[path_idx];
	if (reverse)
		dp->path_stats[path_idx].rev_pkts++;
	else
		dp->path_stats[path_idx].fwd_pkts++;
	port_proxy_encap(dp->hc, p, path, reverse, guest, ingress, is_copy);
	to_service_plane(dp, p, &dp->hc->pp_spmac, true);
}

static uint16_t path_index(const struct hostcfg *hc, uint32_t spi)
{
	bool rev;
	const struct path *p = path_by_spi(hc->ps, spi, &rev);
	return p ? (uint16_t)(p - hc->ps->paths) : PATH_NONE;
}

/* Stateless reply detection when the connection table overflowed: is p the
 * reverse of a flow some rule at the opposite point of this guest steers? */
static uint16_t stateless_reverse_rule(struct datapath *dp, const struct pkt *p, uint16_t guest, bool ingress)
{
	struct flow_key r;
	flow_key_reverse(&p->key, &r);
	return classifier_lookup(dp->hc->cls, guest, !ingress, &r);
}

/* Returns true when p continues on normal forwarding (no chain, or `copy`),
 * false when it was consumed (steered or dropped). */
static bool classify(struct datapath *dp, struct pkt *p, uint16_t guest, bool ingress)
{
	const struct hostcfg *hc = dp->hc;
	if (!p->key.is_ip || !hc->guest_rules[guest])
		return true;
	p->key.zone = (uint16_t)(guest * 2 + (ingress ? 1 : 0));
	/* A connection exists here only for a packet that a rule of this point
	 * matches (forward) or whose reverse a rule of the opposite point matches
	 * (reply): the rules, in cache, screen out the rest before the table,
	 * whose misses would cost memory accesses. */
	uint8_t here = ingress ? 2 : 1, there = ingress ? 1 : 2;
	uint16_t rule = CLS_NO_RULE;
	bool maybe = false;
	if (hc->guest_rules[guest] & here) {
		rule = classifier_lookup(hc->cls, guest, ingress, &p->key);
		maybe = rule != CLS_NO_RULE;
	}
	if (!maybe && (hc->guest_rules[guest] & there))
		maybe = dp->nat_guest[guest] || stateless_reverse_rule(dp, p, guest, ingress) != CLS_NO_RULE;
	if (!maybe)
		return true;
	int dir = 0;
	struct conn *c = conntrack_lookup(dp->ct, &p->key, &dir);
	uint16_t path_idx;
	uint8_t action;
	bool reverse;
	if (c) {
		conntrack_update(dp->ct, c, dir, p->lay.tcp_flags, p->len, dp->now_ns);
		if (c->fp == FP_DROP) {
			dp_drop(dp, p, DROP_FLOW_DROP);
			return false;
		}
		if (c->fp == FP_ALLOW || c->action == RULE_SKIP)
			return true;
		path_idx = path_index(hc, c->spi_fwd);
		if (path_idx == PATH_NONE || !hostcfg_path_live(hc, path_idx)) {
			/* its path died: move the flow to a live path of its chain */
			uint16_t chain = path_idx != PATH_NONE ? hc->ps->paths[path_idx].chain : c->chain;
			path_idx = hostcfg_pick_path(hc, chain, flow_key_hash_sym(&p->key));
			if (path_idx == PATH_NONE) {
				dp_drop(dp, p, DROP_RULE_BLOCK);
				return false;
			}
			c->spi_fwd = hc->ps->paths[path_idx].spi_fwd;
			c->spi_rev = hc->ps->paths[path_idx].spi_rev;
			dp->flows_repinned++;
		}
		action = c->action;
		reverse = dir == 1;
	} else {
		reverse = false;
		if (rule == CLS_NO_RULE && dp->ct_overflow) {
			rule = stateless_reverse_rule(dp, p, guest, ingress);
			reverse = rule != CLS_NO_RULE;
		}
		if (rule == CLS_NO_RULE)
			return true;
		const struct topo_rule *r = &hc->topo->rules[rule];
		dp->rule_hits[rule]++;
		if (r->action == RULE_SKIP || r->chain == TOPO_NO_INDEX)
			return true;
		path_idx = hostcfg_pick_path(hc, r->chain, flow_key_hash_sym(&p->key));
		if (path_idx == PATH_NONE) {
			dp_drop(dp, p, DROP_RULE_BLOCK);
			return false;
		}
		action = (uint8_t)r->action;
		if (!reverse) {
			c = conntrack_insert(dp->ct, &p->key, (uint16_t)(guest * 2 + (ingress ? 0 : 1)), dp->now_ns);
			if (c) {
				c->spi_fwd = hc->ps->paths[path_idx].spi_fwd;
				c->spi_rev = hc->ps->paths[path_idx].spi_rev;
				c->chain = r->chain;
				c->rule = rule;
				c->action = action;
				conntrack_update(dp->ct, c, 0, p->lay.tcp_flags, p->len, dp->now_ns);
			} else {
				dp->ct_overflow = true;
				dp->stateless_flows++;
			}
		}
	}
	if (action == RULE_COPY) {
		struct pkt *copy = pkt_clone(dp->pool, p);
		if (!copy) {
			dp->drops[DROP_POOL_EMPTY]++;
			return true;
		}
		dp->copies++;
		steer(dp, copy, path_idx, reverse, guest, ingress, true);
		return true;
	}
	steer(dp, p, path_idx, reverse, guest, ingress, false);
	return false;
}

/* ---- guest plane -------------------------------------------------------- */

static void deliver_to_guest(struct datapath *dp, struct pkt *p, uint16_t port)
{
	if (!(p->flags & PKT_F_INGRESS_DONE)) {
		p->flags |= PKT_F_INGRESS_DONE;
		if (!classify(dp, p, dp->hc->ports[port].ref, true))
			return;
	}
	emit(dp, port, p);
}

static void guest_plane_forward(struct datapath *dp, struct pkt *p, uint32_t vni)
{
	const struct hostcfg *hc = dp->hc;
	struct mac dst;
	memcpy(dst.b, p->data, 6);
	uint16_t out = mac_is_multicast(&dst) ? PORT_NONE : guest_plane_lookup(dp->gp, vni, &dst);
	if (out != PORT_NONE) {
		if (out == p->in_port) {
			dp_drop(dp, p, DROP_L2_HAIRPIN);
			return;
		}
		deliver_to_guest(dp, p, out);
		return;
	}
	/* broadcast, multicast, unknown unicast: every other guest port of the network */
	uint16_t last = PORT_NONE;
	for (uint16_t i = 0; i < hc->n_ports; i++) {
		if (hc->ports[i].kind != PORT_GUEST || hc->ports[i].vni != vni || i == p->in_port)
			continue;
		if (last != PORT_NONE) {
			struct pkt *c = pkt_clone(dp->pool, p);
			if (c) {
				c->flags |= PKT_F_INGRESS_DONE;
				emit(dp, last, c);
			} else {
				dp->drops[DROP_POOL_EMPTY]++;
			}
		}
		last = i;
	}
	if (last == PORT_NONE) {
		dp_drop(dp, p, DROP_L2_NO_PORT);
		return;
	}
	p->flags |= PKT_F_INGRESS_DONE;
	emit(dp, last, p);
}

/* ---- input -------------------------------------------------------------- */

static bool is_spmac(const struct hostcfg *hc, const struct mac *m)
{
	struct spmac_owner o;
	if (m->b[0] != 0x02 || (m->b[1] != 0xd7 && m->b[1] != 0xd8))
		return false;
	return path_spmac_lookup(hc->ps, hc->topo, m, &o);
}

static void from_guest(struct datapath *dp, struct pkt *p)
{
	const struct hc_port *hp = &dp->hc->ports[p->in_port];
	enum drop_reason why = (p->flags & PKT_F_PARSED) ? DROP_NONE : wire_parse(p);
	/* a guest never reaches the service plane, whatever it sends */
	struct mac dst, src;
	if (p->len >= ETH_HLEN) {
		memcpy(dst.b, p->data, 6);
		memcpy(src.b, p->data + 6, 6);
		if (rd16(p->data + 12) == ETH_P_NSH || (why == DROP_NONE && p->lay.ethertype == ETH_P_NSH) ||
		    is_spmac(dp->hc, &dst) || is_spmac(dp->hc, &src))
			why = DROP_GUEST_SERVICE_PLANE;
	}
	if (why != DROP_NONE) {
		dp_drop(dp, p, why);
		return;
	}
	p->flags &= ~PKT_F_HAS_MD;
	if (!mac_eq(&src, &dp->hc->topo->guests[hp->ref].mac))
		guest_plane_learn(dp->gp, hp->vni, &src, p->in_port, dp->now_ns);
	p->key.vni = hp->vni;
	p->flags |= PKT_F_EGRESS_DONE;
	if (!classify(dp, p, hp->ref, false))
		return;
	guest_plane_forward(dp, p, hp->vni);
}

static void from_node(struct datapath *dp, struct pkt *p)
{
	const struct hc_port *hp = &dp->hc->ports[p->in_port];
	uint16_t node = hp->ref;
	enum drop_reason why = DROP_NONE;
	switch (service_proxy_from_node(dp->hc, dp->spx, node, p, dp->now_ns, &why)) {
	case SPX_OK:
		break;
	case SPX_REPLY:
		emit(dp, p->in_port, p);
		return;
	case SPX_DROP:
		dp->node_stats[node].drops++;
		dp_drop(dp, p, why);
		return;
	}
	dp->node_stats[node].from_node++;
	if (!dp->hc->node_up[node]) {
		dp_drop(dp, p, DROP_SN_DOWN);
		return;
	}
	to_service_plane(dp, p, &dp->hc->ps->node_spmac[node], false);
}

void dp_input(struct datapath *dp, uint16_t port, struct pkt **pkts, uint32_t n)
{
	if (port >= dp->n_ports) {
		pkt_free_bulk(dp->pool, pkts, n);
		return;
	}
	struct dp_port_stats *st = &dp->port_stats[port];
	st->rx_pkts += n;
	bool guest = dp->hc->ports[port].kind == PORT_GUEST;
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = pkts[i];
		st->rx_bytes += p->len;
		p->in_port = port;
		if (i + 1 < n)
			__builtin_prefetch(pkts[i + 1]->data);
		if (guest)
			from_guest(dp, p);
		else
			from_node(dp, p);
	}
}

/* ---- lifecycle ---------------------------------------------------------- */

static bool alloc_config_arrays(struct datapath *dp, struct hostcfg *hc)
{
	struct pkt_batch *out = calloc(hc->n_ports + 1u, sizeof(*out));
	struct dp_port_stats *ps = calloc(hc->n_ports + 1u, sizeof(*ps));
	uint64_t *rh = calloc(hc->topo->n_rules + 1u, sizeof(*rh));
	struct dp_node_stats *ns = calloc(hc->topo->n_nodes + 1u, sizeof(*ns));
	struct dp_path_stats *pa = calloc(hc->ps->n_paths + 1u, sizeof(*pa));
	uint8_t *ng = calloc(hc->topo->n_guests + 1u, 1);
	if (!out || !ps || !rh || !ns || !pa || !ng) {
		free(out), free(ps), free(rh), free(ns), free(pa), free(ng);
		return false;
	}
	/* NAT aliases survive a reload: keep the guests that have some */
	if (dp->hc && dp->nat_guest)
		for (uint16_t g = 0; g < dp->hc->topo->n_guests; g++) {
			uint16_t n = topology_guest_index(hc->topo, dp->hc->topo->guests[g].name);
			if (n != TOPO_NO_INDEX)
				ng[n] = dp->nat_guest[g];
		}
	free(dp->out), free(dp->port_stats), free(dp->rule_hits), free(dp->node_stats), free(dp->path_stats);
	free(dp->nat_guest);
	dp->out = out, dp->port_stats = ps, dp->rule_hits = rh, dp->node_stats = ns, dp->path_stats = pa;
	dp->nat_guest = ng;
	dp->n_ports = hc->n_ports;
	dp->hc = hc;
	return true;
}

struct datapath *dp_create(struct hostcfg *hc, uint32_t pool_size, uint32_t ct_capacity, dp_tx_fn tx, void *tx_ctx)
{
	struct datapath *dp = calloc(1, sizeof(*dp));
	if (!dp)
		return NULL;
	dp->pool = pkt_pool_create(pool_size);
	dp->ct = conntrack_create(ct_capacity);
	dp->spx = spx_table_create(65536);
	dp->gp = calloc(1, sizeof(*dp->gp));
	dp->tx = tx;
	dp->tx_ctx = tx_ctx;
	if (!dp->pool || !dp->ct || !dp->spx || !dp->gp || !alloc_config_arrays(dp, hc)) {
		dp_destroy(dp);
		return NULL;
	}
	guest_plane_load(dp->gp, hc);
	return dp;
}

void dp_destroy(struct datapath *dp)
{
	if (!dp)
		return;
	pkt_pool_destroy(dp->pool);
	conntrack_destroy(dp->ct);
	spx_table_destroy(dp->spx);
	free(dp->gp);
	free(dp->out), free(dp->port_stats), free(dp->rule_hits), free(dp->node_stats), free(dp->path_stats);
	free(dp->nat_guest);
	free(dp);
}

struct remap_ctx {
	struct datapath *dp;
	const struct hostcfg *old, *new;
	struct conn *dead[256];
	uint32_t n_dead;
	bool more;
};

static uint16_t rule_by_name(const struct topology *t, const char *name)
{
	for (uint16_t i = 0; i < t->n_rules; i++)
		if (strcmp(t->rules[i].name, name) == 0)
			return i;
	return TOPO_NO_INDEX;
}

static bool remap_conn(struct conn *c, void *arg)
{
	struct remap_ctx *r = arg;
	bool rev;
	const struct path *p = path_by_spi(r->new->ps, c->spi_fwd, &rev);
	uint16_t rule = c->rule < r->old->topo->n_rules
		? rule_by_name(r->new->topo, r->old->topo->rules[c->rule].name) : TOPO_NO_INDEX;
	if (p && !rev && c->rule == CLS_NO_RULE) /* a NAT alias: kept with its path */
		return true;
	if (p && !rev && rule != TOPO_NO_INDEX) {
		c->chain = p->chain;
		c->rule = rule;
		return true;
	}
	if (r->n_dead == ARRAY_SIZE(r->dead)) {
		r->more = true;
		return false;
	}
	r->dead[r->n_dead++] = c;
	return true;
}

bool dp_set_config(struct datapath *dp, struct hostcfg *hc)
{
	dp_flush(dp);
	const struct hostcfg *old = dp->hc;
	/* flows on paths that no longer exist are classified again */
	struct remap_ctx r = {.dp = dp, .old = old, .new = hc};
	do {
		r.n_dead = 0;
		r.more = false;
		conntrack_walk(dp->ct, remap_conn, &r);
		for (uint32_t i = 0; i < r.n_dead; i++)
			conntrack_delete(dp->ct, r.dead[i]);
	} while (r.more);
	if (!alloc_config_arrays(dp, hc))
		return false;
	guest_plane_load(dp->gp, hc);
	return true;
}

void dp_tick(struct datapath *dp, uint64_t now_ns)
{
	dp->now_ns = now_ns;
	conntrack_expire(dp->ct, now_ns, 1024);
	if (dp->ct_overflow) {
		struct conntrack_stats st;
		conntrack_get_stats(dp->ct, &st);
		if (st.entries < st.capacity / 10 * 9)
			dp->ct_overflow = false;
	}
}
