/* hostcfg.c - derive one host's configuration from the topology. */
#include "hostcfg.h"

#include "nsh.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_port(struct hostcfg *hc, const char *ifname, enum port_kind kind, uint16_t ref, uint32_t vni,
		     enum port_io io)
{
	struct hc_port *p = &hc->ports[hc->n_ports++];
	if (io == PORT_IO_UNSET)
		io = hc->topo->hosts[hc->self].io;
	p->io = io == PORT_IO_UNSET ? PORT_IO_AFPACKET : io;
	snprintf(p->ifname, sizeof(p->ifname), "%s", ifname);
	p->kind = kind;
	p->ref = ref;
	p->vni = vni;
}

static bool live_path(const struct hostcfg *hc, const struct hc_live *l, uint16_t path)
{
	const struct path *p = &hc->ps->paths[path];
	for (int i = 0; i < p->n_hops; i++)
		if (!l->node_up[p->nodes[i]] && !(l->bypass[p->chain] & (1u << i)))
			return false;
	return true;
}

static void rebuild_chain(const struct hostcfg *hc, struct hc_live *l, uint16_t c)
{
	const struct topology *t = hc->topo;
	const struct topo_chain *ch = &t->chains[c];
	l->bypass[c] = 0;
	l->blocked[c] = 0;
	for (int i = 0; i < ch->n_services; i++) {
		const struct topo_service *s = &t->services[ch->services[i]];
		bool any = false;
		for (int k = 0; k < s->n_nodes; k++)
			any |= l->node_up[s->first_node + k] != 0;
		if (!any) {
			if (s->failure == SVC_FAIL_ALLOW)
				l->bypass[c] |= 1u << i;
			else
				l->blocked[c] = 1;
		}
	}
	uint16_t first = hc->ps->chain_first[c], n = hc->ps->chain_n[c];
	uint32_t key[PATH_MAX_PER_CHAIN], w[PATH_MAX_PER_CHAIN];
	for (uint16_t i = 0; i < n; i++) {
		key[i] = hc->ps->paths[first + i].spi_fwd;
		l->path_live[first + i] = live_path(hc, l, first + i);
		w[i] = !l->blocked[c] && l->path_live[first + i] ? 1 : 0;
	}
	selector_build(l->sel[c], n, key, w);
}

void hostcfg_live_free(const struct hostcfg *hc, struct hc_live *l)
{
	if (!l)
		return;
	if (l->sel)
		for (uint16_t c = 0; c < hc->topo->n_chains; c++)
			selector_free(l->sel[c]);
	free(l->sel);
	free(l->bypass);
	free(l->blocked);
	free(l->path_live);
	free(l->node_up);
	free(l);
}

/* A liveness object with the nodes up as in node_up (NULL: all), every
 * selector built. */
static struct hc_live *live_build(const struct hostcfg *hc, const uint8_t *node_up)
{
	const struct topology *t = hc->topo;
	struct hc_live *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->node_up = calloc(t->n_nodes + 1u, 1);
	l->sel = calloc(t->n_chains + 1u, sizeof(*l->sel));
	l->bypass = calloc(t->n_chains + 1u, sizeof(*l->bypass));
	l->blocked = calloc(t->n_chains + 1u, 1);
	l->path_live = calloc(hc->ps->n_paths + 1u, 1);
	if (!l->node_up || !l->sel || !l->bypass || !l->blocked || !l->path_live)
		goto fail;
	for (uint16_t n = 0; n < t->n_nodes; n++)
		l->node_up[n] = node_up ? node_up[n] : 1;
	for (uint16_t c = 0; c < t->n_chains; c++) {
		if (!(l->sel[c] = selector_create()))
			goto fail;
		rebuild_chain(hc, l, c);
	}
	return l;
fail:
	hostcfg_live_free(hc, l);
	return NULL;
}

/* Per path: whether it leaves this host, and the frame head towards each
 * of its local nsh nodes, both ways. */
static bool build_path_tables(struct hostcfg *hc)
{
	const struct topology *t = hc->topo;
	hc->nsh_tmpl = calloc((size_t)hc->ps->n_paths * PATH_MAX_HOPS * 2 + 1u, sizeof(*hc->nsh_tmpl));
	hc->path_remote = calloc(hc->ps->n_paths + 1u, 1);
	if (!hc->nsh_tmpl || !hc->path_remote)
		return false;
	for (uint16_t i = 0; i < hc->ps->n_paths; i++) {
		const struct path *p = &hc->ps->paths[i];
		for (unsigned pos = 0; pos < p->n_hops && pos < PATH_MAX_HOPS; pos++) {
			uint16_t node = p->nodes[pos];
			const struct topo_node *nd = &t->nodes[node];
			if (nd->host != hc->self)
				hc->path_remote[i] = 1;
			if (nd->host != hc->self || t->services[nd->service].mode != SVC_MODE_NSH)
				continue;
			for (int rev = 0; rev < 2; rev++) {
				uint8_t *o = hc->nsh_tmpl[((size_t)i * PATH_MAX_HOPS + pos) * 2 + (size_t)rev];
				struct sp_meta md;
				memset(&md, 0, sizeof(md));
				md.chain = p->chain;
				md.dir = rev ? SP_DIR_REVERSE : SP_DIR_FORWARD;
				eth_build(o, ETH_HLEN, &nd->mac, &hc->ps->node_spmac[node], ETH_P_NSH);
				if (nsh_encode(o + ETH_HLEN, HC_NSH_TMPL_LEN - ETH_HLEN, rev ? p->spi_rev : p->spi_fwd, 0,
					       t->md_class, &md, NSH_TLV_CHAIN) == HC_NSH_TMPL_LEN - ETH_HLEN)
					o[HC_NSH_TMPL - 1] = 1;
			}
		}
	}
	return true;
}

struct hostcfg *hostcfg_build(struct topology *t, const char *host, char *err, size_t errlen)
{
	struct hostcfg *hc = calloc(1, sizeof(*hc));
	if (!hc) {
		topology_free(t);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	hc->topo = t;
	hc->self = topology_host_index(t, host);
	if (hc->self == TOPO_NO_INDEX) {
		snprintf(err, errlen, "host '%s' is not in the topology", host);
		goto fail;
	}
	hc->vtep = t->hosts[hc->self].vtep;
	hc->ps = path_set_build(t);
	hc->cls = classifier_build(t);
	size_t nmax = (size_t)t->n_guests + 2u * t->n_nodes + 1;
	hc->ports = calloc(nmax, sizeof(*hc->ports));
	hc->guest_port = calloc(t->n_guests + 1u, sizeof(*hc->guest_port));
	hc->node_port = calloc(t->n_nodes + 1u, sizeof(*hc->node_port));
	hc->node_mode = calloc(t->n_nodes + 1u, 1);
	hc->guest_rules = calloc(t->n_guests + 1u, 1);
	hc->peers = calloc(t->n_hosts + 1u, sizeof(*hc->peers));
	hc->net_hosts = calloc((size_t)t->n_networks * t->n_hosts + 1u, 1);
	if (!hc->ps || !hc->cls || !hc->ports || !hc->guest_port || !hc->node_port || !hc->node_mode ||
	    !hc->guest_rules || !hc->peers || !hc->net_hosts) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	hc->pp_spmac = hc->ps->host_spmac[hc->self];
	hc->mtu = t->hosts[hc->self].mtu ? t->hosts[hc->self].mtu : 1500;
	for (uint16_t h = 0; h < t->n_hosts; h++)
		if (h != hc->self)
			hc->peers[hc->n_peers++] = t->hosts[h].vtep;
	for (uint16_t g = 0; g < t->n_guests; g++)
		hc->net_hosts[(size_t)t->guests[g].network * t->n_hosts + t->guests[g].host] = 1;
	for (uint16_t g = 0; g < t->n_guests; g++) {
		hc->guest_port[g] = PORT_NONE;
		if (t->guests[g].host != hc->self)
			continue;
		hc->guest_port[g] = hc->n_ports;
		add_port(hc, t->guests[g].port, PORT_GUEST, g, t->networks[t->guests[g].network].vni, t->guests[g].io);
	}
	for (uint16_t r = 0; r < t->n_rules; r++)
		for (uint16_t a = 0; a < t->rules[r].n_applied; a++)
			for (uint16_t g = 0; g < t->n_guests; g++)
				if (t->rules[r].applied_to[a].is_network ? t->guests[g].network == t->rules[r].applied_to[a].index
									 : g == t->rules[r].applied_to[a].index)
					hc->guest_rules[g] |= (uint8_t)((t->rules[r].dir & RULE_DIR_EGRESS ? 1 : 0) |
									 (t->rules[r].dir & RULE_DIR_INGRESS ? 2 : 0));
	for (uint16_t n = 0; n < t->n_nodes; n++) {
		const struct topo_node *nd = &t->nodes[n];
		hc->node_mode[n] = (uint8_t)t->services[nd->service].mode;
		hc->node_port[n][0] = hc->node_port[n][1] = PORT_NONE;
		if (nd->host != hc->self)
			continue;
		if (t->services[nd->service].mode == SVC_MODE_L2) {
			hc->node_port[n][0] = hc->n_ports;
			add_port(hc, nd->ports[0], PORT_SN_IN, n, 0, nd->io);
			hc->node_port[n][1] = hc->n_ports;
			add_port(hc, nd->ports[1], PORT_SN_OUT, n, 0, nd->io);
		} else {
			hc->node_port[n][0] = hc->node_port[n][1] = hc->n_ports;
			add_port(hc, nd->ports[0], PORT_SN, n, 0, nd->io);
		}
	}
	if (!build_path_tables(hc)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!(hc->live = live_build(hc, NULL))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return hc;
fail:
	hostcfg_free(hc);
	return NULL;
}

void hostcfg_free(struct hostcfg *hc)
{
	if (!hc)
		return;
	hostcfg_live_free(hc, hc->live);
	free(hc->nsh_tmpl);
	free(hc->path_remote);
	free(hc->guest_rules);
	free(hc->peers);
	free(hc->net_hosts);
	free(hc->node_port);
	free(hc->node_mode);
	free(hc->guest_port);
	free(hc->ports);
	classifier_free(hc->cls);
	path_set_free(hc->ps);
	topology_free(hc->topo);
	free(hc);
}

struct hc_live *hostcfg_set_node_rcu(struct hostcfg *hc, uint16_t node, bool up)
{
	const struct hc_live *old = hostcfg_live(hc);
	if (node >= hc->topo->n_nodes || old->node_up[node] == (uint8_t)up)
		return NULL;
	uint8_t *want = malloc(hc->topo->n_nodes + 1u);
	if (!want)
		return NULL;
	memcpy(want, old->node_up, hc->topo->n_nodes);
	want[node] = up;
	struct hc_live *l = live_build(hc, want);
	free(want);
	if (!l)
		return NULL;
	l->generation = old->generation + 1;
	return _rcu_xchg_pointer(&hc->live, l);
}

void hostcfg_set_node(struct hostcfg *hc, uint16_t node, bool up)
{
	hostcfg_live_free(hc, hostcfg_set_node_rcu(hc, node, up));
}

void hostcfg_inherit_liveness(struct hostcfg *hc, const struct hostcfg *old)
{
	for (uint16_t n = 0; n < hc->topo->n_nodes; n++) {
		uint16_t o = topology_node_index(old->topo, hc->topo->nodes[n].name);
		if (o != TOPO_NO_INDEX && !hostcfg_live(old)->node_up[o])
			hostcfg_set_node(hc, n, false);
	}
}

uint16_t hostcfg_pick_path(const struct hostcfg *hc, uint16_t chain, uint64_t hash)
{
	const struct hc_live *l = hostcfg_live(hc);
	if (chain >= hc->topo->n_chains || l->blocked[chain])
		return PATH_NONE;
	uint16_t i = selector_pick(l->sel[chain], hash);
	if (i == SELECTOR_NONE)
		return PATH_NONE;
	return (uint16_t)(hc->ps->chain_first[chain] + i);
}

uint16_t hostcfg_port_by_ifname(const struct hostcfg *hc, const char *ifname)
{
	for (uint16_t i = 0; i < hc->n_ports; i++)
		if (strcmp(hc->ports[i].ifname, ifname) == 0)
			return i;
	return PORT_NONE;
}

uint16_t hostcfg_network_by_vni(const struct hostcfg *hc, uint32_t vni)
{
	for (uint16_t n = 0; n < hc->topo->n_networks; n++)
		if (hc->topo->networks[n].vni == vni)
			return n;
	return TOPO_NO_INDEX;
}
