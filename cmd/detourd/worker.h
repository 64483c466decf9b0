/* worker.h - detourd's worker threads (worker.c). */
#ifndef DETOURD_WORKER_H
#define DETOURD_WORKER_H

#include "daemon.h"

/* Set up worker id of d running with c (its datapath, eventfds). */
bool worker_init(struct worker *w, struct daemon *d, uint16_t id, const struct dconf *c, uint32_t pool_size,
		 uint32_t ct_capacity);
bool worker_start(struct worker *w);
/* After every worker thread has stopped: give back the frames still
 * handed to w; then worker_fini() frees it (its pool last: do it once the
 * ports are closed). */
void worker_drop_handed(struct worker *w);
void worker_fini(struct worker *w);
/* Wake the worker (new dconf, hand-off). */
void worker_wake(struct worker *w);
/* Run fn(w, arg) on the worker's thread and wait for it. */
void worker_call(struct worker *w, void (*fn)(struct worker *w, void *arg), void *arg);

#endif
