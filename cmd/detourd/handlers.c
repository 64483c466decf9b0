/* handlers.c - detourd's answers to detourctl (SPEC section 11): show,
 * trace, node down|up, reload. Read-only except node and reload. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
#include "flowspec.h"
#include "log.h"

static const char *kind_name(enum port_kind k)
{
	switch (k) {
	case PORT_GUEST: return "guest";
	case PORT_SN: return "node";
	case PORT_SN_IN: return "node-in";
	case PORT_SN_OUT: return "node-out";
	}
	return "?";
}

static const char *proto_name(uint8_t p)
{
	switch (p) {
	case 0: return "any";
	case IPPROTO_TCP: return "tcp";
	case IPPROTO_UDP: return "udp";
	case IPPROTO_ICMP: return "icmp";
	case IPPROTO_ICMPV6: return "icmpv6";
	}
	return "other";
}

static json_t *mac_json(const struct mac *m)
{
	char b[MAC_STRLEN];
	mac_format(m, b);
	return json_string(b);
}

/* Counters of every worker's datapath, summed on the workers' own threads. */
struct totals {
	const struct hostcfg *hc;
	struct dp_port_stats *ports;    /* [n_ports] */
	struct io_stats *io;            /* [n_ports] */
	uint64_t *rule_hits;            /* [n_rules] */
	struct dp_node_stats *nodes;    /* [n_nodes] */
	struct dp_path_stats *paths;    /* [n_paths] */
	uint64_t drops[DROP__MAX];
	struct conntrack_stats ct;
	uint64_t spx_entries, spx_evicted, spx_misses;
	uint64_t fc_hits, fc_misses;
	uint64_t pool_size, pool_free;
	uint64_t copies, stateless_flows, flows_repinned, nat_aliases, nat_aliases_stale, passed_on, mtu_too_big, mtu_fragmented;
	uint64_t up_rx_bad, up_tx_no_nh;  /* the underlay's uplink: bad outer headers, sent on sockets */
	json_t *workers;                /* per worker: connections, frames handed to other workers */
};

static void add_worker(struct worker *w, void *arg)
{
	struct totals *t = arg;
	const struct datapath *dp = w->dp;
	const struct hostcfg *hc = t->hc;
	if (dp->hc == hc) { /* always so on the control thread, which publishes */
		for (uint16_t i = 0; i < hc->n_ports; i++) {
			t->ports[i].rx_pkts += dp->port_stats[i].rx_pkts;
			t->ports[i].rx_bytes += dp->port_stats[i].rx_bytes;
			t->ports[i].tx_pkts += dp->port_stats[i].tx_pkts;
			t->ports[i].tx_bytes += dp->port_stats[i].tx_bytes;
			t->ports[i].drops += dp->port_stats[i].drops;
			struct io_port *io = w->conf->io[(size_t)w->id * w->conf->n_ports + i];
			if (io && w->conf->hc == hc) {
				struct io_stats st;
				io_get_stats(io, &st);
				t->io[i].rx_drops += st.rx_drops;
				t->io[i].gso_segmented += st.gso_segmented;
			}
		}
		for (uint16_t r = 0; r < hc->topo->n_rules; r++)
			t->rule_hits[r] += dp->rule_hits[r];
		for (uint16_t n = 0; n < hc->topo->n_nodes; n++) {
			t->nodes[n].to_node += dp->node_stats[n].to_node;
			t->nodes[n].from_node += dp->node_stats[n].from_node;
			t->nodes[n].drops += dp->node_stats[n].drops;
		}
		for (uint16_t p = 0; p < hc->ps->n_paths; p++) {
			t->paths[p].fwd_pkts += dp->path_stats[p].fwd_pkts;
			t->paths[p].rev_pkts += dp->path_stats[p].rev_pkts;
		}
	}
	for (int r = 0; r < DROP__MAX; r++)
		t->drops[r] += dp->drops[r];
	struct conntrack_stats cs;
	conntrack_get_stats(dp->ct, &cs);
	t->ct.entries += cs.entries;
	t->ct.capacity += cs.capacity;
	t->ct.inserts += cs.inserts;
	t->ct.insert_full += cs.insert_full;
	t->ct.expired += cs.expired;
	t->ct.lookups += cs.lookups;
	uint64_t se, sev, smiss;
	spx_table_stats(dp->spx, &se, &sev, &smiss);
	t->spx_entries += se;
	t->spx_evicted += sev;
	t->spx_misses += smiss;
	t->fc_hits += dp->fc.hits;
	t->fc_misses += dp->fc.misses;
	t->pool_size += pkt_pool_size(dp->pool);
	t->pool_free += pkt_pool_avail(dp->pool);
	t->copies += dp->copies;
	t->stateless_flows += dp->stateless_flows;
	t->flows_repinned += dp->flows_repinned;
	t->nat_aliases += dp->nat_aliases;
	t->nat_aliases_stale += dp->nat_aliases_stale;
	t->passed_on += dp->passed_on;
	t->mtu_too_big += dp->mtu_too_big;
	t->mtu_fragmented += dp->mtu_fragmented;
	const struct underlay *ul = w->conf->ul[w->id];
	if (ul) {
		struct underlay_stats us;
		underlay_get_stats(ul, &us);
		t->up_rx_bad += us.up_rx_bad;
		t->up_tx_no_nh += us.up_tx_no_nh;
	}
	json_array_append_new(t->workers, json_pack("{s:i, s:i, s:I, s:I}", "worker", (int)w->id, "cpu", w->cpu,
						    "connections", (json_int_t)cs.entries, "handed_out",
						    (json_int_t)w->handed_out));
}

static bool totals_get(struct daemon *d, struct totals *t)
{
	memset(t, 0, sizeof(*t));
	const struct hostcfg *hc = d->hc;
	t->hc = hc;
	t->ports = calloc(hc->n_ports + 1u, sizeof(*t->ports));
	t->io = calloc(hc->n_ports + 1u, sizeof(*t->io));
	t->rule_hits = calloc(hc->topo->n_rules + 1u, sizeof(*t->rule_hits));
	t->nodes = calloc(hc->topo->n_nodes + 1u, sizeof(*t->nodes));
	t->paths = calloc(hc->ps->n_paths + 1u, sizeof(*t->paths));
	t->workers = json_array();
	if (!t->ports || !t->io || !t->rule_hits || !t->nodes || !t->paths || !t->workers)
		return false;
	daemon_on_workers(d, add_worker, t);
	return true;
}

static void totals_free(struct totals *t)
{
	free(t->ports);
	free(t->io);
	free(t->rule_hits);
	free(t->nodes);
	free(t->paths);
	json_decref(t->workers);
}

#define WITH_TOTALS(d, t, err, errlen)                                   \
	struct totals t;                                                  \
	if (!totals_get(d, &t)) {                                         \
		totals_free(&t);                                          \
		snprintf(err, errlen, "out of memory");                   \
		return NULL;                                              \
	}

static json_t *show_ports(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)args;
	struct daemon *d = ctx;
	const struct hostcfg *hc = d->hc;
	WITH_TOTALS(d, t, err, errlen);
	json_t *a = json_array();
	for (uint16_t i = 0; i < hc->n_ports; i++) {
		const struct hc_port *p = &hc->ports[i];
		const struct dp_port_stats *st = &t.ports[i];
		const struct io_stats io = t.io[i];
		struct io_port *port = d->conf->io[i]; /* worker 0's */
		const char *owner = p->kind == PORT_GUEST ? hc->topo->guests[p->ref].name : hc->topo->nodes[p->ref].name;
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "port",
						   p->ifname, "kind", kind_name(p->kind), "attached", owner, "state",
						   port ? "up" : "missing", "io", port ? io_kind_name(port) : "-",
						   "rx_pkts", (json_int_t)st->rx_pkts,
						   "rx_bytes", (json_int_t)st->rx_bytes, "tx_pkts", (json_int_t)st->tx_pkts,
						   "tx_bytes", (json_int_t)st->tx_bytes, "drops", (json_int_t)st->drops,
						   "kernel_drops", (json_int_t)io.rx_drops, "gso_split",
						   (json_int_t)io.gso_segmented));
	}
	totals_free(&t);
	return a;
}

static void format_prefix(char *out, size_t n, bool has, const struct ipaddr *a, int plen)
{
	if (!has) {
		snprintf(out, n, "any");
		return;
	}
	char b[IPADDR_STRLEN];
	ipaddr_format(a, b);
	snprintf(out, n, "%s/%d", b, ipaddr_is_v4(a) ? plen - 96 : plen);
}

static void format_range(char *out, size_t n, const struct port_range *r)
{
	if (r->lo == 0 && r->hi == 65535)
		snprintf(out, n, "any");
	else if (r->lo == r->hi)
		snprintf(out, n, "%u", r->lo);
	else
		snprintf(out, n, "%u-%u", r->lo, r->hi);
}

static json_t *show_rules(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)args;
	struct daemon *d = ctx;
	const struct topology *t = d->hc->topo;
	WITH_TOTALS(d, tot, err, errlen);
	static const char *const dirs[] = {"?", "ingress", "egress", "both"};
	static const char *const actions[] = {"redirect", "copy", "skip"};
	json_t *a = json_array();
	for (uint16_t i = 0; i < t->n_rules; i++) {
		const struct topo_rule *r = &t->rules[i];
		char src[64], dst[64], sp[16], dpt[16], match[200];
		format_prefix(src, sizeof(src), r->match.has_src, &r->match.src, r->match.src_plen);
		format_prefix(dst, sizeof(dst), r->match.has_dst, &r->match.dst, r->match.dst_plen);
		format_range(sp, sizeof(sp), &r->match.sport);
		format_range(dpt, sizeof(dpt), &r->match.dport);
		snprintf(match, sizeof(match), "%s %s:%s > %s:%s", proto_name(r->match.proto), src, sp, dst, dpt);
		json_t *applied = json_array();
		for (uint16_t k = 0; k < r->n_applied; k++)
			json_array_append_new(applied, json_string(r->applied_to[k].is_network
									 ? t->networks[r->applied_to[k].index].name
									 : t->guests[r->applied_to[k].index].name));
		json_array_append_new(
			a, json_pack("{s:s, s:o, s:s, s:i, s:s, s:s, s:s, s:I}", "rule", r->name, "applied_to", applied,
				     "direction", dirs[r->dir & 3], "priority", (int)r->priority, "match", match, "action",
				     actions[r->action % 3], "chain",
				     r->chain != TOPO_NO_INDEX ? t->chains[r->chain].name : "-", "hits",
				     (json_int_t)tot.rule_hits[i]));
	}
	totals_free(&tot);
	return a;
}

static void hops_text(const struct hostcfg *hc, const struct path *p, char *out, size_t n)
{
	size_t off = 0;
	out[0] = 0;
	for (uint16_t h = 0; h < p->n_hops && off < n; h++) {
		const struct topo_node *nd = &hc->topo->nodes[p->nodes[h]];
		off += (size_t)snprintf(out + off, n - off, "%s%s@%s", h ? " > " : "", nd->name,
					hc->topo->hosts[nd->host].name);
	}
}

static json_t *show_chains(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)args, (void)err, (void)errlen;
	struct daemon *d = ctx;
	const struct hostcfg *hc = d->hc;
	json_t *a = json_array();
	for (uint16_t c = 0; c < hc->topo->n_chains; c++) {
		const struct topo_chain *ch = &hc->topo->chains[c];
		char svc[256] = "", state[256];
		size_t off = 0;
		for (uint16_t i = 0; i < ch->n_services && off < sizeof(svc); i++)
			off += (size_t)snprintf(svc + off, sizeof(svc) - off, "%s%s", i ? " > " : "",
						hc->topo->services[ch->services[i]].name);
		unsigned live = 0;
		for (uint16_t i = 0; i < hc->ps->chain_n[c]; i++)
			live += hostcfg_path_live(hc, (uint16_t)(hc->ps->chain_first[c] + i));
		if (hostcfg_live(hc)->blocked[c])
			snprintf(state, sizeof(state), "blocked");
		else if (hostcfg_live(hc)->bypass[c]) {
			off = (size_t)snprintf(state, sizeof(state), "bypassing");
			for (uint16_t i = 0; i < ch->n_services && off < sizeof(state); i++)
				if (hostcfg_live(hc)->bypass[c] & (1u << i))
					off += (size_t)snprintf(state + off, sizeof(state) - off, " %s",
								hc->topo->services[ch->services[i]].name);
		} else
			snprintf(state, sizeof(state), "ok");
		json_array_append_new(a, json_pack("{s:s, s:i, s:s, s:i, s:i, s:s}", "chain", ch->name, "id", c,
						   "services", svc, "paths", hc->ps->chain_n[c], "live_paths", live,
						   "state", state));
	}
	return a;
}

static json_t *show_paths(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)args;
	struct daemon *d = ctx;
	const struct hostcfg *hc = d->hc;
	WITH_TOTALS(d, t, err, errlen);
	json_t *a = json_array();
	for (uint16_t i = 0; i < hc->ps->n_paths; i++) {
		const struct path *p = &hc->ps->paths[i];
		char hops[512];
		hops_text(hc, p, hops, sizeof(hops));
		json_array_append_new(a, json_pack("{s:i, s:i, s:s, s:s, s:s, s:I, s:I}", "spi_fwd", (int)p->spi_fwd,
						   "spi_rev", (int)p->spi_rev, "chain", hc->topo->chains[p->chain].name,
						   "hops", hops, "state", hostcfg_path_live(hc, i) ? "live" : "down",
						   "fwd_pkts", (json_int_t)t.paths[i].fwd_pkts, "rev_pkts",
						   (json_int_t)t.paths[i].rev_pkts));
	}
	totals_free(&t);
	return a;
}

struct flows_ctx {
	struct daemon *d;
	const struct worker *w; /* whose table is walked */
	json_t *a;
	uint64_t now;
};

static const char *zone_text(const struct hostcfg *hc, uint16_t zone, char *buf, size_t n)
{
	uint16_t g = zone / 2;
	snprintf(buf, n, "%s/%s", g < hc->topo->n_guests ? hc->topo->guests[g].name : "?",
		 zone & 1 ? "ingress" : "egress");
	return buf;
}

/* The path of connection c of worker w: its index is of the worker's
 * configuration (read on the worker's thread). NULL if out of range. */
static const struct path *conn_path(const struct worker *w, const struct conn *c)
{
	const struct path_set *ps = w->dp->hc->ps;
	return c->path < ps->n_paths ? &ps->paths[c->path] : NULL;
}

static bool flow_row(struct conn *c, void *arg)
{
	struct flows_ctx *f = arg;
	const struct hostcfg *hc = f->w->dp->hc;
	if (json_array_size(f->a) >= 10000)
		return false;
	const struct path *p = conn_path(f->w, c);
	char src[IPADDR_STRLEN], dst[IPADDR_STRLEN], at[64], s[80], t[80];
	ipaddr_format(&c->key.src, src);
	ipaddr_format(&c->key.dst, dst);
	snprintf(s, sizeof(s), "%s:%u", src, c->key.sport);
	snprintf(t, sizeof(t), "%s:%u", dst, c->key.dport);
	json_array_append_new(
		f->a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:f}", "proto", proto_name(c->key.proto),
				"src", s, "dst", t, "at", zone_text(hc, c->key.zone, at, sizeof(at)), "chain",
				p ? hc->topo->chains[p->chain].name : "?", "spi_fwd", p ? (int)p->spi_fwd : 0, "spi_rev",
				p ? (int)p->spi_rev : 0, "pkts_fwd", (json_int_t)conntrack_pkts(f->w->dp->ct, c, 0),
				"pkts_rev", (json_int_t)conntrack_pkts(f->w->dp->ct, c, 1), "idle_s",
				(double)conntrack_idle_ns(c, f->now) / 1e9));
	return true;
}

static void flows_of(struct worker *w, void *arg)
{
	struct flows_ctx *f = arg;
	f->w = w;
	conntrack_walk(w->dp->ct, flow_row, f);
}

static json_t *show_flows(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)args, (void)err, (void)errlen;
	struct daemon *d = ctx;
	struct flows_ctx f = {d, NULL, json_array(), now_ns()};
	daemon_on_workers(d, flows_of, &f);
	return f.a;
}

static json_t *show_nodes(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)args;
	struct daemon *d = ctx;
	const struct hostcfg *hc = d->hc;
	WITH_TOTALS(d, t, err, errlen);
	json_t *a = json_array();
	for (uint16_t n = 0; n < hc->topo->n_nodes; n++) {
		const struct topo_node *nd = &hc->topo->nodes[n];
		const struct topo_service *s = &hc->topo->services[nd->service];
		const struct dp_node_stats *st = &t.nodes[n];
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:o, s:I, s:I, s:I}", "node",
						   nd->name, "service", s->name, "mode", svc_mode_name(s->mode), "host",
						   hc->topo->hosts[nd->host].name, "local", nd->host == hc->self,
						   "state", hostcfg_live(hc)->node_up[n] ? "up" : "down", "spmac",
						   mac_json(&hc->ps->node_spmac[n]), "to_node", (json_int_t)st->to_node,
						   "from_node", (json_int_t)st->from_node, "drops", (json_int_t)st->drops));
	}
	totals_free(&t);
	return a;
}

static json_t *show_stats(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)args;
	struct daemon *d = ctx;
	WITH_TOTALS(d, t, err, errlen);
	json_t *drops = json_object();
	for (int r = 1; r < DROP__MAX; r++)
		if (t.drops[r])
			json_object_set_new(drops, drop_reason_text((enum drop_reason)r), json_integer((json_int_t)t.drops[r]));
	json_t *o = json_pack("{s:s, s:f, s:I, s:I, s:i, s:O, s:o, s:{s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:i}, "
			      "s:{s:I, s:I, s:I}, s:{s:I, s:I}, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			      "host", d->host, "uptime_s", (double)(now_ns() - d->started_ns) / 1e9, "reloads",
			      (json_int_t)d->reloads, "reload_failures", (json_int_t)d->reload_failures, "workers",
			      (int)d->n_workers, "per_worker", t.workers, "drops", drops, "pool", "size", (json_int_t)t.pool_size, "free",
			      (json_int_t)t.pool_free, "connections", "entries", (json_int_t)t.ct.entries, "capacity",
			      (json_int_t)t.ct.capacity, "inserts", (json_int_t)t.ct.inserts, "full",
			      (json_int_t)t.ct.insert_full, "expired", (json_int_t)t.ct.expired, "lookups",
			      (json_int_t)t.ct.lookups, "bytes_per_entry", (int)conntrack_entry_bytes(),
			      "proxy_flow_state", "entries", (json_int_t)t.spx_entries, "evicted",
			      (json_int_t)t.spx_evicted, "misses", (json_int_t)t.spx_misses, "flow_cache", "hits",
			      (json_int_t)t.fc_hits, "misses", (json_int_t)t.fc_misses, "copies",
			      (json_int_t)t.copies, "stateless_flows", (json_int_t)t.stateless_flows, "flows_repinned",
			      (json_int_t)t.flows_repinned, "nat_aliases", (json_int_t)t.nat_aliases,
			      "passed_between_workers", (json_int_t)t.passed_on, "mtu_icmp_sent",
			      (json_int_t)t.mtu_too_big, "mtu_fragmented", (json_int_t)t.mtu_fragmented);
	json_object_set_new(o, "nat_aliases_stale", json_integer((json_int_t)t.nat_aliases_stale));
	json_object_set_new(o, "uplink", json_pack("{s:I, s:I}", "rx_bad_outer_headers", (json_int_t)t.up_rx_bad,
						   "tx_on_sockets_no_next_hop", (json_int_t)t.up_tx_no_nh));
	totals_free(&t);
	return o;
}

struct tunnels_ctx {
	uint32_t n;                      /* peers */
	struct underlay_peer_stats *ps;  /* [n] summed over the workers */
	struct underlay_stats us;        /* unknown senders summed, the last one seen */
	const char *uplink;              /* its name, NULL without */
	bool any;
};

static void tunnels_of(struct worker *w, void *arg)
{
	struct tunnels_ctx *t = arg;
	struct underlay *ul = w->conf->ul[w->id];
	if (!ul)
		return;
	t->any = true;
	for (uint32_t i = 0; i < t->n && i < underlay_n_peers(ul); i++) {
		struct underlay_peer_stats ps;
		if (!underlay_peer_stats(ul, i, &ps))
			continue;
		t->ps[i].vtep = ps.vtep;
		t->ps[i].rx_pkts += ps.rx_pkts;
		t->ps[i].rx_bytes += ps.rx_bytes;
		t->ps[i].rx_drops += ps.rx_drops;
		t->ps[i].tx_pkts += ps.tx_pkts;
		t->ps[i].tx_bytes += ps.tx_bytes;
		t->ps[i].tx_drops += ps.tx_drops;
		t->ps[i].up_rx_pkts += ps.up_rx_pkts;
		t->ps[i].up_tx_pkts += ps.up_tx_pkts;
	}
	struct underlay_stats us;
	underlay_get_stats(ul, &us);
	t->uplink = underlay_uplink_name(ul);
	if (us.rx_unknown_vtep) {
		t->us.rx_unknown_vtep += us.rx_unknown_vtep;
		t->us.last_unknown = us.last_unknown;
	}
}

static json_t *show_tunnels(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)args;
	struct daemon *d = ctx;
	const struct topology *t = d->hc->topo;
	json_t *a = json_array();
	struct tunnels_ctx tc = {.n = d->hc->n_peers};
	tc.ps = calloc(tc.n + 1u, sizeof(*tc.ps));
	if (!tc.ps) {
		json_decref(a);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	daemon_on_workers(d, tunnels_of, &tc);
	for (uint32_t i = 0; tc.any && i < tc.n; i++) {
		const struct underlay_peer_stats *ps = &tc.ps[i];
		char vtep[IPADDR_STRLEN];
		ipaddr_format(&ps->vtep, vtep);
		const char *host = "?";
		for (uint16_t h = 0; h < t->n_hosts; h++)
			if (ipaddr_eq(&t->hosts[h].vtep, &ps->vtep))
				host = t->hosts[h].name;
		json_t *e = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "host", host, "vtep", vtep,
				      "rx_pkts", (json_int_t)ps->rx_pkts, "rx_bytes", (json_int_t)ps->rx_bytes,
				      "rx_drops", (json_int_t)ps->rx_drops, "tx_pkts", (json_int_t)ps->tx_pkts,
				      "tx_bytes", (json_int_t)ps->tx_bytes, "tx_drops", (json_int_t)ps->tx_drops);
		/* the uplink's share, and its next hop now (0 = the sockets) */
		uint64_t nh = i < d->hc->n_peers ? atomic_load(&d->conf->nh[i]) : 0;
		if (tc.uplink) {
			struct mac m;
			bool known = underlay_nh_mac(nh, m.b);
			json_t *u = json_pack("{s:s, s:o, s:I, s:I}", "uplink", tc.uplink, "next_hop",
					      known ? mac_json(&m) : json_string("-"), "uplink_rx_pkts",
					      (json_int_t)ps->up_rx_pkts, "uplink_tx_pkts", (json_int_t)ps->up_tx_pkts);
			json_object_update(e, u);
			json_decref(u);
		}
		json_array_append_new(a, e);
	}
	if (tc.us.rx_unknown_vtep) {
		char last[IPADDR_STRLEN];
		ipaddr_format(&tc.us.last_unknown, last);
		json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "host", "(unknown)", "vtep",
						   last, "rx_pkts", (json_int_t)0, "rx_bytes", (json_int_t)0,
						   "rx_drops", (json_int_t)tc.us.rx_unknown_vtep, "tx_pkts", (json_int_t)0,
						   "tx_bytes", (json_int_t)0, "tx_drops", (json_int_t)0));
	}
	free(tc.ps);
	return a;
}

static uint16_t guest_by_ip(const struct topology *t, const struct ipaddr *a)
{
	for (uint16_t g = 0; g < t->n_guests; g++)
		if (t->guests[g].has_ip && ipaddr_eq(&t->guests[g].ip, a))
			return g;
	return TOPO_NO_INDEX;
}

struct conn_lookup {
	struct flow_key k;
	bool found;
	struct conn c; /* a copy: the worker may change or drop it */
	uint32_t spi;  /* its path's forward SPI (0: none) */
	int dir;
};

static void lookup_conn(struct worker *w, void *arg)
{
	struct conn_lookup *l = arg;
	const struct conn *c = conntrack_lookup(w->dp->ct, &l->k, &l->dir);
	if (c) {
		l->found = true;
		l->c = *c;
		const struct path *p = conn_path(w, c); /* passed on by SPI */
		l->spi = p ? p->spi_fwd : 0;
	}
}

/* Describe what one classification point does with key k; returns true if
 * the packet continues on the guest plane. */
static bool trace_point(struct daemon *d, json_t *lines, json_t *points, uint16_t guest, bool ingress,
			struct flow_key k)
{
	const struct hostcfg *hc = d->hc;
	const struct topology *t = hc->topo;
	const char *gname = t->guests[guest].name;
	const char *where = ingress ? "ingress" : "egress";
	k.zone = (uint16_t)(guest * 2 + (ingress ? 1 : 0));
	k.vni = t->networks[t->guests[guest].network].vni;
	json_t *pt = json_pack("{s:s, s:s}", "guest", gname, "direction", where);
	json_array_append_new(points, pt);
	if (hc->guest_port[guest] == PORT_NONE) {
		json_array_append_new(lines, json_sprintf("%s %s: guest is on host %s, not here", gname, where,
							  t->hosts[t->guests[guest].host].name));
		return true;
	}
	/* the connection, if any, lives on the worker that owns the flow */
	struct conn_lookup cl = {.k = k};
	uint16_t owner = d->steer ? steer_owner(d->steer, steer_key_hash(&k)) : 0;
	daemon_on_worker(d, owner == STEER_ANY ? 0 : owner, lookup_conn, &cl);
	const struct conn *c = cl.found ? &cl.c : NULL;
	int dir = cl.dir;
	uint16_t path_idx = PATH_NONE, rule = CLS_NO_RULE;
	bool reverse = false;
	if (c) {
		bool rev;
		const struct path *p = path_by_spi(hc->ps, cl.spi, &rev);
		path_idx = p ? (uint16_t)(p - hc->ps->paths) : PATH_NONE;
		rule = c->rule;
		reverse = dir == 1;
		json_array_append_new(lines, json_sprintf("%s %s: existing connection (%s direction), rule %s", gname,
							  where, reverse ? "reverse" : "forward",
							  rule < t->n_rules ? t->rules[rule].name : "?"));
	} else {
		rule = classifier_lookup(hc->cls, guest, ingress, &k);
		if (rule == CLS_NO_RULE) {
			json_array_append_new(lines, json_sprintf("%s %s: no rule matches", gname, where));
			return true;
		}
		const struct topo_rule *r = &t->rules[rule];
		json_array_append_new(lines, json_sprintf("%s %s: rule %s (priority %d, action %s)", gname, where,
							  r->name, (int)r->priority,
							  r->action == RULE_REDIRECT ? "redirect"
							  : r->action == RULE_COPY ? "copy" : "skip"));
		if (r->action == RULE_SKIP || r->chain == TOPO_NO_INDEX)
			return true;
		path_idx = hostcfg_pick_path(hc, r->chain, flow_key_hash_sym(&k));
	}
	json_object_set_new(pt, "rule", json_string(rule < t->n_rules ? t->rules[rule].name : "?"));
	if (path_idx == PATH_NONE) {
		json_array_append_new(lines, json_sprintf("  chain %s has no live path: failure policy block, dropped",
							  rule < t->n_rules && t->rules[rule].chain != TOPO_NO_INDEX
							  ? t->chains[t->rules[rule].chain].name : "?"));
		return false;
	}
	const struct path *p = &hc->ps->paths[path_idx];
	uint32_t spi = reverse ? p->spi_rev : p->spi_fwd;
	json_object_set_new(pt, "chain", json_string(t->chains[p->chain].name));
	json_object_set_new(pt, "spi", json_integer(spi));
	json_array_append_new(lines, json_sprintf("  chain %s, path SPI %u (%s)", t->chains[p->chain].name, spi,
						  reverse ? "reverse" : "forward"));
	char spmac[MAC_STRLEN];
	mac_format(&hc->pp_spmac, spmac);
	json_array_append_new(lines, json_sprintf("  port proxy of %s (spmac %s): MACs saved, SPI %u SI 255, return address %s",
						  t->hosts[hc->self].name, spmac, spi, t->hosts[hc->self].name));
	json_t *hops = json_array();
	uint8_t si = 255;
	bool first = true;
	for (;;) {
		uint8_t at;
		uint16_t node;
		if (first)
			node = hostcfg_next_hop(hc, p, reverse, 255, &at);
		else
			node = si ? hostcfg_next_hop(hc, p, reverse, (uint8_t)(si - 1), &at) : TOPO_NO_INDEX;
		first = false;
		if (node == TOPO_NO_INDEX)
			break;
		si = at;
		const struct topo_node *nd = &t->nodes[node];
		const struct topo_service *s = &t->services[nd->service];
		json_array_append_new(hops, json_pack("{s:i, s:s, s:s, s:s, s:s}", "si", si, "node", nd->name,
						      "service", s->name, "mode", svc_mode_name(s->mode), "host",
						      t->hosts[nd->host].name));
		json_array_append_new(lines, json_sprintf("  SI %u: %s (%s, mode %s) on host %s%s", si, nd->name,
							  s->name, svc_mode_name(s->mode), t->hosts[nd->host].name,
							  hostcfg_live(hc)->node_up[node] ? "" : " [DOWN]"));
	}
	json_object_set_new(pt, "hops", hops);
	json_array_append_new(lines, json_sprintf("  end of path: back to the port proxy of %s, then %s",
						  t->hosts[hc->self].name,
						  ingress ? "delivered to the guest" : "guest plane"));
	if (c == NULL && t->rules[rule].action == RULE_COPY) {
		json_array_append_new(lines, json_sprintf("  copy: the original continues undelayed"));
		return true;
	}
	return !ingress;
}

static json_t *do_trace(void *ctx, json_t *args, char *err, size_t errlen)
{
	struct daemon *d = ctx;
	const struct topology *t = d->hc->topo;
	if (json_array_size(args) < 2) {
		snprintf(err, errlen, "usage: trace GUEST FLOW, e.g. trace vm1 \"tcp 192.168.1.1:1234 > 192.168.1.2:80\"");
		return NULL;
	}
	const char *gname = json_string_value(json_array_get(args, 0));
	char flow[512] = "";
	size_t off = 0;
	for (size_t i = 1; i < json_array_size(args) && off < sizeof(flow); i++)
		off += (size_t)snprintf(flow + off, sizeof(flow) - off, "%s%s", i > 1 ? " " : "",
					json_string_value(json_array_get(args, i)) ?: "");
	uint16_t g = gname ? topology_guest_index(t, gname) : TOPO_NO_INDEX;
	if (g == TOPO_NO_INDEX) {
		snprintf(err, errlen, "unknown guest '%s'", gname ? gname : "");
		return NULL;
	}
	struct flow_key k;
	char ferr[200];
	if (!flowspec_parse(flow, &k, ferr, sizeof(ferr))) {
		snprintf(err, errlen, "bad flow '%s': %s", flow, ferr);
		return NULL;
	}
	json_t *lines = json_array(), *points = json_array();
	json_array_append_new(lines, json_sprintf("flow %s from guest %s on host %s", flow, gname,
						  t->hosts[t->guests[g].host].name));
	if (trace_point(d, lines, points, g, false, k)) {
		uint16_t dst = guest_by_ip(t, &k.dst);
		if (dst == TOPO_NO_INDEX)
			json_array_append_new(lines, json_sprintf("guest plane: destination address is no known guest"));
		else if (t->guests[dst].network != t->guests[g].network)
			json_array_append_new(lines, json_sprintf("guest plane: %s is in another network", t->guests[dst].name));
		else {
			json_array_append_new(lines, json_sprintf("guest plane: to %s (host %s)", t->guests[dst].name,
								  t->hosts[t->guests[dst].host].name));
			if (trace_point(d, lines, points, dst, true, k))
				json_array_append_new(lines, json_sprintf("delivered to %s", t->guests[dst].name));
		}
	}
	return json_pack("{s:o, s:o}", "lines", lines, "points", points);
}

static json_t *do_node(void *ctx, json_t *args, char *err, size_t errlen)
{
	struct daemon *d = ctx;
	const char *op = json_string_value(json_array_get(args, 0));
	const char *name = json_string_value(json_array_get(args, 1));
	if (!op || !name || json_array_size(args) != 2 || (strcmp(op, "down") && strcmp(op, "up"))) {
		snprintf(err, errlen, "usage: node down|up NODE");
		return NULL;
	}
	uint16_t n = topology_node_index(d->hc->topo, name);
	if (n == TOPO_NO_INDEX) {
		snprintf(err, errlen, "unknown node '%s'", name);
		return NULL;
	}
	bool up = !strcmp(op, "up");
	daemon_set_node(d, n, up);
	log_info("node %s set %s by operator", name, op);
	return json_pack("{s:s, s:s}", "node", name, "state", up ? "up" : "down");
}

static json_t *do_reload(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)args;
	struct daemon *d = ctx;
	json_t *errors = json_array();
	if (!daemon_reload(d, errors)) {
		snprintf(err, errlen, "reload rejected, running state kept");
		return json_pack("{s:o}", "errors", errors);
	}
	json_decref(errors);
	return json_pack("{s:s, s:i, s:i}", "config", d->config_path, "ports", d->hc->n_ports, "paths",
			 d->hc->ps->n_paths);
}

void daemon_register_handlers(struct daemon *d)
{
	static const struct {
		const char *cmd, *sub;
		control_handler h;
	} tab[] = {
		{"show", "ports", show_ports}, {"show", "rules", show_rules},     {"show", "chains", show_chains},
		{"show", "paths", show_paths}, {"show", "flows", show_flows},     {"show", "nodes", show_nodes},
		{"show", "stats", show_stats}, {"show", "tunnels", show_tunnels}, {"trace", NULL, do_trace},
		{"node", NULL, do_node},       {"reload", NULL, do_reload},
	};
	for (size_t i = 0; i < ARRAY_SIZE(tab); i++)
		control_register(d->ctl, tab[i].cmd, tab[i].sub, tab[i].h, d);
}
