/* test_service_proxy.c - the service proxy of one node, driven directly:
 * what service_proxy_to_node puts on the node port in each mode (nsh, l2,
 * l3), and how service_proxy_from_node checks a returned frame and
 * recovers its metadata, also after the node rewrote it (NAT).
 * Packets are prepared as port_proxy_encap leaves them.
 * Owns nothing but these tests; must not touch src/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "nsh.h"
#include "port_proxy.h"
#include "service_proxy.h"
#include "wire.h"

static const char *TOPO =
	"service_plane: { vni: 4000 }\n"
	"hosts: [ { name: h1, vtep: 10.0.0.1 } ]\n"
	"networks: [ { name: blue, vni: 100 }, { name: red, vni: 200 } ]\n"
	"guests:\n"
	"  - { name: vm1, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:01\", ip: 192.168.1.1 }\n"
	"  - { name: vm2, host: h1, network: blue, port: vm2p, mac: \"02:00:00:00:01:02\", ip: 192.168.1.2 }\n"
	"  - { name: vm3, host: h1, network: red, port: vm3p, mac: \"02:00:00:00:01:03\", ip: 192.168.1.3 }\n"
	"services:\n"
	"  - { name: fw, mode: l2, nodes: [ { name: fw1, host: h1, ports: [fw1i, fw1o] } ] }\n"
	"  - { name: ids, mode: nsh, nodes: [ { name: ids1, host: h1, ports: [ids1p], mac: \"02:00:00:00:aa:01\" },\n"
	"                                   { name: ids2, host: h1, ports: [ids2p], mac: \"02:00:00:00:aa:02\" } ] }\n"
	"  - { name: nat, mode: l3, nodes: [ { name: r1, host: h1, ports: [r1p], mac: \"02:00:00:00:bb:01\" } ] }\n"
	"chains: [ { name: c_nsh, services: [ids] }, { name: c_tap, services: [ids] },\n"
	"          { name: c_l2, services: [fw] }, { name: c_l3, services: [nat] } ]\n";

static const uint8_t MAC1[6] = {2, 0, 0, 0, 1, 1}, MAC2[6] = {2, 0, 0, 0, 1, 2};
static const uint8_t IDS1_MAC[6] = {2, 0, 0, 0, 0xaa, 1}, R1_MAC[6] = {2, 0, 0, 0, 0xbb, 1};
#define NOW 1000000000000ull

static struct hostcfg *hc;
static struct spx_table *tab;

static int setup(void **state)
{
	(void)state;
	struct topo_errors errs;
	memset(&errs, 0, sizeof(errs));
	struct topology *t = topology_load_buffer(TOPO, strlen(TOPO), &errs);
	if (!t) {
		fprintf(stderr, "line %d: %s\n", errs.e[0].line, errs.e[0].msg);
		return -1;
	}
	char err[200];
	hc = hostcfg_build(t, "h1", err, sizeof(err));
	if (!hc) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hostcfg_free(hc);
	return 0;
}

/* a fresh flow-state table for every test */
static int tab_new(void **state)
{
	(void)state;
	tab = spx_table_create(1024);
	return tab ? 0 : -1;
}

static int tab_free(void **state)
{
	(void)state;
	spx_table_destroy(tab);
	tab = NULL;
	return 0;
}

static uint16_t node(const char *name)
{
	uint16_t n = topology_node_index(hc->topo, name);
	assert_int_not_equal(n, TOPO_NO_INDEX);
	return n;
}

static uint16_t port(const char *ifname)
{
	uint16_t p = hostcfg_port_by_ifname(hc, ifname);
	assert_int_not_equal(p, PORT_NONE);
	return p;
}

/* The path of chain `chain` through node `n`. */
static const struct path *path_via(const char *chain, const char *n)
{
	uint16_t c = topology_chain_index(hc->topo, chain), nd = node(n);
	assert_int_not_equal(c, TOPO_NO_INDEX);
	for (uint16_t i = 0; i < hc->ps->chain_n[c]; i++) {
		const struct path *p = &hc->ps->paths[hc->ps->chain_first[c] + i];
		if (p->nodes[0] == nd)
			return p;
	}
	fail_msg("no path of %s via %s", chain, n);
	return NULL;
}

/* Ethernet + IPv4 + TCP with valid checksums (addresses 192.168.1.x). */
static uint32_t build_tcp(uint8_t *f, const uint8_t *dmac, const uint8_t *smac, uint8_t sip, uint8_t dip,
			  uint16_t sport, uint16_t dport, size_t payload)
{
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	wr16(f + 12, ETH_P_IPV4);
	uint8_t *ip = f + 14;
	memset(ip, 0, 40 + payload);
	ip[0] = 0x45;
	wr16(ip + 2, (uint16_t)(40 + payload));
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	uint8_t src[4] = {192, 168, 1, sip}, dst[4] = {192, 168, 1, dip};
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	ipv4_set_csum(ip);
	uint8_t *l4 = ip + 20;
	wr16(l4, sport);
	wr16(l4 + 2, dport);
	l4[12] = 5 << 4;
	l4[13] = 0x18;
	wr16(l4 + 14, 1000);
	for (size_t i = 0; i < payload; i++)
		l4[20 + i] = (uint8_t)(i * 13 + 1);
	uint32_t len = (uint32_t)(14 + 40 + payload);
	struct pkt *p = aligned_alloc(_Alignof(struct pkt), sizeof(*p));
	assert_non_null(p);
	memset(p, 0, sizeof(*p));
	assert_non_null(p);
	pkt_reset(p);
	memcpy(p->data, f, len);
	p->len = len;
	assert_int_equal(wire_parse(p), DROP_NONE);
	assert_true(wire_l4_csum_fill(p));
	memcpy(f, p->data, len);
	free(p);
	return len;
}

/* Internet checksum of the TCP segment of an IPv4 frame is right. */
static bool tcp4_csum_ok(const uint8_t *f, uint32_t len)
{
	const uint8_t *ip = f + 14;
	if (csum_fold(csum_partial(ip, 20, 0)) != 0)
		return false;
	uint32_t l4len = len - 34;
	uint8_t ph[12];
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = IPPROTO_TCP;
	wr16(ph + 10, (uint16_t)l4len);
	return csum_fold(csum_partial(f + 34, l4len, csum_partial(ph, 12, 0))) == 0;
}

/* A received frame in a new buffer, parsed. */
static struct pkt *rx(const uint8_t *f, uint32_t len, uint16_t in_port)
{
	struct pkt *p = aligned_alloc(_Alignof(struct pkt), sizeof(*p));
	assert_non_null(p);
	memset(p, 0, sizeof(*p));
	assert_non_null(p);
	pkt_reset(p);
	assert_true(len <= PKT_DATA_ROOM);
	memcpy(p->data, f, len);
	p->len = len;
	p->in_port = in_port;
	return p;
}

/* A guest frame put on the service plane for path as port_proxy_encap does. */
static struct pkt *guest_pkt(const uint8_t *f, uint32_t len, const char *guest, const struct path *path,
			     bool reverse)
{
	uint16_t g = topology_guest_index(hc->topo, guest);
	struct pkt *p = rx(f, len, hc->guest_port[g]);
	assert_int_equal(wire_parse(p), DROP_NONE);
	p->key.vni = hc->topo->networks[hc->topo->guests[g].network].vni;
	p->key.zone = (uint16_t)(p->in_port * 2);
	port_proxy_encap(hc, p, path, reverse, g, false, false);
	assert_true(p->flags & PKT_F_HAS_MD);
	assert_int_equal(p->md.si, 255);
	return p;
}

/* The recovered metadata is the one sent. */
static void md_equal(const struct sp_meta *got, const struct sp_meta *want)
{
	assert_int_equal(got->spi, want->spi);
	assert_int_equal(got->si, want->si);
	assert_int_equal(got->dir, want->dir);
	assert_int_equal(got->chain, want->chain);
	assert_int_equal(got->guest_port, want->guest_port);
	assert_int_equal(got->vni, want->vni);
	assert_int_equal(got->is_copy, want->is_copy);
	assert_int_equal(got->flow_tag, want->flow_tag);
	assert_memory_equal(got->orig_dst.b, want->orig_dst.b, 6);
	assert_memory_equal(got->orig_src.b, want->orig_src.b, 6);
	assert_memory_equal(got->ret_vtep.b, want->ret_vtep.b, 16);
	assert_memory_equal(got->ret_spmac.b, want->ret_spmac.b, 6);
}

/* ---- nsh ---- */

/* The port of single-port node `name` (named name + "p"). */
static uint16_t node_port(const char *name)
{
	char pn[16];
	snprintf(pn, sizeof(pn), "%sp", name);
	return port(pn);
}

/* Send f (vm1 -> vm2) to nsh node n on path; returns the frame the node
 * gets. */
static uint32_t nsh_to(const char *name, const uint8_t *f, uint32_t len, const struct path *path, uint8_t *out,
		       struct sp_meta *md)
{
	struct pkt *p = guest_pkt(f, len, "vm1", path, false);
	*md = p->md;
	enum drop_reason why = DROP_NONE;
	uint16_t port_out = service_proxy_to_node(hc, tab, node(name), p, NOW, &why);
	assert_int_equal(port_out, node_port(name));
	memcpy(out, p->data, p->len);
	uint32_t n = p->len;
	free(p);
	return n;
}

static uint32_t nsh_to_node(const uint8_t *f, uint32_t len, const struct path *path, uint8_t *out,
			    struct sp_meta *md)
{
	return nsh_to("ids1", f, len, path, out, md);
}

static void test_nsh_to_node_format(void **state)
{
	(void)state;
	uint8_t f[256], out[512];
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 40000, 80, 33);
	const struct path *path = path_via("c_nsh", "ids1");
	struct sp_meta md;
	uint32_t n = nsh_to_node(f, len, path, out, &md);
	/* Ethernet to the node from its proxy */
	assert_memory_equal(out, IDS1_MAC, 6);
	assert_memory_equal(out + 6, hc->ps->node_spmac[node("ids1")].b, 6);
	assert_int_equal(rd16(out + 12), ETH_P_NSH);
	/* NSH: this path's SPI, SI 255, the chain TLV */
	struct nsh_info info;
	struct sp_meta got;
	memset(&got, 0, sizeof(got));
	got.chain = 0xeeee;
	got.dir = 0xee;
	assert_int_equal(nsh_decode(out + 14, n - 14, hc->topo->md_class, &info, &got), DROP_NONE);
	assert_int_equal(info.spi, path->spi_fwd);
	assert_int_equal(info.si, 255);
	assert_int_equal(info.md_type, NSH_MD_TYPE2);
	assert_int_equal(info.next_proto, NSH_NP_ETHERNET);
	assert_int_equal(got.chain, path->chain);
	assert_int_equal(got.dir, SP_DIR_FORWARD);
	/* then the guest frame with its original MACs, unchanged */
	assert_int_equal(n, 14 + info.hdr_len + len);
	assert_memory_equal(out + 14 + info.hdr_len, f, len);
	(void)md;
}

/* The precomputed head (template per path, hop and direction) gives the
 * very bytes the encoder writes when the path is not known (no template). */
static void test_nsh_template_matches_encoder(void **state)
{
	(void)state;
	uint8_t f[256];
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 40002, 80, 20);
	const struct path *path = path_via("c_nsh", "ids1");
	for (int rev = 0; rev < 2; rev++)
		for (int flags = 0; flags < 4; flags++) {
			uint8_t a[512], b[512];
			uint32_t n[2];
			for (int use = 0; use < 2; use++) {
				struct pkt *p = guest_pkt(f, len, "vm1", path, rev);
				p->md.ingress = flags & 1;
				p->md.is_copy = (flags & 2) != 0;
				if (!use)
					p->md.path_plus1 = 0; /* no template: the encoder */
				else
					assert_int_not_equal(p->md.path_plus1, 0);
				enum drop_reason why = DROP_NONE;
				assert_int_equal(service_proxy_to_node(hc, tab, node("ids1"), p, NOW, &why), port("ids1p"));
				memcpy(use ? b : a, p->data, p->len);
				n[use] = p->len;
				free(p);
			}
			assert_int_equal(n[0], n[1]);
			assert_memory_equal(a, b, n[0]);
		}
}

/* What an NSH node does: SI - dec, swap MACs. */
static void nsh_reflect(uint8_t *fr, uint8_t dec)
{
	uint8_t tmp[6];
	fr[14 + 7] = (uint8_t)(fr[14 + 7] - dec);
	memcpy(tmp, fr, 6);
	memcpy(fr, fr + 6, 6);
	memcpy(fr + 6, tmp, 6);
}

/* Frame fr (n bytes), sent to nsh node `name`, comes back with SI - 1 at
 * time now: it recovers want. */
static void nsh_back_ok(const char *name, uint8_t *fr, uint32_t n, uint64_t now, const struct sp_meta *want)
{
	nsh_reflect(fr, 1);
	struct pkt *p = rx(fr, n, node_port(name));
	enum drop_reason why = DROP_NONE;
	assert_int_equal(service_proxy_from_node(hc, tab, node(name), p, now, &why), SPX_OK);
	md_equal(&p->md, want);
	free(p);
}

static void test_nsh_return_ok(void **state)
{
	(void)state;
	uint8_t f[256], out[512];
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 40001, 80, 100);
	struct sp_meta md;
	uint32_t n = nsh_to_node(f, len, path_via("c_nsh", "ids1"), out, &md);
	nsh_reflect(out, 1);
	struct pkt *p = rx(out, n, port("ids1p"));
	enum drop_reason why = DROP_NONE;
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW + 1000, &why), SPX_OK);
	md_equal(&p->md, &md);
	assert_true(p->flags & PKT_F_HAS_MD);
	assert_int_equal(p->key.vni, 100);
	/* the NSH is gone: the guest frame as sent, parsed */
	assert_int_equal(p->len, len);
	assert_memory_equal(p->data, f, len);
	assert_int_equal(p->key.sport, 40001);
	assert_int_equal(p->key.dport, 80);
	free(p);
	/* a node that does not decrement the SI is tolerated */
	n = nsh_to_node(f, len, path_via("c_nsh", "ids1"), out, &md);
	nsh_reflect(out, 0);
	p = rx(out, n, port("ids1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW + 2000, &why), SPX_OK);
	md_equal(&p->md, &md);
	free(p);
}

static void test_nsh_return_bad(void **state)
{
	(void)state;
	uint8_t f[256], out[512], fr[512];
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 40002, 80, 10);
	const struct path *path = path_via("c_nsh", "ids1");
	struct sp_meta md;
	uint32_t n = nsh_to_node(f, len, path, out, &md);
	enum drop_reason why;
	struct pkt *p;

	/* another SPI (the path of another chain through the same node) */
	memcpy(fr, out, n);
	nsh_reflect(fr, 1);
	wr24(fr + 14 + 4, path_via("c_tap", "ids1")->spi_fwd);
	p = rx(fr, n, port("ids1p"));
	why = DROP_NONE;
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_BAD_SPI);
	free(p);
	/* the reverse SPI of the same path */
	memcpy(fr, out, n);
	nsh_reflect(fr, 1);
	wr24(fr + 14 + 4, path->spi_rev);
	p = rx(fr, n, port("ids1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_BAD_SPI);
	free(p);
	/* SI down by 2 */
	memcpy(fr, out, n);
	nsh_reflect(fr, 2);
	p = rx(fr, n, port("ids1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_BAD_SI);
	free(p);
	/* SI up by 1 (wraps to 0) */
	memcpy(fr, out, n);
	nsh_reflect(fr, 255);
	p = rx(fr, n, port("ids1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_BAD_SI);
	free(p);
	/* the inner frame alone: not NSH */
	p = rx(f, len, port("ids1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_NOT_NSH);
	free(p);
	/* shorter than Ethernet */
	p = rx(f, 10, port("ids1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_NOT_NSH);
	free(p);
	/* truncated NSH */
	p = rx(out, 14 + 6, port("ids1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW, &why), SPX_DROP);
	assert_int_not_equal(why, DROP_NONE);
	free(p);
	/* a valid return, but to the other node: it never saw this flow */
	memcpy(fr, out, n);
	nsh_reflect(fr, 1);
	p = rx(fr, n, port("ids2p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids2"), p, NOW, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_NO_FLOW);
	free(p);
	/* the right node, a flow it never saw (neither endpoint known: a
	 * shared endpoint alone would be taken for a NAT rewrite) */
	uint8_t g[256];
	uint32_t glen = build_tcp(g, MAC2, MAC1, 1, 3, 40003, 81, 10);
	memcpy(fr, out, 14 + n - len);
	memcpy(fr + 14 + n - len - 14, g, glen);
	nsh_reflect(fr, 1);
	p = rx(fr, n - len + glen, port("ids1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_NO_FLOW);
	free(p);
	/* and the correct return still passes after all that */
	memcpy(fr, out, n);
	nsh_reflect(fr, 1);
	p = rx(fr, n, port("ids1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW, &why), SPX_OK);
	md_equal(&p->md, &md);
	free(p);
}

/* BUG (reported): one 5-tuple on two paths through the same nsh node at
 * once (a `redirect` and a `copy` rule, or two tenants with overlapping
 * addresses). The node returns each with its own SPI, but the table keeps
 * only the later metadata per 5-tuple, so the first is dropped as
 * DROP_SN_BAD_SPI although the node did nothing wrong. */
static void test_nsh_same_tuple_two_paths(void **state)
{
	(void)state;
	uint8_t f[256], a[512], b[512];
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 40004, 80, 10);
	struct sp_meta ma, mb;
	uint32_t na = nsh_to_node(f, len, path_via("c_nsh", "ids1"), a, &ma);
	uint32_t nb = nsh_to_node(f, len, path_via("c_tap", "ids1"), b, &mb);
	assert_int_not_equal(ma.spi, mb.spi);
	nsh_reflect(a, 1);
	nsh_reflect(b, 1);
	enum drop_reason why = DROP_NONE;
	struct pkt *p = rx(b, nb, port("ids1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("ids1"), p, NOW, &why), SPX_OK);
	md_equal(&p->md, &mb);
	free(p);
	p = rx(a, na, port("ids1p"));
	enum spx_result r = service_proxy_from_node(hc, tab, node("ids1"), p, NOW, &why);
	struct sp_meta got = p->md;
	free(p);
	if (r != SPX_OK)
		fail_msg("first path's packet dropped: %s", drop_reason_name(why));
	md_equal(&got, &ma);
}

/* One flow at two nodes of one mode, with the same chain and direction:
 * each node's return recovers its own state (the node is part of the key,
 * though a flow's keys at all nodes share a set). */
static void test_nsh_same_flow_two_nodes(void **state)
{
	(void)state;
	uint8_t f[256], a[512], b[512];
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 40005, 80, 10);
	struct sp_meta ma, mb;
	uint32_t na = nsh_to("ids1", f, len, path_via("c_nsh", "ids1"), a, &ma);
	uint32_t nb = nsh_to("ids2", f, len, path_via("c_nsh", "ids2"), b, &mb);
	assert_int_not_equal(ma.spi, mb.spi);
	nsh_back_ok("ids1", a, na, NOW, &ma);
	nsh_back_ok("ids2", b, nb, NOW, &mb);
}

/* ---- l2 ---- */

static void l2_case(bool reverse)
{
	uint8_t f[256];
	/* forward vm1 -> vm2; the reverse direction is the reply vm2 -> vm1 */
	uint32_t len = reverse ? build_tcp(f, MAC1, MAC2, 2, 1, 80, 41000, 20)
			       : build_tcp(f, MAC2, MAC1, 1, 2, 41000, 80, 20);
	struct pkt *p = guest_pkt(f, len, reverse ? "vm2" : "vm1", path_via("c_l2", "fw1"), reverse);
	struct sp_meta md = p->md;
	enum drop_reason why = DROP_NONE;
	uint16_t in = port("fw1i"), out = port("fw1o");
	uint16_t sent = service_proxy_to_node(hc, tab, node("fw1"), p, NOW, &why);
	/* forward enters the node at `in`, reverse at `out`; the frame is the guest's */
	assert_int_equal(sent, reverse ? out : in);
	assert_int_equal(p->len, len);
	assert_memory_equal(p->data, f, len);
	free(p);
	/* it comes back on the other side */
	p = rx(f, len, reverse ? in : out);
	assert_int_equal(service_proxy_from_node(hc, tab, node("fw1"), p, NOW + 1, &why), SPX_OK);
	md_equal(&p->md, &md);
	assert_int_equal(p->md.dir, reverse ? SP_DIR_REVERSE : SP_DIR_FORWARD);
	assert_int_equal(p->key.vni, 100);
	free(p);
	/* back on the side it was sent on: dropped */
	p = rx(f, len, sent);
	assert_int_equal(service_proxy_from_node(hc, tab, node("fw1"), p, NOW + 2, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_NO_FLOW);
	free(p);
}

static void test_l2_forward(void **state)
{
	(void)state;
	l2_case(false);
}

static void test_l2_reverse(void **state)
{
	(void)state;
	l2_case(true);
}

static void test_l2_unknown_and_non_ip(void **state)
{
	(void)state;
	uint8_t f[256];
	enum drop_reason why = DROP_NONE;
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 41001, 80, 0);
	struct pkt *p = rx(f, len, port("fw1o"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("fw1"), p, NOW, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_NO_FLOW);
	free(p);
	/* a non-IP frame (ARP) from an l2 node is no flow either */
	uint8_t arp[60] = {0};
	memset(arp, 0xff, 6);
	memcpy(arp + 6, MAC1, 6);
	wr16(arp + 12, ETH_P_ARP);
	wr16(arp + 14, 1), wr16(arp + 16, 0x0800), arp[18] = 6, arp[19] = 4, wr16(arp + 20, 1);
	p = rx(arp, 60, port("fw1o"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("fw1"), p, NOW, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_NO_FLOW);
	free(p);
	/* a malformed frame: the parser's reason */
	p = rx(f, 20, port("fw1o"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("fw1"), p, NOW, &why), SPX_DROP);
	assert_int_equal(why, DROP_IP4_TRUNC);
	free(p);
}

/* ---- l3 ---- */

static void test_l3_arp(void **state)
{
	(void)state;
	const struct mac *spmac = &hc->ps->node_spmac[node("r1")];
	uint8_t f[60] = {0};
	memset(f, 0xff, 6);
	memcpy(f + 6, R1_MAC, 6);
	wr16(f + 12, ETH_P_ARP);
	uint8_t *a = f + 14;
	wr16(a, 1), wr16(a + 2, ETH_P_IPV4), a[4] = 6, a[5] = 4, wr16(a + 6, 1);
	memcpy(a + 8, R1_MAC, 6);
	uint8_t sip[4] = {192, 168, 1, 254}, tip[4] = {192, 168, 1, 2};
	memcpy(a + 14, sip, 4);
	memcpy(a + 24, tip, 4);
	struct pkt *p = rx(f, 60, port("r1p"));
	enum drop_reason why;
	assert_int_equal(service_proxy_from_node(hc, tab, node("r1"), p, NOW, &why), SPX_REPLY);
	assert_int_equal(p->in_port, port("r1p"));
	assert_true(p->len >= 42);
	assert_memory_equal(p->data, R1_MAC, 6);
	assert_memory_equal(p->data + 6, spmac->b, 6);
	assert_int_equal(rd16(p->data + 12), ETH_P_ARP);
	const uint8_t *r = p->data + 14;
	assert_int_equal(rd16(r + 6), 2);             /* reply */
	assert_memory_equal(r + 8, spmac->b, 6);     /* the asked address is at the proxy */
	assert_memory_equal(r + 14, tip, 4);
	assert_memory_equal(r + 18, R1_MAC, 6);
	assert_memory_equal(r + 24, sip, 4);
	free(p);
}

static void test_l3_neighbour_solicit(void **state)
{
	(void)state;
	const struct mac *spmac = &hc->ps->node_spmac[node("r1")];
	uint8_t f[86] = {0};
	const uint8_t dmac[6] = {0x33, 0x33, 0xff, 0, 0, 2};
	memcpy(f, dmac, 6);
	memcpy(f + 6, R1_MAC, 6);
	wr16(f + 12, ETH_P_IPV6);
	uint8_t *ip = f + 14;
	ip[0] = 0x60;
	wr16(ip + 4, 32);
	ip[6] = IPPROTO_ICMPV6;
	ip[7] = 255;
	struct ipaddr src, dst, target;
	assert_true(ipaddr_parse("fd00::fe", &src));
	assert_true(ipaddr_parse("ff02::1:ff00:2", &dst));
	assert_true(ipaddr_parse("fd00::2", &target));
	memcpy(ip + 8, src.b, 16);
	memcpy(ip + 24, dst.b, 16);
	uint8_t *ic = ip + 40;
	ic[0] = 135;
	memcpy(ic + 8, target.b, 16);
	ic[24] = 1; /* source link-layer address option */
	ic[25] = 1;
	memcpy(ic + 26, R1_MAC, 6);
	struct pkt *p = rx(f, sizeof(f), port("r1p"));
	assert_int_equal(wire_parse(p), DROP_NONE);
	assert_true(wire_l4_csum_fill(p));
	memcpy(f, p->data, sizeof(f));
	free(p);
	p = rx(f, sizeof(f), port("r1p"));
	enum drop_reason why;
	assert_int_equal(service_proxy_from_node(hc, tab, node("r1"), p, NOW, &why), SPX_REPLY);
	assert_true(p->len >= 14 + 40 + 32);
	assert_memory_equal(p->data, R1_MAC, 6);
	assert_memory_equal(p->data + 6, spmac->b, 6);
	assert_int_equal(rd16(p->data + 12), ETH_P_IPV6);
	const uint8_t *h = p->data + 14, *na = h + 40;
	assert_int_equal(h[6], IPPROTO_ICMPV6);
	assert_int_equal(h[7], 255);
	assert_memory_equal(h + 8, target.b, 16);
	assert_memory_equal(h + 24, src.b, 16);
	assert_int_equal(na[0], 136);
	assert_true(na[4] & 0x40); /* solicited */
	assert_memory_equal(na + 8, target.b, 16);
	assert_int_equal(na[24], 2); /* target link-layer address: the proxy */
	assert_memory_equal(na + 26, spmac->b, 6);
	/* its ICMPv6 checksum is right */
	uint8_t ph[40];
	memcpy(ph, h + 8, 32);
	wr32(ph + 32, rd16(h + 4));
	memset(ph + 36, 0, 3);
	ph[39] = IPPROTO_ICMPV6;
	assert_int_equal(csum_fold(csum_partial(na, rd16(h + 4), csum_partial(ph, 40, 0))), 0);
	free(p);
}

/* Send f from guest over c_l3 to r1; checks the frame the node gets. */
static void l3_to_node(const uint8_t *f, uint32_t len, const char *guest, bool reverse, struct sp_meta *md)
{
	struct pkt *p = guest_pkt(f, len, guest, path_via("c_l3", "r1"), reverse);
	*md = p->md;
	enum drop_reason why = DROP_NONE;
	assert_int_equal(service_proxy_to_node(hc, tab, node("r1"), p, NOW, &why), port("r1p"));
	/* routed to the node, from the proxy; the IP packet untouched */
	assert_memory_equal(p->data, R1_MAC, 6);
	assert_memory_equal(p->data + 6, hc->ps->node_spmac[node("r1")].b, 6);
	assert_int_equal(p->len, len);
	assert_memory_equal(p->data + 12, f + 12, len - 12);
	free(p);
}

/* What the node sends back: to the proxy, from the node, with src/dst
 * (address last byte, port) rewritten and checksums fixed. */
static uint32_t l3_return(uint8_t *fr, const uint8_t *f, uint32_t len, int sip, int sport, int dip, int dport)
{
	memcpy(fr, f, len);
	memcpy(fr, hc->ps->node_spmac[node("r1")].b, 6);
	memcpy(fr + 6, R1_MAC, 6);
	if (sip >= 0)
		fr[14 + 15] = (uint8_t)sip;
	if (dip >= 0)
		fr[14 + 19] = (uint8_t)dip;
	if (sport >= 0)
		wr16(fr + 34, (uint16_t)sport);
	if (dport >= 0)
		wr16(fr + 36, (uint16_t)dport);
	fr[14 + 8]--; /* routed: TTL - 1 */
	ipv4_set_csum(fr + 14);
	struct pkt *p = rx(fr, len, 0);
	assert_int_equal(wire_parse(p), DROP_NONE);
	assert_true(wire_l4_csum_fill(p));
	memcpy(fr, p->data, len);
	free(p);
	assert_true(tcp4_csum_ok(fr, len));
	return len;
}

static void test_l3_dnat(void **state)
{
	(void)state;
	uint8_t f[256], fr[256];
	/* vm1:42000 -> .2:8080; the node forwards it to .9:80 */
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 42000, 8080, 60);
	struct sp_meta md;
	l3_to_node(f, len, "vm1", false, &md);
	l3_return(fr, f, len, -1, -1, 9, 80);
	assert_memory_not_equal(fr + 14, f + 14, len - 14);
	enum drop_reason why = DROP_NONE;
	uint64_t e0, ev0, m0, e1, ev1, m1;
	spx_table_stats(tab, &e0, &ev0, &m0);
	struct pkt *p = rx(fr, len, port("r1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("r1"), p, NOW + 5, &why), SPX_OK);
	md_equal(&p->md, &md);
	assert_int_equal(p->key.dport, 80);
	assert_int_equal(p->key.sport, 42000);
	assert_int_equal(p->key.vni, 100);
	assert_memory_equal(p->data + 12, fr + 12, len - 12); /* the rewrite is kept */
	free(p);
	/* the rewritten tuple was learned: the next packet is an exact hit */
	spx_table_stats(tab, &e1, &ev1, &m1);
	assert_int_equal(m1, m0);
	assert_int_equal(e1, e0 + 1);
	p = rx(fr, len, port("r1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("r1"), p, NOW + 6, &why), SPX_OK);
	md_equal(&p->md, &md);
	free(p);
	spx_table_stats(tab, &e0, &ev0, &m0);
	assert_int_equal(e0, e1);
	assert_int_equal(m0, m1);
}

static void test_l3_reply_unnat(void **state)
{
	(void)state;
	uint8_t f[256], fr[256];
	/* the reply .2:80 -> vm1:42001 on the reverse path; the node rewrites
	 * its source back to .7:8080, the destination stays */
	uint32_t len = build_tcp(f, MAC1, MAC2, 2, 1, 80, 42001, 30);
	struct sp_meta md;
	l3_to_node(f, len, "vm2", true, &md);
	assert_int_equal(md.dir, SP_DIR_REVERSE);
	l3_return(fr, f, len, 7, 8080, -1, -1);
	enum drop_reason why = DROP_NONE;
	struct pkt *p = rx(fr, len, port("r1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("r1"), p, NOW + 5, &why), SPX_OK);
	md_equal(&p->md, &md);
	assert_int_equal(p->key.sport, 8080);
	assert_int_equal(p->key.dport, 42001);
	free(p);
}

static void test_l3_no_rewrite_and_unknown(void **state)
{
	(void)state;
	uint8_t f[256], fr[256];
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 42002, 443, 0);
	struct sp_meta md;
	l3_to_node(f, len, "vm1", false, &md);
	/* routed without NAT */
	l3_return(fr, f, len, -1, -1, -1, -1);
	enum drop_reason why = DROP_NONE;
	struct pkt *p = rx(fr, len, port("r1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("r1"), p, NOW + 1, &why), SPX_OK);
	md_equal(&p->md, &md);
	free(p);
	/* both endpoints rewritten: nothing to recover by */
	l3_return(fr, f, len, 20, 5000, 21, 6000);
	p = rx(fr, len, port("r1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("r1"), p, NOW + 2, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_NO_FLOW);
	free(p);
	/* a flow the node was never sent */
	uint8_t g[256];
	uint32_t glen = build_tcp(g, MAC2, MAC1, 3, 4, 1111, 2222, 0);
	l3_return(fr, g, glen, -1, -1, -1, -1);
	p = rx(fr, glen, port("r1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("r1"), p, NOW + 3, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_NO_FLOW);
	free(p);
	/* the flow sent to r1 is unknown on another node (per-node state) */
	l3_return(fr, f, len, -1, -1, -1, -1);
	p = rx(fr, len, port("fw1o"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("fw1"), p, NOW + 4, &why), SPX_DROP);
	assert_int_equal(why, DROP_SN_NO_FLOW);
	free(p);
}

/* State older than the table's lifetime is not used. */
static void test_stale_entry(void **state)
{
	(void)state;
	uint8_t f[256], fr[256];
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 42003, 80, 0);
	struct sp_meta md;
	l3_to_node(f, len, "vm1", false, &md);
	l3_return(fr, f, len, -1, -1, -1, -1);
	enum drop_reason why = DROP_NONE;
	struct pkt *p = rx(fr, len, port("r1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("r1"), p, NOW + 3600ull * 1000000000ull, &why),
			 SPX_DROP);
	assert_int_equal(why, DROP_SN_NO_FLOW);
	free(p);
}

static void test_table_create(void **state)
{
	(void)state;
	assert_null(spx_table_create(0));
	assert_null(spx_table_create(32));
	assert_null(spx_table_create(1000));
	struct spx_table *t = spx_table_create(192); /* any multiple of 64 */
	assert_non_null(t);
	spx_table_destroy(t);
	t = spx_table_create(64);
	assert_non_null(t);
	uint64_t e, ev, m;
	spx_table_stats(t, &e, &ev, &m);
	assert_int_equal(e + ev + m, 0);
	spx_table_destroy(t);
	spx_table_destroy(NULL);
}

/* Many flows through one node in a small table: entries get evicted, but
 * never handed to the wrong flow. */
static void test_table_pressure(void **state)
{
	(void)state;
	struct spx_table *small = spx_table_create(64);
	assert_non_null(small);
	struct spx_table *saved = tab;
	tab = small;
	uint8_t f[256], fr[256];
	unsigned ok = 0;
	for (uint16_t i = 0; i < 200; i++) {
		uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, (uint16_t)(10000 + i), 80, 0);
		struct sp_meta md;
		l3_to_node(f, len, "vm1", false, &md);
		l3_return(fr, f, len, -1, -1, -1, -1);
		enum drop_reason why = DROP_NONE;
		struct pkt *p = rx(fr, len, port("r1p"));
		if (service_proxy_from_node(hc, tab, node("r1"), p, NOW + i, &why) == SPX_OK) {
			md_equal(&p->md, &md);
			assert_int_equal(p->key.sport, 10000 + i);
			ok++;
		}
		free(p);
	}
	assert_int_equal(ok, 200); /* each returned right after it was sent */
	uint64_t e, ev, m;
	spx_table_stats(tab, &e, &ev, &m);
	assert_true(ev > 0);
	assert_true(e <= 64);
	tab = saved;
	spx_table_destroy(small);
}

/* BUG (reported): a service shared by two tenants (one l3 NAT node), one
 * flow of each to the same server endpoint. The node source-NATs the first
 * tenant's packet; recovery by the destination endpoint finds whichever
 * tenant was recorded last and moves the packet into the other tenant's
 * network (SPEC 12: a node cannot move a packet to another tenant). It must
 * be recovered with its own network, or dropped. */
static void test_l3_snat_shared_endpoint_other_tenant(void **state)
{
	(void)state;
	uint8_t fa[256], fb[256], fr[256];
	const uint8_t MAC3[6] = {2, 0, 0, 0, 1, 3};
	uint32_t la = build_tcp(fa, MAC2, MAC1, 1, 50, 43000, 80, 0);
	uint32_t lb = build_tcp(fb, MAC2, MAC3, 3, 50, 43001, 80, 0);
	struct sp_meta ma, mb;
	l3_to_node(fa, la, "vm1", false, &ma);
	l3_to_node(fb, lb, "vm3", false, &mb);
	assert_int_equal(ma.vni, 100);
	assert_int_equal(mb.vni, 200);
	l3_return(fr, fa, la, 60, 20000, -1, -1);
	enum drop_reason why = DROP_NONE;
	struct pkt *p = rx(fr, la, port("r1p"));
	enum spx_result r = service_proxy_from_node(hc, tab, node("r1"), p, NOW + 1, &why);
	struct sp_meta got = p->md;
	free(p);
	if (r == SPX_OK && got.vni != 100)
		fail_msg("blue tenant's packet recovered into network vni %u (guest port %u)", got.vni, got.guest_port);
}

/* vm1's flow with destination MAC ...:09:d (its context: guest, MACs,
 * return address) and source port sport sent to r1 at time now. */
static uint16_t ctx_flow_to_r1(uint8_t d, uint16_t sport, uint64_t now, enum drop_reason *why, uint8_t *f,
			       uint32_t *len)
{
	const uint8_t dmac[6] = {2, 0, 0, 0, 9, d};
	*len = build_tcp(f, dmac, MAC1, 1, 2, sport, 80, 0);
	struct pkt *p = guest_pkt(f, *len, "vm1", path_via("c_l3", "r1"), false);
	*why = DROP_NONE;
	uint16_t out = service_proxy_to_node(hc, tab, node("r1"), p, now, why);
	free(p);
	return out;
}

/* Its return from r1 (unchanged) at time now; SPX_OK fills md. */
static enum spx_result ctx_flow_back(const uint8_t *f, uint32_t len, uint64_t now, struct sp_meta *md)
{
	uint8_t fr[256];
	l3_return(fr, f, len, -1, -1, -1, -1);
	struct pkt *p = rx(fr, len, port("r1p"));
	enum drop_reason why = DROP_NONE;
	enum spx_result r = service_proxy_from_node(hc, tab, node("r1"), p, now, &why);
	if (r == SPX_OK)
		*md = p->md;
	else
		assert_int_equal(why, DROP_SN_NO_FLOW);
	free(p);
	return r;
}

/* The flows' contexts (guest, MACs, return address) are kept once per
 * table. A flow of a new context finds no room while every slot its
 * context may take is live: it is dropped before the node (counted), and
 * no context in use is written over; one unused for the table's lifetime
 * is taken over. */
static void test_context_table(void **state)
{
	(void)state;
	struct spx_table *saved = tab;
	tab = spx_table_create(64); /* room for four contexts */
	assert_non_null(tab);
	uint8_t f[5][256];
	uint32_t len[5];
	enum drop_reason why;
	for (uint8_t d = 0; d < 4; d++)
		assert_int_equal(ctx_flow_to_r1(d, (uint16_t)(30000 + d), NOW, &why, f[d], &len[d]), port("r1p"));
	/* a fifth context: no room */
	assert_int_equal(ctx_flow_to_r1(4, 30004, NOW + 1, &why, f[4], &len[4]), PORT_NONE);
	assert_int_equal(why, DROP_SN_STATE_FULL);
	/* another flow of a known context fits */
	uint8_t g[256];
	uint32_t glen;
	assert_int_equal(ctx_flow_to_r1(0, 30100, NOW + 2, &why, g, &glen), port("r1p"));
	/* every flow recovers its own metadata */
	struct sp_meta md;
	for (uint8_t d = 0; d < 4; d++) {
		assert_int_equal(ctx_flow_back(f[d], len[d], NOW + 200ull * 1000000000ull, &md), SPX_OK);
		assert_int_equal(md.orig_dst.b[5], d);
		assert_int_equal(md.guest_port, hc->guest_port[topology_guest_index(hc->topo, "vm1")]);
	}
	/* flow 0 stays in use; the others' contexts go stale */
	assert_int_equal(ctx_flow_back(f[0], len[0], NOW + 400ull * 1000000000ull, &md), SPX_OK);
	uint64_t later = NOW + 520ull * 1000000000ull;
	assert_int_equal(ctx_flow_to_r1(4, 30004, later, &why, f[4], &len[4]), port("r1p"));
	assert_int_equal(ctx_flow_back(f[4], len[4], later, &md), SPX_OK);
	assert_int_equal(md.orig_dst.b[5], 4);
	assert_int_equal(ctx_flow_back(f[0], len[0], later, &md), SPX_OK);
	assert_int_equal(md.orig_dst.b[5], 0);
	spx_table_destroy(tab);
	tab = saved;
}

/* One flow's state at six nodes and chains of this host (more than a set
 * holds: a flow's keys at all nodes share a set, and its partner takes
 * the rest): every return recovers its own. (A table large enough that
 * the flow's endpoint keys do not land in the same pair of sets.) */
static void test_one_flow_many_hops(void **state)
{
	(void)state;
	struct spx_table *saved = tab;
	tab = spx_table_create(1u << 16);
	assert_non_null(tab);
	uint8_t f[256], out[4][512], fr[256];
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 40006, 80, 10);
	const char *nodes[4] = {"ids1", "ids1", "ids2", "ids2"}, *chains[4] = {"c_nsh", "c_tap", "c_nsh", "c_tap"};
	struct sp_meta md[4], ml2, ml3;
	uint32_t n[4];
	for (int i = 0; i < 4; i++)
		n[i] = nsh_to(nodes[i], f, len, path_via(chains[i], nodes[i]), out[i], &md[i]);
	struct pkt *p = guest_pkt(f, len, "vm1", path_via("c_l2", "fw1"), false);
	ml2 = p->md;
	enum drop_reason why = DROP_NONE;
	assert_int_equal(service_proxy_to_node(hc, tab, node("fw1"), p, NOW, &why), port("fw1i"));
	free(p);
	l3_to_node(f, len, "vm1", false, &ml3);
	for (int i = 0; i < 4; i++)
		nsh_back_ok(nodes[i], out[i], n[i], NOW + 1, &md[i]);
	p = rx(f, len, port("fw1o"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("fw1"), p, NOW + 1, &why), SPX_OK);
	md_equal(&p->md, &ml2);
	free(p);
	l3_return(fr, f, len, -1, -1, -1, -1);
	p = rx(fr, len, port("r1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("r1"), p, NOW + 1, &why), SPX_OK);
	md_equal(&p->md, &ml3);
	free(p);
	uint64_t e, ev, m;
	spx_table_stats(tab, &e, &ev, &m);
	assert_int_equal(ev, 0);
	spx_table_destroy(tab);
	tab = saved;
}

/* The nsh node of key i (0..7) of a tuple: two nodes, two chains, both
 * directions. */
static const char *const NSH8_NODES[2] = {"ids1", "ids2"};

/* Write vm1's state for tuple f at its eight nsh keys (NSH8_NODES) at time
 * now; out, n and md (when not NULL) receive each frame sent to the node
 * and its metadata. */
static void nsh_eight_keys(const uint8_t *f, uint32_t len, uint64_t now, uint8_t (*out)[512], uint32_t *n,
			   struct sp_meta *md)
{
	const char *chains[2] = {"c_nsh", "c_tap"};
	for (int i = 0; i < 8; i++) {
		const char *nm = NSH8_NODES[i & 1];
		struct pkt *p = guest_pkt(f, len, "vm1", path_via(chains[(i >> 1) & 1], nm), i >> 2);
		enum drop_reason why = DROP_NONE;
		if (md)
			md[i] = p->md;
		assert_int_equal(service_proxy_to_node(hc, tab, node(nm), p, now, &why), node_port(nm));
		if (out) {
			memcpy(out[i], p->data, p->len);
			n[i] = p->len;
		}
		free(p);
	}
}

/* A pair of sets full of one tuple's live state (nine keys: r1's, and two
 * nsh nodes' on two chains both ways) spills into the place's other pair:
 * nothing is pushed out, and every return recovers its own state. (A
 * table large enough that the endpoint keys land elsewhere.) */
static void test_full_pair_spills(void **state)
{
	(void)state;
	struct spx_table *saved = tab;
	tab = spx_table_create(1u << 16);
	assert_non_null(tab);
	uint8_t f[256], out[8][512];
	uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, 48000, 80, 0), n[8];
	struct sp_meta m3, md[8];
	l3_to_node(f, len, "vm1", false, &m3);
	nsh_eight_keys(f, len, NOW, out, n, md);
	for (int i = 0; i < 8; i++)
		nsh_back_ok(NSH8_NODES[i & 1], out[i], n[i], NOW + 1, &md[i]);
	struct sp_meta got;
	assert_int_equal(ctx_flow_back(f, len, NOW + 1, &got), SPX_OK);
	md_equal(&got, &m3);
	uint64_t e, ev, m;
	spx_table_stats(tab, &e, &ev, &m);
	assert_int_equal(ev, 0);
	assert_int_equal(m, 0);
	spx_table_destroy(tab);
	tab = saved;
}

/* A table under pressure (a flow at an nsh node keeps three keys: its
 * exact key and two endpoint keys for NAT; here 1.2 keys per entry): the
 * endpoint keys, needed only until a rewritten tuple is learnt, give way,
 * and the flows' exact keys (0.4 per entry) stay: every flow recovers. */
static void test_pressure_keeps_exact_keys(void **state)
{
	(void)state;
	enum { FLOWS = 400 }; /* in the test's table of 1024 entries */
	uint8_t (*out)[512] = malloc(FLOWS * sizeof(*out));
	uint32_t *n = malloc(FLOWS * sizeof(*n));
	struct sp_meta *md = malloc(FLOWS * sizeof(*md));
	assert_non_null(out), assert_non_null(n), assert_non_null(md);
	const struct path *path = path_via("c_nsh", "ids1");
	/* two flows a second: the first ones' keys are used longest ago */
	for (uint16_t i = 0; i < FLOWS; i++) {
		uint8_t f[256];
		uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, (uint16_t)(20000 + i), 80, 0);
		struct pkt *p = guest_pkt(f, len, "vm1", path, false);
		md[i] = p->md;
		enum drop_reason why = DROP_NONE;
		assert_int_equal(service_proxy_to_node(hc, tab, node("ids1"), p, NOW + i / 2 * 1000000000ull, &why),
				 port("ids1p"));
		memcpy(out[i], p->data, p->len);
		n[i] = p->len;
		free(p);
	}
	unsigned ok = 0;
	for (uint16_t i = 0; i < FLOWS; i++) {
		nsh_reflect(out[i], 1);
		struct pkt *p = rx(out[i], n[i], port("ids1p"));
		enum drop_reason why = DROP_NONE;
		if (service_proxy_from_node(hc, tab, node("ids1"), p, NOW + (FLOWS / 2 + 1) * 1000000000ull, &why) ==
		    SPX_OK) {
			md_equal(&p->md, &md[i]);
			ok++;
		}
		free(p);
	}
	assert_int_equal(ok, FLOWS);
	free(out), free(n), free(md);
}

/* Endpoint keys give way to exact keys but are not lost while there is
 * room: a routed node's flows (three keys each, 0.6 per entry, many sets
 * full), each returned DNAT-rewritten, all recover by their source. */
static void test_pressure_nat_recovers(void **state)
{
	(void)state;
	enum { FLOWS = 150 }; /* in the test's table of 1024 entries */
	struct sp_meta *md = malloc(FLOWS * sizeof(*md));
	assert_non_null(md);
	uint8_t f[256], fr[256];
	for (uint16_t i = 0; i < FLOWS; i++) {
		uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, (uint16_t)(21000 + i), 8080, 0);
		l3_to_node(f, len, "vm1", false, &md[i]);
	}
	unsigned ok = 0;
	for (uint16_t i = 0; i < FLOWS; i++) {
		uint32_t len = build_tcp(f, MAC2, MAC1, 1, 2, (uint16_t)(21000 + i), 8080, 0);
		l3_return(fr, f, len, -1, -1, 9, 80);
		struct pkt *p = rx(fr, len, port("r1p"));
		enum drop_reason why = DROP_NONE;
		if (service_proxy_from_node(hc, tab, node("r1"), p, NOW + 1, &why) == SPX_OK) {
			md_equal(&p->md, &md[i]);
			assert_int_equal(p->key.sport, 21000 + i);
			ok++;
		}
		free(p);
	}
	assert_int_equal(ok, FLOWS);
	free(md);
}

/* Write vm1's state for tuple f at eight nsh keys (two nodes, two chains,
 * both directions) at time now: with its key at r1, written earlier, they
 * are more than the tuple's pair of sets holds, and with the pair they
 * spill into filled first (other tuples' state at ids1, written at time
 * now), r1's goes. */
static void push_out_r1_key(const uint8_t *f, uint32_t len, uint64_t now)
{
	uint64_t e0, ev0, m0, e1, ev1, m1;
	uint32_t pair, spill, filled = 0;
	struct pkt *t = rx(f, len, 0);
	assert_int_equal(wire_parse(t), DROP_NONE);
	spx_table_pairs(tab, flow_tuple_hash(&t->key), &pair, &spill);
	free(t);
	for (uint16_t sport = 30000; filled < 8 && sport < 60000; sport++) {
		uint8_t g[256];
		uint32_t glen = build_tcp(g, MAC2, MAC1, 1, 2, sport, 80, 0);
		struct pkt *p = guest_pkt(g, glen, "vm1", path_via("c_nsh", "ids1"), false);
		uint32_t its, other;
		spx_table_pairs(tab, flow_tuple_hash(&p->key), &its, &other);
		enum drop_reason why = DROP_NONE;
		if (its == spill) {
			assert_int_equal(service_proxy_to_node(hc, tab, node("ids1"), p, now, &why), port("ids1p"));
			filled++;
		}
		free(p);
	}
	assert_int_equal(filled, 8);
	spx_table_stats(tab, &e0, &ev0, &m0);
	nsh_eight_keys(f, len, now, NULL, NULL, NULL);
	spx_table_stats(tab, &e1, &ev1, &m1);
	assert_true(ev1 > ev0);
}

/* SPEC 12: a packet never comes back into another tenant's network. vm1's
 * flow is at r1 when its state there is pushed out (the same tuple's state
 * at eight nsh keys, a second later, fills its pair of sets); vm3, in
 * another network, then sends the same tuple to r1. It is refused while a
 * packet of vm1's may still be at the node (SPX_INFLIGHT_S, 10 s), and the
 * packet coming back is never recovered into vm3's network. */
static void test_pushed_out_key_other_tenant(void **state)
{
	(void)state;
	const uint64_t S = 1000000000ull;
	const uint8_t MAC3[6] = {2, 0, 0, 0, 1, 3};
	uint8_t fa[256], fb[256], fr[256];
	uint32_t la = build_tcp(fa, MAC2, MAC1, 1, 2, 46000, 80, 0);
	struct sp_meta ma;
	l3_to_node(fa, la, "vm1", false, &ma);
	push_out_r1_key(fa, la, NOW + S);
	enum drop_reason why = DROP_NONE;
	/* vm3's flow of the same tuple: refused for now */
	uint32_t lb = build_tcp(fb, MAC2, MAC3, 1, 2, 46000, 80, 0);
	struct pkt *p = guest_pkt(fb, lb, "vm3", path_via("c_l3", "r1"), false);
	assert_int_equal(service_proxy_to_node(hc, tab, node("r1"), p, NOW + 2 * S, &why), PORT_NONE);
	assert_int_equal(why, DROP_SN_KEY_CONFLICT);
	free(p);
	/* vm1's packet back from r1: its own state (by an endpoint key) or none */
	l3_return(fr, fa, la, -1, -1, -1, -1);
	p = rx(fr, la, port("r1p"));
	if (service_proxy_from_node(hc, tab, node("r1"), p, NOW + 2 * S, &why) == SPX_OK)
		md_equal(&p->md, &ma);
	free(p);
	/* vm1 itself may write the key again at once */
	p = guest_pkt(fa, la, "vm1", path_via("c_l3", "r1"), false);
	assert_int_equal(service_proxy_to_node(hc, tab, node("r1"), p, NOW + 2 * S, &why), port("r1p"));
	free(p);
	p = rx(fr, la, port("r1p"));
	assert_int_equal(service_proxy_from_node(hc, tab, node("r1"), p, NOW + 2 * S, &why), SPX_OK);
	md_equal(&p->md, &ma);
	free(p);
	/* once no packet of vm1's can be at the node, vm3's flow goes */
	p = guest_pkt(fb, lb, "vm3", path_via("c_l3", "r1"), false);
	assert_int_equal(service_proxy_to_node(hc, tab, node("r1"), p, NOW + 13 * S, &why), port("r1p"));
	free(p);
}

/* A key two tenants wrote (ambiguous: it recovers nothing) and then pushed
 * out: a packet of either may still be at the node, so for SPX_INFLIGHT_S
 * neither may write it again, not even the one that wrote it last. */
static void test_pushed_out_shared_key(void **state)
{
	(void)state;
	const uint64_t S = 1000000000ull;
	const uint8_t MAC3[6] = {2, 0, 0, 0, 1, 3};
	uint8_t fa[256], fb[256];
	uint32_t la = build_tcp(fa, MAC2, MAC1, 1, 2, 47000, 80, 0);
	uint32_t lb = build_tcp(fb, MAC2, MAC3, 1, 2, 47000, 80, 0);
	struct sp_meta ma, mb;
	l3_to_node(fa, la, "vm1", false, &ma);
	l3_to_node(fb, lb, "vm3", false, &mb);
	push_out_r1_key(fa, la, NOW + S);
	enum drop_reason why = DROP_NONE;
	struct pkt *p = guest_pkt(fb, lb, "vm3", path_via("c_l3", "r1"), false);
	assert_int_equal(service_proxy_to_node(hc, tab, node("r1"), p, NOW + 2 * S, &why), PORT_NONE);
	assert_int_equal(why, DROP_SN_KEY_CONFLICT);
	free(p);
	p = guest_pkt(fb, lb, "vm3", path_via("c_l3", "r1"), false);
	assert_int_equal(service_proxy_to_node(hc, tab, node("r1"), p, NOW + 13 * S, &why), port("r1p"));
	free(p);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tab_new, tab_free)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_nsh_to_node_format),
		T(test_nsh_template_matches_encoder),
		T(test_nsh_return_ok),
		T(test_nsh_return_bad),
		T(test_l2_forward),
		T(test_l2_reverse),
		T(test_l2_unknown_and_non_ip),
		T(test_l3_arp),
		T(test_l3_neighbour_solicit),
		T(test_l3_dnat),
		T(test_l3_reply_unnat),
		T(test_l3_no_rewrite_and_unknown),
		T(test_stale_entry),
		T(test_table_create),
		T(test_table_pressure),
		T(test_nsh_same_tuple_two_paths),
		T(test_l3_snat_shared_endpoint_other_tenant),
		T(test_context_table),
		T(test_nsh_same_flow_two_nodes),
		T(test_one_flow_many_hops),
		T(test_full_pair_spills),
		T(test_pressure_keeps_exact_keys),
		T(test_pressure_nat_recovers),
		T(test_pushed_out_key_other_tenant),
		T(test_pushed_out_shared_key),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
