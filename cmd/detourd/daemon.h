/* daemon.h - detourd's process state shared by its threads and its control
 * handlers.
 *
 * Threads: one control thread (main: signals, the control socket, port
 * and underlay life cycle, reloads) and N workers. Each worker has its own
 * datapath (pool, connection table, proxy flow state), its own socket or
 * queue on every port and its own underlay socket; flows are spread over
 * workers by steer.h.
 *
 * What the workers run with is a struct dconf (configuration, ports,
 * underlays), replaced whole by the control thread and published with RCU
 * (liburcu, QSBR flavour): a worker picks the new one up at the top of its
 * loop, moves its datapath over (flows keep their paths) and reports a
 * quiescent state once per loop. The old one is freed after two grace
 * periods, since a worker still reads the old configuration while it
 * switches. Control handlers read worker state only on the worker's own
 * thread (daemon_on_workers), never concurrently with it. */
#ifndef DETOURD_DAEMON_H
#define DETOURD_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>

#include "control.h"
#include "datapath.h"
#include "io.h"
#include "steer.h"
#include "underlay.h"

struct dconf {
	struct hostcfg *hc;
	uint16_t n_ports;
	uint16_t port_gen;     /* changes when the ports are numbered differently */
	struct io_port **io;   /* [n_workers * n_ports]: worker w's port i at w * n_ports + i; NULL while missing */
	struct underlay **ul;  /* [n_workers]; NULL until the VTEP address is up */
	_Atomic uint64_t *nh;  /* [hc->n_peers]: next hop of each peer on the uplink
				* (underlay_nh_word, 0 = unknown), written by the control
				* thread, read by the workers' underlays */
};

struct daemon;

struct worker {
	struct daemon *d;
	uint16_t id;
	int cpu;                   /* pinned to this CPU; -1: not pinned */
	pthread_t thread;
	struct datapath *dp;
	const struct dconf *conf;  /* the one this worker runs with */
	int efd;                   /* eventfd: hand-offs, calls, a new dconf */
	_Atomic int sleeping;      /* in poll(): producers write efd */
	void (*call)(struct worker *w, void *arg);
	void *call_arg;
	_Atomic int call_state;    /* 1 = requested, 2 = done */
	int done_efd;
	uint8_t *muted;            /* [n_ports] reported an error: not polled until the next dconf */
	uint64_t handed_out;       /* frames given to their owner worker */
	uint32_t n_hand[STEER_MAX_WORKERS];
	struct pkt *(*hand)[BATCH_MAX]; /* [n_workers]: frames for other workers, pushed per burst */
};

struct daemon {
	const char *config_path;
	const char *host;
	struct hostcfg *hc;        /* the latest configuration (= conf->hc) */
	struct dconf *conf;        /* RCU pointer */
	uint16_t n_workers;
	struct worker *w;
	struct steer *steer;       /* NULL with one worker */
	struct control *ctl;
	struct neigh *neigh;       /* rtnetlink for the uplink's next hops; NULL without */
	int main_efd;              /* a worker saw a port error */
	_Atomic bool stop;
	uint64_t started_ns, reloads, reload_failures;
};

uint64_t now_ns(void);
/* Load the file and swap it in. On failure returns false and appends
 * "FILE:LINE: msg" strings to errors (a JSON array). */
bool daemon_reload(struct daemon *d, json_t *errors);
/* Set a node up or down (liveness published with RCU). */
void daemon_set_node(struct daemon *d, uint16_t node, bool up);
/* Run fn(w, arg) on each worker's own thread in turn and wait for it
 * (control thread only). */
void daemon_on_workers(struct daemon *d, void (*fn)(struct worker *w, void *arg), void *arg);
void daemon_on_worker(struct daemon *d, uint16_t id, void (*fn)(struct worker *w, void *arg), void *arg);
void daemon_register_handlers(struct daemon *d);

#endif
