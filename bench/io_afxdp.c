/* io_afxdp.c - benchmark of the AF_XDP port backend between two veths in
 * a private network namespace (needs root and AF_XDP; prints "skipped"
 * otherwise). 64-byte frames.
 *   rx: a thread floods ta with sendmmsg(64); the main thread drains tb
 *       (AF_XDP, every queue) with io_rx_burst.
 *   tx: the main thread sends with io_tx_burst(64) on tb (AF_XDP); a
 *       thread drains ta (AF_PACKET) with io_rx_burst.
 * Prints offered/received Mpps and CPU time per packet of the measured
 * thread. --smoke: 0.5 s per direction; --busy: the RX loop spins instead
 * of sleeping in poll(). Touches only the namespace it
 * creates. */
#include <errno.h>
#include <fcntl.h>
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

#define FRAME_LEN 60

static uint64_t run_ns = 2000000000ull;
static bool busy; /* --busy: RX never sleeps in poll() */
#include "io_bench.h"

static int bench_rx(struct io_port *rx, struct pkt_pool *pool)
{
	pthread_t th;
	atomic_store(&stop, false);
	atomic_store(&gen_sent, 0);
	struct io_stats st0;
	io_get_stats(rx, &st0);
	if (pthread_create(&th, NULL, generator, "ta") != 0)
		return -1;
	struct pkt *b[64];
	uint64_t got = 0, empty = 0, bursts = 0;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	while (now_ns(CLOCK_MONOTONIC) - t0 < run_ns) {
		uint32_t n = io_rx_burst(rx, pool, b, 64);
		if (n == 0) {
			empty++;
			if (busy)
				continue;
			struct pollfd pf = {.fd = io_fd(rx), .events = POLLIN};
			poll(&pf, 1, 10);
			continue;
		}
		got += n;
		bursts++;
		pkt_free_bulk(pool, b, n);
	}
	uint64_t dt = now_ns(CLOCK_MONOTONIC) - t0, cpu = now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	struct io_stats st;
	io_get_stats(rx, &st);
	printf("io_afxdp rx%s: offered %.2f Mpps (sendmmsg), received %.2f Mpps, %.0f ns CPU/pkt, "
	       "%.1f frames/burst, socket drops %llu\n", busy ? " (busy poll)" : "",
	       (double)atomic_load(&gen_sent) * 1e3 / (double)dt, (double)got * 1e3 / (double)dt,
	       got ? (double)cpu / (double)got : 0.0, bursts ? (double)got / (double)bursts : 0.0,
	       (unsigned long long)(st.rx_drops - st0.rx_drops));
	(void)empty;
	return 0;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--smoke") == 0) {
			run_ns = 500000000ull;
		} else if (strcmp(argv[i], "--busy") == 0) {
			busy = true;
		} else {
			fprintf(stderr, "usage: %s [--smoke] [--busy]\n", argv[0]);
			return 2;
		}
	}
	if (!bench_veth_lab("io_afxdp", " && ip link set ta up && ip link set tb up"))
		return 0;
	char err[256];
	struct io_port *b = io_open_afxdp("tb", NULL, err, sizeof(err));
	if (!b) {
		printf("io_afxdp: skipped (%s)\n", err);
		return 0;
	}
	struct io_port *a = io_open_afpacket("ta", NULL, err, sizeof(err));
	struct pkt_pool *pool = pkt_pool_create(4096), *pool2 = pkt_pool_create(4096);
	if (!a || !pool || !pool2) {
		fprintf(stderr, "io_afxdp: %s\n", err);
		return 1;
	}
	int rc = bench_rx(b, pool) || bench_tx_run("io_afxdp", b, a, pool, pool2, run_ns);
	io_close(a);
	io_close(b);
	pkt_pool_destroy(pool);
	pkt_pool_destroy(pool2);
	return rc;
}
