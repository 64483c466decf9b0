/* io_bench.h - what the port benchmarks (io_afpacket, io_afxdp) share: a
 * clock, the test frame, a sendmmsg flood generator thread and a sink
 * thread draining a port. Header-only: each benchmark is one program. */
#ifndef DETOUR_IO_BENCH_H
#define DETOUR_IO_BENCH_H

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

#ifndef FRAME_LEN
#define FRAME_LEN 60
#endif

static atomic_bool stop;
static atomic_ullong gen_sent;

/* A fresh network namespace with a veth pair ta/tb (and any more `ip`
 * commands in extra), IPv6 off so that its chatter stays off the link.
 * False (with the reason printed) when this machine cannot. */
static bool bench_veth_lab(const char *what, const char *extra)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) {
		printf("%s: skipped (needs root and network namespaces)\n", what);
		return false;
	}
	int fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			perror("disable_ipv6");
		close(fd);
	}
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ip link add ta type veth peer name tb%s", extra);
	if (system(cmd) != 0) {
		printf("%s: skipped (cannot create veths)\n", what);
		return false;
	}
	return true;
}

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void mk_frame(uint8_t *f)
{
	static const uint8_t hdr[14] = {0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa, 0x88, 0xb5};
	memcpy(f, hdr, 14);
	for (int i = 14; i < FRAME_LEN; i++)
		f[i] = (uint8_t)i;
}

static void *generator(void *arg)
{
	const char *ifname = arg;
	int fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0)
		return NULL;
	int one = 1;
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(ifname)};
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(fd);
		return NULL;
	}
	uint8_t frame[FRAME_LEN];
	mk_frame(frame);
	struct iovec iov = {.iov_base = frame, .iov_len = FRAME_LEN};
	struct mmsghdr msgs[64];
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < 64; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int n = sendmmsg(fd, msgs, 64, 0);
		if (n > 0)
			atomic_fetch_add_explicit(&gen_sent, (unsigned long long)n, memory_order_relaxed);
	}
	close(fd);
	return NULL;
}

struct sink {
	struct io_port *port;
	struct pkt_pool *pool;
	uint64_t got;
};

static void *sink_thread(void *arg)
{
	struct sink *s = arg;
	struct pkt *b[64];
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct pollfd pf = {.fd = io_fd(s->port), .events = POLLIN};
		poll(&pf, 1, 10);
		uint32_t n;
		while ((n = io_rx_burst(s->port, s->pool, b, 64)) > 0) {
			s->got += n;
			pkt_free_bulk(s->pool, b, n);
		}
	}
	return NULL;
}


/* TX: the calling thread sends 64-frame bursts on tx for run_ns while a sink
 * thread drains rx; prints sent and received Mpps and CPU time per packet
 * of the sending thread, labelled `what`. */
static int bench_tx_run(const char *what, struct io_port *tx, struct io_port *rx, struct pkt_pool *pool,
			struct pkt_pool *rxpool, uint64_t run_ns)
{
	struct sink s = {.port = rx, .pool = rxpool};
	pthread_t th;
	atomic_store(&stop, false);
	if (pthread_create(&th, NULL, sink_thread, &s) != 0)
		return -1;
	struct pkt *b[64];
	if (pkt_alloc_bulk(pool, b, 64) != 64)
		return -1;
	for (int i = 0; i < 64; i++) {
		mk_frame(b[i]->data);
		b[i]->len = FRAME_LEN;
	}
	uint64_t sent = 0;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	while (now_ns(CLOCK_MONOTONIC) - t0 < run_ns)
		sent += io_tx_burst(tx, b, 64);
	uint64_t dt = now_ns(CLOCK_MONOTONIC) - t0, cpu = now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	pkt_free_bulk(pool, b, 64);
	printf("%s tx: sent %.2f Mpps (io_tx_burst 64), received %.2f Mpps, %.0f ns CPU/pkt\n", what,
	       (double)sent * 1e3 / (double)dt, (double)s.got * 1e3 / (double)dt,
	       sent ? (double)cpu / (double)sent : 0.0);
	return 0;
}

#endif
