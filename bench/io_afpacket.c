/* io_afpacket.c - benchmark of the AF_PACKET port backend between two
 * veths in a private network namespace (needs root; prints "skipped"
 * otherwise). 64-byte frames.
 *   rx: a thread floods ta with sendmmsg(64); the main thread drains tb
 *       with io_rx_burst for 2 s.
 *   tx: the main thread sends with io_tx_burst(64) on ta for 2 s; a
 *       thread drains tb with io_rx_burst.
 * Prints offered/received Mpps and CPU time per packet of the measured
 * thread. Touches only the namespace it creates. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

#define RUN_NS 2000000000ull
#define FRAME_LEN 60

#include "io_bench.h"

static int bench_rx(struct io_port *rx, struct pkt_pool *pool)
{
	pthread_t th;
	atomic_store(&stop, false);
	atomic_store(&gen_sent, 0);
	if (pthread_create(&th, NULL, generator, "ta") != 0)
		return -1;
	struct pkt *b[64];
	uint64_t got = 0, empty = 0;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	while (now_ns(CLOCK_MONOTONIC) - t0 < RUN_NS) {
		uint32_t n = io_rx_burst(rx, pool, b, 64);
		if (n == 0) {
			empty++;
			struct pollfd pf = {.fd = io_fd(rx), .events = POLLIN};
			poll(&pf, 1, 10);
			continue;
		}
		got += n;
		pkt_free_bulk(pool, b, n);
	}
	uint64_t dt = now_ns(CLOCK_MONOTONIC) - t0, cpu = now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	struct io_stats st;
	io_get_stats(rx, &st);
	printf("io_afpacket rx: offered %.2f Mpps (sendmmsg), received %.2f Mpps, %.0f ns CPU/pkt, "
	       "kernel drops %llu\n",
	       (double)atomic_load(&gen_sent) * 1e3 / (double)dt, (double)got * 1e3 / (double)dt,
	       got ? (double)cpu / (double)got : 0.0, (unsigned long long)st.rx_drops);
	(void)empty;
	return 0;
}

int main(void)
{
	if (!bench_veth_lab("io_afpacket", ""))
		return 0;
	char err[256];
	struct io_port *a = io_open_afpacket("ta", NULL, err, sizeof(err));
	struct io_port *b = a ? io_open_afpacket("tb", NULL, err, sizeof(err)) : NULL;
	struct pkt_pool *pool = pkt_pool_create(4096), *pool2 = pkt_pool_create(4096);
	if (!a || !b || !pool || !pool2) {
		fprintf(stderr, "io_afpacket: %s\n", err);
		return 1;
	}
	int rc = bench_rx(b, pool) || bench_tx_run("io_afpacket", a, b, pool, pool2, RUN_NS);
	io_close(a);
	io_close(b);
	pkt_pool_destroy(pool);
	pkt_pool_destroy(pool2);
	return rc;
}
