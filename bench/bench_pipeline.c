/* bench_pipeline - the in-memory pipeline benchmark of issue 2: the whole
 * datapath of one host (parse, classify, connection table, port proxy,
 * service plane, service proxies, guest plane), with service nodes emulated
 * by in-memory reflectors. No system call in the timed loop.
 *
 *   build/bench/bench_pipeline [--smoke]
 *
 * Prints Mpps and ns/packet (guest packets in, each one crossing every hop)
 * for guest-to-guest switching, a 2-hop chain on established flows, and
 * new-flow setup, each with 1, 10k and 1M distinct flows; then the same
 * 2-hop chain with its nodes on two other hosts (Geneve encapsulation and
 * decapsulation per hop), each host's share timed on its own; then new and
 * established flows with 10,000 rules at the guest (--only rules).
 * --workers N: the chain on N worker threads with the steering of detourd. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memhost.h"
#include "steer.h"
#include "wire.h"

static const char *TOPO =
	"service_plane: { vni: 4000 }\n"
	"hosts: [ { name: h1, vtep: 10.0.0.1 } ]\n"
	"networks: [ { name: blue, vni: 100 } ]\n"
	"guests:\n"
	"  - { name: vm1, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:01\", ip: 10.1.0.1/16 }\n"
	"  - { name: vm2, host: h1, network: blue, port: vm2p, mac: \"02:00:00:00:01:02\", ip: 10.1.0.2/16 }\n"
	"services:\n"
	"  - { name: fw, mode: l2, nodes: [ { name: fw1, host: h1, ports: [fw1i, fw1o] } ] }\n"
	"  - { name: ids, mode: nsh, nodes: [ { name: ids1, host: h1, ports: [ids1p], mac: \"02:00:00:00:aa:01\" } ] }\n"
	"chains: [ { name: c2, services: [fw, ids] } ]\n"
	"rules:\n"
	"  - { name: web, applied_to: [vm1], direction: egress, match: { proto: tcp, dst_port: 80 }, action: redirect, chain: c2 }\n";

static const char *TOPO3 =
	"service_plane: { vni: 4000 }\n"
	"hosts: [ { name: h1, vtep: 10.0.0.1 }, { name: h2, vtep: 10.0.0.2 }, { name: h3, vtep: 10.0.0.3 } ]\n"
	"networks: [ { name: blue, vni: 100 } ]\n"
	"guests:\n"
	"  - { name: vm1, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:01\", ip: 10.1.0.1/16 }\n"
	"  - { name: vm2, host: h1, network: blue, port: vm2p, mac: \"02:00:00:00:01:02\", ip: 10.1.0.2/16 }\n"
	"services:\n"
	"  - { name: fw, mode: l2, nodes: [ { name: fw1, host: h2, ports: [fw1i, fw1o] } ] }\n"
	"  - { name: ids, mode: nsh, nodes: [ { name: ids1, host: h3, ports: [ids1p], mac: \"02:00:00:00:aa:01\" } ] }\n"
	"chains: [ { name: c2, services: [fw, ids] } ]\n"
	"rules:\n"
	"  - { name: web, applied_to: [vm1], direction: egress, match: { proto: tcp, dst_port: 80 }, action: redirect, chain: c2 }\n";

#define FRAME_LEN 64

static uint64_t now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* n TCP frames vm1 -> vm2, flow i differing by source address and port. */
static uint8_t *make_frames(uint32_t n, uint16_t dport, uint8_t flags)
{
	uint8_t *buf = malloc((size_t)n * FRAME_LEN);
	if (!buf)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *f = buf + (size_t)i * FRAME_LEN;
		memset(f, 0, FRAME_LEN);
		const uint8_t d[6] = {2, 0, 0, 0, 1, 2}, s[6] = {2, 0, 0, 0, 1, 1};
		memcpy(f, d, 6);
		memcpy(f + 6, s, 6);
		wr16(f + 12, ETH_P_IPV4);
		uint8_t *ip = f + 14;
		ip[0] = 0x45;
		wr16(ip + 2, 40);
		ip[8] = 64;
		ip[9] = IPPROTO_TCP;
		ip[12] = 10, ip[13] = 1, ip[14] = (uint8_t)(1 + (i >> 16)), ip[15] = (uint8_t)(i >> 8);
		ip[16] = 10, ip[17] = 1, ip[18] = 0, ip[19] = 2;
		ipv4_set_csum(ip);
		uint8_t *tcp = ip + 20;
		wr16(tcp, (uint16_t)(1024 + (i & 0xff) * 97 % 60000));
		wr16(tcp + 2, dport);
		tcp[12] = 5 << 4;
		tcp[13] = flags;
		wr16(tcp + 14, 1000);
	}
	return buf;
}

static bool want(const char *only, const char *name) { return !only || !strcmp(only, name); }

struct result {
	double mpps, ns;
};

/* Send `total` packets cycling over n flows' frames; returns the rate. */
static struct result run(struct memhost *m, uint16_t port, const uint8_t *frames, uint32_t n, uint64_t total)
{
	const uint8_t *fr[BATCH_MAX];
	uint32_t ln[BATCH_MAX];
	for (int i = 0; i < BATCH_MAX; i++)
		ln[i] = FRAME_LEN - 4;
	uint64_t t0 = now(), sent = 0;
	uint32_t next = 0;
	while (sent < total) {
		for (int i = 0; i < BATCH_MAX; i++) {
			fr[i] = frames + (size_t)next * FRAME_LEN;
			if (++next == n)
				next = 0;
		}
		memhost_rx(m, port, fr, ln, BATCH_MAX);
		while (memhost_poll(m)) /* with workers: what the others handed over, all of it */
			;
		sent += BATCH_MAX;
	}
	uint64_t dt = now() - t0;
	return (struct result){(double)sent / ((double)dt / 1e3), (double)dt / (double)sent};
}

/* TOPO with n more rules at vm1's egress, of higher priority than `web`
 * and matching none of the benchmark's flows: /16, /24 and /32
 * destinations, exact ports and ranges, so that the classifier holds
 * several tuples and has to look through them before it finds `web`.
 * near: the destinations are in the flows' own /16 (10.1.0.0/16, every
 * /24 rule in it and the /16 ones contain vm2's address), so that the
 * classifier's prefix filters cannot skip those tuples: only the ports
 * tell the rules apart. */
static char *topo_with_rules(uint32_t n, bool near)
{
	size_t room = strlen(TOPO) + (size_t)n * 200 + 1;
	char *y = malloc(room);
	if (!y)
		return NULL;
	size_t off = (size_t)snprintf(y, room, "%s", TOPO);
	for (uint32_t i = 0; i < n && off < room; i++) {
		static const char *const pfx[] = {"32", "24", "16"};
		char port[24];
		if (i % 4 == 3)
			snprintf(port, sizeof(port), "\"%u-%u\"", 1000 + i % 5000, 1010 + i % 5000);
		else
			snprintf(port, sizeof(port), "%u", 81 + i % 30000);
		unsigned b = near ? 1 : 2 + i / 65536 % 200, c = near ? i % 3 == 1 ? 0 : 1 + i / 3 % 250 : i / 256 % 256;
		off += (size_t)snprintf(y + off, room - off,
					"  - { name: r%u, applied_to: [vm1], direction: egress, priority: %u, "
					"match: { proto: tcp, dst: 10.%u.%u.%u/%s, dst_port: %s }, action: redirect, chain: c2 }\n",
					i, 200 + i % 100, b, c, near ? i % 250 : 0, pfx[i % 3], port);
	}
	return y;
}

/* New flows and established flows through the chain with n_rules rules. */
static int run_rules(uint32_t n_rules, bool near, uint32_t flows, uint64_t total)
{
	char *y = topo_with_rules(n_rules, near);
	struct memhost *m = y ? memhost_create(y, "h1", flows < (1u << 17) ? 1u << 18 : 2 * flows) : NULL;
	uint8_t *web = make_frames(flows, 80, 0x10), *syn = make_frames(flows, 80, 0x02);
	if (!m || !web || !syn) {
		free(y), free(web), free(syn);
		memhost_destroy(m);
		return 1;
	}
	memhost_keep_frames(m, false);
	uint16_t p1 = hostcfg_port_by_ifname(memhost_cfg(m), "vm1p");
	char name[64];
	struct result nf = run(m, p1, syn, flows, flows < BATCH_MAX ? BATCH_MAX : flows - flows % BATCH_MAX);
	snprintf(name, sizeof(name), "new-flow setup, %u rules%s", n_rules, near ? " near" : "");
	printf("%-34s %10u %10.2f %12.1f\n", name, flows, nf.mpps, nf.ns);
	struct result ch = run(m, p1, web, flows, total);
	snprintf(name, sizeof(name), "chain established, %u rules%s", n_rules, near ? " near" : "");
	printf("%-34s %10u %10.2f %12.1f\n", name, flows, ch.mpps, ch.ns);
	const struct flowcache *fc = &memhost_dp(m)->fc;
	printf("%-34s %10s %10.1f%%\n", "  flow cache hits", "", 100.0 * (double)fc->hits / (double)(fc->hits + fc->misses + 1));
	free(y), free(web), free(syn);
	memhost_destroy(m);
	return 0;
}

/* The 2-hop chain with its nodes on two other hosts: h1 classifies and
 * encapsulates, h2 and h3 decapsulate, run their node and encapsulate, h1
 * decapsulates and delivers. Each host's share is timed on its own. */
static int run_distributed(uint32_t n, uint64_t total)
{
	struct memhost *h[3];
	const char *names[3] = {"h1", "h2", "h3"};
	for (int i = 0; i < 3; i++) {
		h[i] = memhost_create(TOPO3, names[i], n < 4096 ? 8192 : 2 * n);
		if (!h[i])
			return 1;
		memhost_keep_frames(h[i], false);
	}
	uint16_t p1 = hostcfg_port_by_ifname(memhost_cfg(h[0]), "vm1p"), p2 = hostcfg_port_by_ifname(memhost_cfg(h[0]), "vm2p");
	uint8_t *web = make_frames(n, 80, 0x10);
	if (!web)
		return 1;
	uint64_t ns[3] = {0, 0, 0}, sent = 0;
	uint32_t next = 0;
	const uint8_t *fr[BATCH_MAX], *pl[BATCH_MAX];
	uint32_t ln[BATCH_MAX], pln[BATCH_MAX];
	struct ipaddr dst[BATCH_MAX];
	for (int i = 0; i < BATCH_MAX; i++)
		ln[i] = FRAME_LEN - 4;
	for (int pass = 0; pass < 2; pass++) { /* pass 0 sets the flows up, untimed */
		uint64_t want = pass ? total : n, done = 0;
		while (done < want) {
			for (int i = 0; i < BATCH_MAX; i++) {
				fr[i] = web + (size_t)next * FRAME_LEN;
				if (++next == n)
					next = 0;
			}
			uint64_t t0 = now();
			memhost_rx(h[0], p1, fr, ln, BATCH_MAX);
			uint64_t t1 = now();
			/* hop by hop: whoever has payloads hands them to their VTEP */
			int hops = 0;
			for (bool moved = true; moved && hops < 8; hops++) {
				moved = false;
				for (int src = 0; src < 3; src++) {
					uint32_t k = memhost_outbox(h[src], pl, pln, dst, BATCH_MAX);
					if (!k)
						continue;
					moved = true;
					int to = -1;
					for (int t = 0; t < 3; t++)
						if (ipaddr_eq(&memhost_cfg(h[t])->vtep, &dst[0]))
							to = t;
					if (to < 0)
						return 1;
					uint64_t a = now();
					memhost_rx_tunnel(h[to], pl, pln, k);
					if (pass)
						ns[to] += now() - a;
				}
			}
			if (pass)
				ns[0] += t1 - t0;
			done += BATCH_MAX;
		}
		sent = done;
	}
	uint64_t delivered = memhost_delivered(h[0], p2);
	for (int i = 0; i < 3; i++)
		printf("%-34s %10u %10.2f %12.1f\n", i == 0 ? "distributed 2-hop: h1 (source)" : i == 1 ? "distributed 2-hop: h2 (fw)" : "distributed 2-hop: h3 (ids)",
		       n, (double)sent / ((double)ns[i] / 1e3), (double)ns[i] / (double)sent);
	free(web);
	for (int i = 0; i < 3; i++)
		memhost_destroy(h[i]);
	if (delivered < sent) {
		fprintf(stderr, "distributed: %llu of %llu packets delivered\n", (unsigned long long)delivered,
			(unsigned long long)sent);
		return 1;
	}
	return 0;
}

/* A chain of `hops` nsh services, one node each, all on h1 (0: no rule). */
static void make_hops_topo(char *out, size_t room, int hops)
{
	size_t off = (size_t)snprintf(out, room,
				      "service_plane: { vni: 4000 }\n"
				      "hosts: [ { name: h1, vtep: 10.0.0.1 } ]\n"
				      "networks: [ { name: blue, vni: 100 } ]\n"
				      "guests:\n"
				      "  - { name: vm1, host: h1, network: blue, port: vm1p, mac: \"02:00:00:00:01:01\", ip: 10.1.0.1/16 }\n"
				      "  - { name: vm2, host: h1, network: blue, port: vm2p, mac: \"02:00:00:00:01:02\", ip: 10.1.0.2/16 }\n");
	if (hops == 0)
		return;
	off += (size_t)snprintf(out + off, room - off, "services:\n");
	for (int i = 0; i < hops; i++)
		off += (size_t)snprintf(out + off, room - off,
					"  - { name: s%d, mode: nsh, nodes: [ { name: n%d, host: h1, ports: [n%dp], mac: \"02:00:00:00:aa:%02x\" } ] }\n",
					i, i, i, i + 1);
	off += (size_t)snprintf(out + off, room - off, "chains: [ { name: c, services: [");
	for (int i = 0; i < hops; i++)
		off += (size_t)snprintf(out + off, room - off, "%ss%d", i ? ", " : "", i);
	snprintf(out + off, room - off,
		 "] } ]\nrules:\n  - { name: web, applied_to: [vm1], direction: egress, match: { proto: tcp, dst_port: 80 }, action: redirect, chain: c }\n");
}

/* Mpps of established flows against hops and flows, as CSV (for plots). */
static int sweep(uint64_t total)
{
	static const uint32_t flows[] = {1, 1000, 100000};
	printf("hops,flows,mpps,ns_per_packet\n");
	for (int hops = 0; hops <= 4; hops++)
		for (size_t f = 0; f < ARRAY_SIZE(flows); f++) {
			char y[4096];
			make_hops_topo(y, sizeof(y), hops);
			struct memhost *m = memhost_create(y, "h1", 1u << 18);
			if (!m)
				return 1;
			memhost_keep_frames(m, false);
			uint16_t p1 = hostcfg_port_by_ifname(memhost_cfg(m), "vm1p");
			uint8_t *web = make_frames(flows[f], 80, 0x10);
			if (!web)
				return 1;
			run(m, p1, web, flows[f], flows[f] < BATCH_MAX ? BATCH_MAX : flows[f]); /* set-up */
			struct result r = run(m, p1, web, flows[f], total);
			printf("%d,%u,%.3f,%.1f\n", hops, flows[f], r.mpps, r.ns);
			fflush(stdout);
			free(web);
			memhost_destroy(m);
		}
	return 0;
}

/* Several workers, each a datapath of its own on its own core, as in
 * detourd, with the steering of detourd (steer.h). Two ways the frames
 * can reach the workers:
 *  - aligned: each worker receives the frames of the flows it owns (the
 *    kernel spreads by Detour's own flow hash), nothing is handed over;
 *  - unaligned: worker w receives the flows with index i mod n == w (a
 *    kernel hash that knows nothing of Detour's), keeps those it owns and
 *    hands the others (about half, with two) to their owner.
 * Mpps of the 2-hop chain on established flows delivered to vm2 / wall. */
struct worker_arg {
	uint32_t flows;
	bool aligned;
	uint16_t id, n;
	uint64_t total;
	struct steer *steer;
	_Atomic int *ready, *done;
	uint64_t t0, t1, handed_drops, delivered;
	int rc;
};

static void *worker_main(void *p)
{
	struct worker_arg *w = p;
	struct memhost *m = memhost_create(TOPO, "h1", 1u << 18);
	uint8_t *all = make_frames(w->flows, 80, 0x10), *web = malloc((size_t)w->flows * FRAME_LEN);
	uint32_t mine = 0;
	for (uint32_t i = 0; all && web && i < w->flows; i++) {
		const uint8_t *f = all + (size_t)i * FRAME_LEN;
		if (w->aligned ? steer_owner(w->steer, steer_hash(f, FRAME_LEN - 4, false)) == w->id : i % w->n == w->id)
			memcpy(web + (size_t)mine++ * FRAME_LEN, f, FRAME_LEN);
	}
	if (!m || !all || !web || !mine) {
		w->rc = 1;
		atomic_fetch_add(w->ready, 1);
		atomic_fetch_add(w->done, 1);
		return NULL;
	}
	memhost_keep_frames(m, false);
	memhost_set_worker(m, w->steer, w->id);
	uint16_t p1 = hostcfg_port_by_ifname(memhost_cfg(m), "vm1p");
	/* warm up: every flow established on its owner, nothing left in flight */
	for (uint32_t i = 0; i < mine; i += BATCH_MAX) {
		run(m, p1, web + (size_t)i * FRAME_LEN, MIN(BATCH_MAX, mine - i), BATCH_MAX);
		memhost_poll(m);
	}
	atomic_fetch_add(w->ready, 1);
	while (atomic_load(w->ready) < w->n)
		memhost_poll(m);
	while (memhost_poll(m))
		;
	atomic_fetch_add(w->ready, 1);
	while (atomic_load(w->ready) < 2 * w->n)
		memhost_poll(m);
	w->t0 = now();
	run(m, p1, web, mine, w->total);
	atomic_fetch_add(w->done, 1);
	while (memhost_poll(m) || atomic_load(w->done) < w->n) /* keep taking what others hand over */
		;
	w->t1 = now();
	w->delivered = memhost_delivered(m, hostcfg_port_by_ifname(memhost_cfg(m), "vm2p"));
	/* nobody frees its pool while another worker may still hold its buffers */
	atomic_fetch_add(w->done, 1);
	while (atomic_load(w->done) < 2 * w->n)
		memhost_poll(m);
	w->handed_drops = memhost_dp(m)->drops[DROP_STEER_FULL];
	free(all);
	free(web);
	memhost_destroy(m);
	return NULL;
}

static int run_workers(int n, bool aligned, uint32_t flows, uint64_t total)
{
	pthread_t th[16];
	struct worker_arg a[16];
	_Atomic int ready = 0, done = 0;
	struct steer *s = steer_create((uint16_t)n, 1024);
	if (!s)
		return 1;
	for (int i = 0; i < n; i++) {
		a[i] = (struct worker_arg){.flows = flows, .aligned = aligned, .id = (uint16_t)i, .n = (uint16_t)n, .total = total,
					   .steer = s, .ready = &ready, .done = &done};
		if (pthread_create(&th[i], NULL, worker_main, &a[i]))
			return 1;
	}
	int rc = 0;
	uint64_t t0 = UINT64_MAX, t1 = 0, lost = 0, delivered = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		rc |= a[i].rc;
		t0 = MIN(t0, a[i].t0);
		t1 = MAX(t1, a[i].t1);
		lost += a[i].handed_drops;
		delivered += a[i].delivered;
	}
	steer_destroy(s);
	/* delivered through the chain to vm2 per second (warm-up included in
	 * the count is < flows, negligible) */
	double mpps = (double)delivered / ((double)(t1 - t0) / 1e3);
	printf("%-34s %10u %10.2f %12.1f  (%d worker%s, %s; hand-off ring full: %llu)\n", "2-hop chain, workers", flows,
	       mpps, 1e3 / mpps, n, n > 1 ? "s" : "", aligned ? "aligned" : "unaligned: half handed over",
	       (unsigned long long)lost);
	return rc;
}

int main(int argc, char **argv)
{
	bool smoke = false;
	const char *only = NULL; /* g2g | new | chain */
	uint32_t one_count = 0;  /* --flows N: only this flow count */
	uint64_t packets = 0;    /* --packets N: packets per timed run */
	bool do_sweep = false;   /* --sweep: CSV of Mpps against hops and flows */
	int workers = 0;         /* --workers N: the chain on N worker threads */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--smoke"))
			smoke = true;
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--flows") && i + 1 < argc)
			one_count = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--packets") && i + 1 < argc)
			packets = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--sweep"))
			do_sweep = true;
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			workers = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_pipeline [--smoke] [--only g2g|new|chain|rules|dist] [--flows N] [--packets N] [--sweep] [--workers N]\n");
			return 2;
		}
	}
	uint32_t flow_counts[3] = {1, 10000, smoke ? 20000 : 1000000};
	uint64_t total = packets ? packets : smoke ? 200000 : 5000000;
	if (do_sweep)
		return sweep(packets ? packets : smoke ? 50000 : 2000000);
	if (workers > 0 && workers <= 16) {
		printf("%-34s %10s %10s %12s\n", "scenario", "flows", "Mpps", "ns/packet");
		int rc = run_workers(1, true, 10000, total);
		rc |= run_workers(workers, true, 10000, total);
		return rc | run_workers(workers, false, 10000, total);
	}
	printf("detour in-memory pipeline benchmark (one core, %s)\n", smoke ? "smoke run" : "full run");
	printf("%-34s %10s %10s %12s\n", "scenario", "flows", "Mpps", "ns/packet");
	int rc = 0;
	for (int f = 0; f < 3 && (want(only, "g2g") || want(only, "new") || want(only, "chain")); f++) {
		uint32_t n = one_count ? one_count : flow_counts[f];
		if (one_count && f > 0)
			break;
		/* tables sized for the flows, as a deployment would size them */
		struct memhost *m = memhost_create(TOPO, "h1", n < (1u << 17) ? 1u << 18 : 2 * n);
		if (!m)
			return 1;
		memhost_keep_frames(m, false);
		struct hostcfg *hc = memhost_cfg(m);
		uint16_t p1 = hostcfg_port_by_ifname(hc, "vm1p"), p2 = hostcfg_port_by_ifname(hc, "vm2p");
		/* guest to guest: classified (no rule matches), switched */
		uint8_t *plain = make_frames(n, 8080, 0x10);
		uint8_t *web = make_frames(n, 80, 0x10);
		uint8_t *syn = make_frames(n, 80, 0x02);
		if (!plain || !web || !syn)
			return 1;
		if (want(only, "g2g")) {
			struct result g = run(m, p1, plain, n, total);
			printf("%-34s %10u %10.2f %12.1f\n", "guest-to-guest", n, g.mpps, g.ns);
		}
		uint64_t d0 = memhost_delivered(m, p2);
		/* new flows: every packet creates a connection and picks a path
		 * (also the set-up of the established-flow run) */
		if (want(only, "new") || want(only, "chain")) {
			struct result nf = run(m, p1, syn, n, n < BATCH_MAX ? BATCH_MAX : n - n % BATCH_MAX);
			if (want(only, "new"))
				printf("%-34s %10u %10.2f %12.1f\n", "new-flow setup (2-hop chain)", n, nf.mpps, nf.ns);
		}
		/* established: the same flows again, through the 2-hop chain */
		if (want(only, "chain")) {
			struct result ch = run(m, p1, web, n, total);
			printf("%-34s %10u %10.2f %12.1f\n", "2-hop chain, established flows", n, ch.mpps, ch.ns);
		}
		uint64_t delivered = memhost_delivered(m, p2) - d0;
		if (delivered == 0 && want(only, "chain")) {
			fprintf(stderr, "nothing was delivered through the chain\n");
			rc = 1;
		}
		free(plain);
		free(web);
		free(syn);
		memhost_destroy(m);
	}
	if (want(only, "rules")) {
		for (int f = 1; f < 3; f++)
			rc |= run_rules(10000, false, one_count ? one_count : flow_counts[f], total);
		rc |= run_rules(10000, true, one_count ? one_count : flow_counts[1], total);
	}
	if (want(only, "dist"))
		for (int f = 0; f < 3; f++) {
			uint32_t n = one_count ? one_count : flow_counts[f];
			if (one_count && f > 0)
				break;
			rc |= run_distributed(n, total);
		}
	printf("connection entry: %zu bytes (1M flows: %.0f MiB)\n", conntrack_entry_bytes(),
	       (double)conntrack_entry_bytes() * 1e6 / (1 << 20));
	/* with the service proxies' flow state a datapath gets for 1M connections */
	struct spx_table *spx = spx_table_create(dp_spx_capacity(1000000));
	if (spx)
		printf("connection + proxy flow state: %.0f bytes (1M flows: %.0f MiB)\n",
		       (double)conntrack_entry_bytes() + (double)spx_table_bytes(spx) / 1e6,
		       ((double)conntrack_entry_bytes() * 1e6 + (double)spx_table_bytes(spx)) / (1 << 20));
	spx_table_destroy(spx);
	return rc;
}
