/* datapath.c - the stages of the packet walk (SPEC section 3) for one worker.
 *
 * A vector engine: every stage has a queue and processes up to a batch of
 * packets at a time, so that each stage's tables are prefetched for the
 * whole batch before any packet needs them and its code stays hot:
 *
 *   GUEST_RX  parse, guest guard, learn             -> CLASSIFY (egress)
 *   CLASSIFY  rules + connection table (batched)    -> port proxy encap, service plane | L2 | TX
 *   (service plane, inline after the port proxy and each node return:
 *    next hop on (SPI, SI), spmac switch            -> TO_NODE | HOME | tunnel)
 *   TO_NODE   service proxy: record, format         -> node port TX
 *   NODE_RX   service proxy: decode, recover, check -> service plane
 *   HOME      port proxy: strip, restore MACs       -> L2 (egress) | guest TX (ingress)
 *   L2        guest plane: MAC table, flooding      -> CLASSIFY (ingress) | guest TX | tunnel
 *   TUNNEL_RX Geneve from another host: decap       -> L2 (guest plane) | TO_NODE | HOME
 *
 * Output frames collect in per-port batches handed to the tx callback.
 */
#include "datapath.h"

#include "flowcache.h"
#include "steer.h"

#include <stdlib.h>

#include "icmperr.h"
#include "port_proxy.h"
#include "service_plane.h"
#include "tunnel.h"
#include "wire.h"

#define ZONE_NAT_ALIAS 0x8000

static void enq(struct datapath *dp, enum dp_stage s, struct pkt *p);
static void sp_forward(struct datapath *dp, struct pkt *p);

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
	for (uint32_t i = 0; i < b->n; i++)
		if (b->p[i]) /* the callee may keep a buffer (NULL) */
			pkt_free(dp->pool, b->p[i]);
	b->n = 0;
}

static void emit(struct datapath *dp, uint16_t port, struct pkt *p)
{
	struct pkt_batch *b = &dp->out[port];
	batch_add(b, p);
	if (batch_full(b))
		flush_port(dp, port);
}

static void flush_tunnel(struct datapath *dp)
{
	struct pkt_batch *b = &dp->tun_out;
	if (!b->n)
		return;
	dp->tun_tx(dp->tun_ctx, b->p, dp->tun_dst, b->n);
	pkt_free_bulk(dp->pool, b->p, b->n);
	b->n = 0;
}

void dp_flush(struct datapath *dp)
{
	for (uint16_t i = 0; i < dp->n_ports; i++)
		flush_port(dp, i);
	flush_tunnel(dp);
}

void dp_set_tunnel(struct datapath *dp, dp_tunnel_fn fn, void *ctx)
{
	dp->tun_tx = fn;
	dp->tun_ctx = ctx;
}

void dp_set_worker(struct datapath *dp, struct steer *s, uint16_t worker, dp_pass_fn pass, void *ctx)
{
	dp->steer = s;
	dp->worker = worker;
	dp->pass = pass;
	dp->pass_ctx = ctx;
}

/* ---- the tunnel: Geneve to other hosts ---------------------------------- */

/* p is an encapsulated Geneve payload for VTEP dst. */
static void tunnel_send(struct datapath *dp, struct pkt *p, const struct ipaddr *dst)
{
	if (!dp->tun_tx) {
		dp_drop(dp, p, DROP_NO_UNDERLAY);
		return;
	}
	if (!p->hash) /* ECMP entropy for the outer UDP source port: the inner flow */
		p->hash = (uint32_t)flow_key_hash_sym(&p->key) | 1;
	struct pkt_batch *b = &dp->tun_out;
	dp->tun_dst[b->n] = *dst;
	batch_add(b, p);
	if (batch_full(b))
		flush_tunnel(dp);
}

static void send_guest_tunnel(struct datapath *dp, struct pkt *p, uint32_t vni, uint16_t host)
{
	enum drop_reason why = tunnel_encap_guest(p, vni);
	if (why != DROP_NONE) {
		dp_drop(dp, p, why);
		return;
	}
	tunnel_send(dp, p, &dp->hc->topo->hosts[host].vtep);
}

/* The largest guest IP packet that fits the underlay with `encap` bytes of
 * Geneve (+NSH) in front of its Ethernet header. */
static uint32_t inner_mtu(const struct datapath *dp, const struct pkt *p, size_t encap)
{
	size_t l2 = p->lay.l3 != PKT_OFF_NONE ? p->lay.l3 : ETH_HLEN;
	return tunnel_inner_mtu(dp->hc->mtu, !ipaddr_is_v4(&dp->hc->vtep), encap, l2);
}

/* Make a guest packet fit the tunnel before it leaves the host: fits
 * (returns 1 with frags[0] = p), fragmented (IPv4 without DF: returns the
 * number of fragments, p is freed), or answered with ICMP "fragmentation
 * needed" / ICMPv6 "packet too big" to the guest it came from (returns 0). */
static int fit_tunnel(struct datapath *dp, struct pkt *p, size_t encap, struct pkt **frags, uint32_t room)
{
	uint32_t mtu = inner_mtu(dp, p, encap);
	switch (mtu_check(p->data, p->len, mtu)) {
	case MTU_FITS:
		frags[0] = p;
		return 1;
	case MTU_FRAGMENT: {
		int n = ipv4_fragment(p, mtu, dp->pool, frags, room);
		if (n <= 0) {
			dp_drop(dp, p, n < 0 ? (enum drop_reason)-n : DROP_TOO_BIG);
			return 0;
		}
		dp->mtu_fragmented++;
		pkt_free(dp->pool, p);
		return n;
	}
	case MTU_TOO_BIG: {
		/* the answer goes to the sender over the guest plane: directly
		 * when it is local, through the tunnel to its host when the packet
		 * is steered at the receiving end (a reply on its reverse path) */
		struct pkt *r = pkt_alloc(dp->pool);
		if (r && icmperr_build_too_big(p->data, p->len, mtu, r) && wire_parse(r) == DROP_NONE) {
			dp->mtu_too_big++;
			r->key.vni = p->key.vni;
			r->in_port = PORT_NONE;
			r->flags |= PKT_F_EGRESS_DONE;
			enq(dp, ST_L2, r);
		} else if (r) {
			pkt_free(dp->pool, r);
		}
		dp_drop(dp, p, DROP_TOO_BIG);
		return 0;
	}
	case MTU_DROP:
		break;
	}
	dp_drop(dp, p, DROP_TOO_BIG);
	return 0;
}

/* ---- stage queues ------------------------------------------------------ */

/* A stage's queue is a ring whose batch in hand (run) stays in place while
 * the stage may queue more behind it: BATCH_MAX slots are kept free. */
static void enq(struct datapath *dp, enum dp_stage s, struct pkt *p)
{
	struct dp_queue *q = &dp->q[s];
	if (unlikely(q->n == DP_QUEUE - BATCH_MAX)) {
		dp_drop(dp, p, DROP_QUEUE_FULL);
		return;
	}
	q->p[(q->head + q->n) % DP_QUEUE] = p;
	q->n++;
}

/* Take up to BATCH_MAX packets of a stage's queue: *v points at them, in
 * the ring where they lie in one piece, else copied to buf. */
static uint32_t deq(struct datapath *dp, enum dp_stage s, struct pkt **buf, struct pkt ***v)
{
	struct dp_queue *q = &dp->q[s];
	uint32_t n = MIN(q->n, (uint32_t)BATCH_MAX);
	if (q->head + n <= DP_QUEUE) {
		*v = &q->p[q->head];
	} else {
		for (uint32_t i = 0; i < n; i++)
			buf[i] = q->p[(q->head + i) % DP_QUEUE];
		*v = buf;
	}
	q->head = (q->head + n) % DP_QUEUE;
	q->n -= n;
	return n;
}

/* ---- GUEST_RX ------------------------------------------------------------ */

static bool is_spmac(const struct hostcfg *hc, const struct mac *m)
{
	struct spmac_owner o;
	if (m->b[0] != 0x02 || (m->b[1] != 0xd7 && m->b[1] != 0xd8))
		return false;
	return path_spmac_lookup(hc->ps, hc->topo, m, &o);
}

static void stage_guest_rx(struct datapath *dp, struct pkt **v, uint32_t n)
{
	const struct hostcfg *hc = dp->hc;
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = v[i];
		if (i + 1 < n)
			__builtin_prefetch(v[i + 1]->data);
		const struct hc_port *hp = &hc->ports[p->in_port];
		enum drop_reason why = (p->flags & PKT_F_PARSED) ? DROP_NONE : wire_parse(p);
		/* a guest never reaches the service plane, whatever it sends */
		struct mac dst, src;
		if (p->len >= ETH_HLEN) {
			memcpy(dst.b, p->data, 6);
			memcpy(src.b, p->data + 6, 6);
			if (rd16(p->data + 12) == ETH_P_NSH || (why == DROP_NONE && p->lay.ethertype == ETH_P_NSH) ||
			    is_spmac(hc, &dst) || is_spmac(hc, &src))
				why = DROP_GUEST_SERVICE_PLANE;
		}
		if (why != DROP_NONE) {
			dp_drop(dp, p, why);
			continue;
		}
		p->flags &= ~PKT_F_HAS_MD;
		p->flags |= PKT_F_EGRESS_DONE;
		if (!mac_eq(&src, &hc->topo->guests[hp->ref].mac))
			guest_plane_learn(dp->gp, hp->vni, &src, p->in_port, dp->now_ns);
		p->key.vni = hp->vni;
		p->key.zone = (uint16_t)(hp->ref * 2);
		p->out_port = PORT_NONE;
		enq(dp, ST_CLASSIFY, p);
	}
}

/* ---- CLASSIFY ------------------------------------------------------------ */

/* A packet classification let through: on to the guest plane (egress) or
 * to its destination port (ingress). */
static void classify_pass(struct datapath *dp, struct pkt *p)
{
	if (p->key.zone & 1)
		emit(dp, p->out_port, p);
	else
		enq(dp, ST_L2, p);
}

/* Put p (or, for `copy`, a duplicate) on the path: the port proxy. */
static HOT_INLINE void steer(struct datapath *dp, struct pkt *p, uint16_t path_idx, bool reverse, bool is_copy)
{
	const struct path *path = &dp->hc->ps->paths[path_idx];
	if (reverse)
		dp->path_stats[path_idx].rev_pkts++;
	else
		dp->path_stats[path_idx].fwd_pkts++;
	uint16_t guest = (p->key.zone & ~ZONE_NAT_ALIAS) / 2;
	port_proxy_encap(dp->hc, p, path, reverse, guest, p->key.zone & 1, is_copy);
	p->flags |= PKT_F_SP_FIRST;
	if (!dp->hc->path_remote[path_idx]) {
		sp_forward(dp, p);
		return;
	}
	/* it will cross the underlay with the service-plane encapsulation:
	 * make it fit here, where the guest can be told */
	struct pkt *frags[64];
	int n = fit_tunnel(dp, p, tunnel_sp_encap_len(&p->md), frags, ARRAY_SIZE(frags));
	for (int i = 0; i < n; i++)
		sp_forward(dp, frags[i]);
}

/* Is p the reverse of a flow some rule at the opposite point steers? */
static uint16_t reverse_rule(const struct datapath *dp, const struct pkt *p, uint16_t guest, bool ingress)
{
	struct flow_key r;
	flow_key_reverse(&p->key, &r);
	return classifier_lookup(dp->hc->cls, guest, !ingress, &r);
}

/* A SYN-ACK under a NAT alias whose own connection sent no SYN through the
 * node (learn_nat keeps the alias's TCP state from the packets the node
 * returns): it answers a new connection with the same tuple that took no
 * path, e.g. a direct one to the port a DNAT rewrote another one to. The
 * alias is stale; the packet is classified without it. */
static __attribute__((noinline)) bool stale_alias(struct datapath *dp, const struct pkt *p, struct conn *c, int dir)
{
	if (dir != 1 || (p->lay.tcp_flags & (TH_SYN | TH_ACK)) != (TH_SYN | TH_ACK) || conntrack_expects_synack(c))
		return false;
	conntrack_delete(dp->ct, c);
	dp->nat_aliases_stale++;
	return true;
}

/* The decision for one packet, given its connection (or none) and the rule
 * of this point (CLS_NO_RULE if none). */
static HOT_INLINE void classify_one(struct datapath *dp, struct pkt *p, struct conn *c, int dir, uint16_t rule)
{
	const struct hostcfg *hc = dp->hc;
	uint16_t guest = p->key.zone / 2;
	bool ingress = p->key.zone & 1;
	uint16_t path_idx;
	uint8_t action;
	bool reverse;
	if (c && c->rule == CLS_NO_RULE && stale_alias(dp, p, c, dir))
		c = NULL;
	if (c) {
		conntrack_update(dp->ct, c, dir, p->lay.tcp_flags, dp->now_ns);
		if (c->fp == FP_DROP) {
			dp_drop(dp, p, DROP_FLOW_DROP);
			return;
		}
		if (c->fp == FP_ALLOW || c->action == RULE_SKIP) {
			classify_pass(dp, p);
			return;
		}
		path_idx = c->path; /* of this configuration: dp_set_config renumbers */
		if (path_idx >= hc->ps->n_paths || !hostcfg_path_live(hc, path_idx)) {
			/* its path died: move the flow to a live path of its chain */
			path_idx = path_idx < hc->ps->n_paths ? hostcfg_pick_path(hc, hc->ps->paths[path_idx].chain,
										 flow_key_hash_sym(&p->key))
							       : PATH_NONE;
			if (path_idx == PATH_NONE) {
				dp_drop(dp, p, DROP_RULE_BLOCK);
				return;
			}
			c->path = path_idx;
			dp->flows_repinned++;
		}
		action = c->action;
		reverse = dir == 1;
	} else {
		reverse = false;
		if (rule == CLS_NO_RULE && dp->ct_overflow && (hc->guest_rules[guest] & (ingress ? 1 : 2))) {
			rule = reverse_rule(dp, p, guest, ingress);
			reverse = rule != CLS_NO_RULE;
		}
		if (rule == CLS_NO_RULE) {
			classify_pass(dp, p);
			return;
		}
		const struct topo_rule *r = &hc->topo->rules[rule];
		dp->rule_hits[rule]++;
		if (r->action == RULE_SKIP || r->chain == TOPO_NO_INDEX) {
			classify_pass(dp, p);
			return;
		}
		path_idx = hostcfg_pick_path(hc, r->chain, flow_key_hash_sym(&p->key));
		if (path_idx == PATH_NONE) {
			dp_drop(dp, p, DROP_RULE_BLOCK);
			return;
		}
		action = (uint8_t)r->action;
		if (!reverse) {
			c = conntrack_insert(dp->ct, &p->key, (uint16_t)(guest * 2 + (ingress ? 0 : 1)), dp->now_ns);
			if (c) {
				c->path = path_idx;
				c->rule = rule;
				c->action = action;
				conntrack_update(dp->ct, c, 0, p->lay.tcp_flags, dp->now_ns);
			} else {
				dp->ct_overflow = true;
				dp->stateless_flows++;
			}
		}
	}
	if (action == RULE_COPY) {
		struct pkt *copy = pkt_clone(dp->pool, p);
		if (copy) {
			dp->copies++;
			steer(dp, copy, path_idx, reverse, true);
		} else {
			dp->drops[DROP_POOL_EMPTY]++;
		}
		classify_pass(dp, p);
		return;
	}
	steer(dp, p, path_idx, reverse, false);
}

/* A connection exists at a point only for a packet that a rule of that
 * point matches (forward) or whose reverse a rule of the opposite point
 * matches (reply), or under a NAT alias. An established flow is found in
 * the flow cache first (hashed and prefetched for the whole vector), which
 * skips the rules and the table. Past it, the rules, in cache, screen out
 * the packets no connection can concern before the table, whose misses
 * cost memory accesses; the survivors are looked up in the table as one
 * batch (prefetched; with the flow cache's hash where it was computed).
 * (When the cache steps aside, flowcache.h, the rules come first.) */
static void stage_classify(struct datapath *dp, struct pkt **v, uint32_t n)
{
	const struct hostcfg *hc = dp->hc;
	const struct flow_key *keys[BATCH_MAX];
	struct pkt *look[BATCH_MAX];
	uint16_t rules[BATCH_MAX];
	struct conn *conns[BATCH_MAX];
	int dirs[BATCH_MAX];
	uint64_t h[BATCH_MAX];
	uint32_t k = 0;
	bool fc_on = flowcache_active(&dp->fc, n);
	for (uint32_t i = 0; i < n; i++) {
		const struct pkt *p = v[i];
		h[i] = 0;
		if (fc_on && p->key.is_ip && hc->guest_rules[p->key.zone / 2]) {
			h[i] = flow_key_hash(&p->key);
			flowcache_prefetch(&dp->fc, h[i]);
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = v[i];
		uint16_t guest = p->key.zone / 2;
		bool ingress = p->key.zone & 1;
		uint8_t has = p->key.is_ip ? hc->guest_rules[guest] : 0;
		if (!has) {
			classify_pass(dp, p);
			continue;
		}
		int dir;
		struct conn *c = h[i] ? flowcache_lookup(&dp->fc, &p->key, h[i], &dir) : NULL;
		if (c) {
			classify_one(dp, p, c, dir, CLS_NO_RULE);
			continue;
		}
		uint16_t rule = CLS_NO_RULE;
		bool maybe = false;
		if (has & (ingress ? 2 : 1)) {
			rule = classifier_lookup(hc->cls, guest, ingress, &p->key);
			maybe = rule != CLS_NO_RULE;
		}
		if (!maybe && (has & (ingress ? 1 : 2)))
			maybe = dp->nat_guest[guest] || reverse_rule(dp, p, guest, ingress) != CLS_NO_RULE;
		if (!maybe && !dp->ct_overflow) {
			classify_pass(dp, p);
			continue;
		}
		look[k] = p;
		rules[k] = rule;
		h[k] = h[i]; /* k <= i */
		keys[k++] = &p->key;
	}
	if (!k)
		return;
	conntrack_lookup_batch(dp->ct, keys, h, k, conns, dirs);
	for (uint32_t i = 0; i < k; i++) /* new flows: the writes of their insert */
		if (!conns[i] && rules[i] != CLS_NO_RULE)
			conntrack_prefetch_insert(dp->ct, keys[i], (uint16_t)(keys[i]->zone ^ 1));
	for (uint32_t i = 0; i < k; i++) {
		if (conns[i] && h[i])
			flowcache_insert(&dp->fc, h[i], conns[i], dirs[i]);
		classify_one(dp, look[i], conns[i], dirs[i], rules[i]);
	}
}

/* ---- the service plane ------------------------------------------------------ */

/* Where the service plane sends p when not to a live local node or home:
 * another host, or nowhere (kept out of sp_forward's hot path). */
static __attribute__((noinline)) void sp_forward_other(struct datapath *dp, struct pkt *p, struct sp_dest d)
{
	const struct hostcfg *hc = dp->hc;
	switch (d.kind) {
	case SPD_NODE:
		dp_drop(dp, p, DROP_SN_DOWN);
		return;
	case SPD_REMOTE: {
		enum drop_reason why = tunnel_encap_sp(p, hc->topo->sp_vni, hc->topo->md_class, p->md.ttl);
		if (why != DROP_NONE)
			dp_drop(dp, p, why);
		else
			tunnel_send(dp, p, d.vtep);
		return;
	}
	case SPD_PORT_PROXY:
	case SPD_NONE:
		break;
	}
	dp_drop(dp, p, DROP_SP_NO_NEXTHOP);
}

/* The service plane for one packet: its next hop on (SPI, SI), then the
 * spmac switch (runs inline at the end of the port proxy and of every
 * service proxy return: no queue of its own). */
static void sp_forward(struct datapath *dp, struct pkt *p)
{
	const struct hostcfg *hc = dp->hc;
	bool first = p->flags & PKT_F_SP_FIRST;
	p->flags &= ~PKT_F_SP_FIRST;
	struct sp_dest d = service_plane_forward(hc, p, first);
	if (d.kind == SPD_NODE && hostcfg_live(hc)->node_up[d.node]) {
		p->next = d.node;
		if (p->sp_hash) /* back from a node: see service_proxy.h */
			p->sp_hash = 0;
		else
			service_proxy_prefetch(hc, dp->spx, d.node, p);
		enq(dp, ST_TO_NODE, p);
	} else if (d.kind == SPD_PORT_PROXY) {
		enq(dp, ST_HOME, p);
	} else {
		sp_forward_other(dp, p, d);
	}
}

/* ---- TO_NODE ------------------------------------------------------------- */

static void stage_to_node(struct datapath *dp, struct pkt **v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		service_proxy_prefetch_new(dp->hc, dp->spx, v[i]->next, v[i]);
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = v[i];
		uint16_t node = p->next;
		enum drop_reason why = DROP_NONE;
		uint16_t port = service_proxy_to_node(dp->hc, dp->spx, node, p, dp->now_ns, &why);
		if (port == PORT_NONE) {
			dp->node_stats[node].drops++;
			dp_drop(dp, p, why);
			continue;
		}
		dp->node_stats[node].to_node++;
		emit(dp, port, p);
	}
}

/* ---- NODE_RX ------------------------------------------------------------- */

static void stage_node_rx(struct datapath *dp, struct pkt **v, uint32_t n)
{
	const struct hostcfg *hc = dp->hc;
	struct pkt *ok[BATCH_MAX];
	uint8_t *frame[BATCH_MAX]; /* as received, to pass it on */
	uint32_t len[BATCH_MAX];
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = v[i];
		uint16_t node = hc->ports[p->in_port].ref;
		enum drop_reason why = DROP_NONE;
		frame[k] = p->data;
		len[k] = p->len;
		switch (service_proxy_rx_parse(hc, node, p, &why)) {
		case SPX_OK:
			service_proxy_prefetch(hc, dp->spx, node, p);
			p->next = node; /* the node it comes from */
			ok[k++] = p;
			break;
		case SPX_REPLY:
			emit(dp, p->in_port, p);
			break;
		case SPX_DROP:
			dp->node_stats[node].drops++;
			dp_drop(dp, p, why);
			break;
		}
	}
	for (uint32_t i = 0; i < k; i++) {
		struct pkt *p = ok[i];
		uint16_t node = p->next;
		enum drop_reason why = DROP_NONE;
		if (service_proxy_rx_finish(hc, dp->spx, node, p, dp->now_ns, &why) != SPX_OK) {
			if (why == DROP_SN_NO_FLOW && dp->pass && p->hops + 1u < steer_workers(dp->steer) &&
			    !(frame[i][0] & 1)) {
				/* a node rewrote the flow (NAT): its owner may be another worker */
				p->data = frame[i];
				p->len = len[i];
				p->flags &= ~(PKT_F_PARSED | PKT_F_HAS_MD);
				p->hops++;
				if (dp->pass(dp->pass_ctx, p)) {
					dp->passed_on++;
					continue;
				}
			}
			dp->node_stats[node].drops++;
			dp_drop(dp, p, why);
			continue;
		}
		dp->node_stats[node].from_node++;
		if (!hostcfg_live(hc)->node_up[node]) {
			dp_drop(dp, p, DROP_SN_DOWN);
			continue;
		}
		sp_forward(dp, p);
	}
}

/* ---- HOME: the port proxy ------------------------------------------------ */

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
	struct conn *a = conntrack_lookup(dp->ct, &k, &dir);
	if (!a) {
		bool reverse;
		const struct path *path = path_by_spi(dp->hc->ps, p->md.spi, &reverse);
		if (!path || reverse)
			return;
		a = conntrack_insert(dp->ct, &k, (uint16_t)(guest * 2 + (ingress ? 0 : 1)), dp->now_ns);
		if (!a)
			return;
		a->path = (uint16_t)(path - dp->hc->ps->paths);
		a->rule = CLS_NO_RULE;
		a->action = RULE_REDIRECT;
		dp->nat_aliases++;
		dp->nat_guest[guest] = 1;
		if (dp->steer) /* replies under the rewritten tuple must come to this worker */
			steer_nat_learn(dp->steer, &k, dp->worker);
	}
	/* the alias follows its connection's TCP state from what the node returns (stale_alias) */
	conntrack_update(dp->ct, a, 0, p->lay.tcp_flags, dp->now_ns);
}

static void stage_home(struct datapath *dp, struct pkt **v, uint32_t n)
{
	const struct hostcfg *hc = dp->hc;
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = v[i];
		if (p->md.is_copy) {
			dp_drop(dp, p, DROP_COPY_END);
			continue;
		}
		uint16_t guest = p->md.guest_port;
		if (guest >= hc->topo->n_guests || hc->guest_port[guest] == PORT_NONE) {
			dp_drop(dp, p, DROP_SP_BAD_RETURN);
			continue;
		}
		bool ingress = p->md.ingress;
		if (p->md.dir == SP_DIR_FORWARD && p->key.is_ip && flow_tuple_tag(pkt_tuple_hash(p)) != p->md.flow_tag)
			learn_nat(dp, p, guest, ingress);
		p->key.vni = p->md.vni;
		port_proxy_decap(p);
		uint16_t port = hc->guest_port[guest];
		if (ingress) {
			/* classified on its way into this guest: deliver it */
			emit(dp, port, p);
			continue;
		}
		/* classified on its way out of this guest: on along the guest plane */
		p->in_port = port;
		p->flags |= PKT_F_EGRESS_DONE;
		enq(dp, ST_L2, p);
	}
}

/* ---- L2: the guest plane ------------------------------------------------- */

static void deliver_to_guest(struct datapath *dp, struct pkt *p, uint16_t port)
{
	if (p->flags & PKT_F_INGRESS_DONE) {
		emit(dp, port, p);
		return;
	}
	uint16_t guest = dp->hc->ports[port].ref;
	if (!p->key.is_ip || !dp->hc->guest_rules[guest]) {
		emit(dp, port, p); /* no rule at this guest either way: CLASSIFY would pass it */
		return;
	}
	p->flags |= PKT_F_INGRESS_DONE;
	p->key.zone = (uint16_t)(guest * 2 + 1);
	p->out_port = port;
	enq(dp, ST_CLASSIFY, p);
}

static void flood(struct datapath *dp, struct pkt *p, uint32_t vni)
{
	const struct hostcfg *hc = dp->hc;
	uint16_t last = PORT_NONE;
	/* head-end replication to the other hosts of the network, unless the
	 * frame came from one (split horizon) */
	uint16_t net = (p->flags & PKT_F_FROM_TUNNEL) ? TOPO_NO_INDEX : hostcfg_network_by_vni(hc, vni);
	bool sent = false;
	for (uint16_t h = 0; net != TOPO_NO_INDEX && h < hc->topo->n_hosts; h++) {
		if (h == hc->self || !hostcfg_net_on_host(hc, net, h))
			continue;
		sent = true;
		struct pkt *c = pkt_clone(dp->pool, p);
		if (!c) {
			dp->drops[DROP_POOL_EMPTY]++;
			continue;
		}
		struct pkt *frags[64];
		int n = fit_tunnel(dp, c, TUNNEL_GUEST_ENCAP, frags, ARRAY_SIZE(frags));
		for (int i = 0; i < n; i++)
			send_guest_tunnel(dp, frags[i], vni, h);
	}
	for (uint16_t i = 0; i < hc->n_ports; i++) {
		if (hc->ports[i].kind != PORT_GUEST || hc->ports[i].vni != vni || i == p->in_port)
			continue;
		if (last != PORT_NONE) {
			struct pkt *c = pkt_clone(dp->pool, p);
			if (c)
				deliver_to_guest(dp, c, last);
			else
				dp->drops[DROP_POOL_EMPTY]++;
		}
		last = i;
	}
	/* each copy through its guest's ingress rules, as a unicast frame */
	if (last != PORT_NONE)
		deliver_to_guest(dp, p, last);
	else if (sent)
		pkt_free(dp->pool, p); /* delivered to other hosts only */
	else
		dp_drop(dp, p, DROP_L2_NO_PORT);
}

static void stage_l2(struct datapath *dp, struct pkt **v, uint32_t n)
{
	/* the last lookup's answer: a vector's frames mostly go to a few
	 * destinations (nothing learns while this stage runs) */
	struct mac last_dst = {{0}};
	uint32_t last_vni = 0; /* 0: none (no network has VNI 0) */
	uint16_t last_out = PORT_NONE, last_host = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = v[i];
		uint32_t vni = p->key.vni;
		struct mac dst;
		memcpy(dst.b, p->data, 6);
		uint16_t host = last_host, out = last_out;
		if (vni != last_vni || !mac_eq(&dst, &last_dst)) {
			host = 0;
			out = mac_is_multicast(&dst) ? PORT_NONE : guest_plane_lookup(dp->gp, vni, &dst, &host);
			last_vni = vni, last_dst = dst, last_out = out, last_host = host;
		}
		if (out == GP_REMOTE) {
			if (p->flags & PKT_F_FROM_TUNNEL) { /* never back into the underlay */
				dp_drop(dp, p, DROP_L2_HAIRPIN);
				continue;
			}
			struct pkt *frags[64];
			int k = fit_tunnel(dp, p, TUNNEL_GUEST_ENCAP, frags, ARRAY_SIZE(frags));
			for (int f = 0; f < k; f++)
				send_guest_tunnel(dp, frags[f], vni, host);
			continue;
		}
		if (out == PORT_NONE) {
			/* broadcast, multicast, unknown unicast: every other guest port of the network */
			flood(dp, p, vni);
			continue;
		}
		if (out == p->in_port) {
			dp_drop(dp, p, DROP_L2_HAIRPIN);
			continue;
		}
		deliver_to_guest(dp, p, out);
	}
}

/* ---- TUNNEL_RX ----------------------------------------------------------- */

static void stage_tunnel_rx(struct datapath *dp, struct pkt **v, uint32_t n)
{
	const struct hostcfg *hc = dp->hc;
	for (uint32_t i = 0; i < n; i++) {
		struct pkt *p = v[i];
		struct tunnel_rx r = tunnel_decap(p, hc->topo->md_class);
		if (r.kind == TUN_DROP) {
			dp_drop(dp, p, r.why);
			continue;
		}
		enum drop_reason why = wire_parse(p);
		if (why != DROP_NONE) {
			dp_drop(dp, p, why);
			continue;
		}
		if (r.kind == TUN_GUEST) {
			uint16_t net = hostcfg_network_by_vni(hc, r.vni);
			if (net == TOPO_NO_INDEX || !hostcfg_net_on_host(hc, net, hc->self)) {
				dp_drop(dp, p, DROP_GUEST_NO_NETWORK);
				continue;
			}
			p->key.vni = r.vni;
			p->flags |= PKT_F_FROM_TUNNEL | PKT_F_EGRESS_DONE;
			enq(dp, ST_L2, p);
			continue;
		}
		/* service plane: switch on the destination spmac */
		struct mac dst;
		struct spmac_owner o;
		memcpy(dst.b, p->data, 6);
		if (r.vni != hc->topo->sp_vni || !path_spmac_lookup(hc->ps, hc->topo, &dst, &o)) {
			dp_drop(dp, p, DROP_SP_UNKNOWN_SPMAC);
			continue;
		}
		p->md.ttl = r.ttl;
		p->key.vni = p->md.vni;
		if (!o.is_node) {
			if (o.index != hc->self) {
				dp_drop(dp, p, DROP_SP_BAD_RETURN);
				continue;
			}
			enq(dp, ST_HOME, p);
			continue;
		}
		if (hc->topo->nodes[o.index].host != hc->self || !hostcfg_live(hc)->node_up[o.index]) {
			dp_drop(dp, p, hostcfg_live(hc)->node_up[o.index] ? DROP_SP_UNKNOWN_SPMAC : DROP_SN_DOWN);
			continue;
		}
		p->next = o.index;
		service_proxy_prefetch(hc, dp->spx, o.index, p);
		enq(dp, ST_TO_NODE, p);
	}
}

/* ---- input --------------------------------------------------------------- */

typedef void (*stage_fn)(struct datapath *dp, struct pkt **v, uint32_t n);

static const stage_fn stages[ST__MAX] = {
	[ST_GUEST_RX] = stage_guest_rx, [ST_NODE_RX] = stage_node_rx, [ST_TUNNEL_RX] = stage_tunnel_rx,
	[ST_CLASSIFY] = stage_classify,
	[ST_TO_NODE] = stage_to_node, [ST_HOME] = stage_home,
	[ST_L2] = stage_l2,
};

/* Run every stage until all queues are empty. */
static void run(struct datapath *dp)
{
	bool more;
	do {
		more = false;
		for (int s = 0; s < ST__MAX; s++) {
			struct pkt *buf[BATCH_MAX], **v;
			uint32_t n = deq(dp, (enum dp_stage)s, buf, &v);
			if (n) {
				stages[s](dp, v, n);
				more = true;
				if (!dp->q[s].n)
					dp->q[s].head = 0; /* the next batch in one piece */
			}
		}
	} while (more);
}

/* A frame received on its in_port (a port or PORT_TUNNEL) into the first
 * stage; dp_input does the same for a burst of one port at once. */
static void enq_received(struct datapath *dp, struct pkt *p)
{
	uint16_t port = p->in_port;
	if (port == PORT_TUNNEL) {
		enq(dp, ST_TUNNEL_RX, p);
		return;
	}
	if (port >= dp->n_ports) {
		pkt_free(dp->pool, p);
		return;
	}
	struct dp_port_stats *st = &dp->port_stats[port];
	st->rx_pkts++;
	st->rx_bytes += p->len;
	enq(dp, dp->hc->ports[port].kind == PORT_GUEST ? ST_GUEST_RX : ST_NODE_RX, p);
}

void dp_input(struct datapath *dp, uint16_t port, struct pkt **pkts, uint32_t n)
{
	if (port != PORT_TUNNEL && port >= dp->n_ports) {
		pkt_free_bulk(dp->pool, pkts, n);
		return;
	}
	/* one port for the whole burst: its stage and counters once */
	enum dp_stage s = ST_TUNNEL_RX;
	uint64_t bytes = 0;
	if (port != PORT_TUNNEL)
		s = dp->hc->ports[port].kind == PORT_GUEST ? ST_GUEST_RX : ST_NODE_RX;
	for (uint32_t i = 0; i < n; i++) {
		bytes += pkts[i]->len;
		pkts[i]->in_port = port;
		enq(dp, s, pkts[i]);
	}
	if (port != PORT_TUNNEL) {
		dp->port_stats[port].rx_pkts += n;
		dp->port_stats[port].rx_bytes += bytes;
	}
	run(dp);
}

void dp_input_handed(struct datapath *dp, struct pkt **pkts, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		enq_received(dp, pkts[i]);
	run(dp);
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

uint32_t dp_spx_capacity(uint32_t ct_capacity)
{
	/* one 32-byte entry per flow direction and node (three at routed and
	 * nsh nodes, for NAT): four and a quarter per connection, within
	 * bounds. With the connection's 104 bytes, 1M connections fit in 256
	 * MB; the room keeps the sets of four ways from overflowing into their
	 * partners (a second memory access) for most flows. */
	uint64_t want = 17 * (uint64_t)ct_capacity / 4;
	uint32_t cap = (uint32_t)(want < (1u << 16) ? (1u << 16) : want > (1u << 24) ? (1u << 24) : want);
	return cap - cap % 64;
}

struct datapath *dp_create(struct hostcfg *hc, uint32_t pool_size, uint32_t ct_capacity, dp_tx_fn tx, void *tx_ctx)
{
	struct datapath *dp = calloc(1, sizeof(*dp));
	if (!dp)
		return NULL;
	dp->pool = pkt_pool_create(pool_size);
	dp->ct = conntrack_create(ct_capacity);
	dp->spx = spx_table_create(dp_spx_capacity(ct_capacity));
	dp->gp = calloc(1, sizeof(*dp->gp));
	bool fc_ok = flowcache_init(&dp->fc, DP_FLOWCACHE);
	dp->tx = tx;
	dp->tx_ctx = tx_ctx;
	if (!dp->pool || !dp->ct || !dp->spx || !dp->gp || !fc_ok || !alloc_config_arrays(dp, hc)) {
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
	flowcache_fini(&dp->fc);
	free(dp->gp);
	free(dp->out), free(dp->port_stats), free(dp->rule_hits), free(dp->node_stats), free(dp->path_stats);
	free(dp->nat_guest);
	free(dp);
}

struct remap_ctx {
	struct datapath *dp;
	const struct hostcfg *old, *new;
	const uint16_t *rule_map; /* old rule index -> new, by name */
	struct conn *dead[256];
	uint32_t n_dead;
	bool more;
};

/* A connection keeps its path (the same SPI) and its rule (the same name)
 * in the new configuration, renumbered; or is deleted. */
static bool remap_conn(struct conn *c, void *arg)
{
	struct remap_ctx *r = arg;
	bool rev = true;
	const struct path *p = NULL;
	if (c->path < r->old->ps->n_paths)
		p = path_by_spi(r->new->ps, r->old->ps->paths[c->path].spi_fwd, &rev);
	uint16_t rule = c->rule < r->old->topo->n_rules ? r->rule_map[c->rule] : TOPO_NO_INDEX;
	if (p && !rev && (c->rule == CLS_NO_RULE || rule != TOPO_NO_INDEX)) { /* no rule: a NAT alias */
		c->path = (uint16_t)(p - r->new->ps->paths);
		if (c->rule != CLS_NO_RULE)
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
	uint16_t *map = topology_rule_map(old->topo, hc->topo);
	if (!map)
		return false;
	struct remap_ctx r = {.dp = dp, .old = old, .new = hc, .rule_map = map};
	do {
		r.n_dead = 0;
		r.more = false;
		conntrack_walk(dp->ct, remap_conn, &r);
		for (uint32_t i = 0; i < r.n_dead; i++)
			conntrack_delete(dp->ct, r.dead[i]);
	} while (r.more);
	free(map);
	if (!alloc_config_arrays(dp, hc))
		return false;
	flowcache_clear(&dp->fc); /* only hints, but cheap to start afresh */
	guest_plane_load(dp->gp, hc);
	return true;
}

void dp_tick(struct datapath *dp, uint64_t now_ns)
{
	dp->now_ns = now_ns;
	/* the entries due since the last visit, in chunks of DP_SWEEP_MIN or
	 * more (below that the time adds up); a long pause makes at most one
	 * sweep's worth due, of which DP_SWEEP_MAX are visited now */
	uint64_t dt = now_ns > dp->swept_ns ? MIN(now_ns - dp->swept_ns, DP_SWEEP_NS) : 0;
	uint64_t due = dt * conntrack_capacity(dp->ct) / DP_SWEEP_NS;
	if (due >= DP_SWEEP_MIN) {
		conntrack_expire(dp->ct, now_ns, (uint32_t)MIN(due, DP_SWEEP_MAX));
		dp->swept_ns = now_ns;
	}
	if (dp->ct_overflow) {
		struct conntrack_stats st = {0};
		conntrack_get_stats(dp->ct, &st);
		if (st.entries < st.capacity / 10 * 9)
			dp->ct_overflow = false;
	}
}
