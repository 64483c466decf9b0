/* daemon.h - detourd's process state shared by its main loop and its
 * control handlers: the configuration file, the running host
 * configuration, the worker's datapath and the open ports. */
#ifndef DETOURD_DAEMON_H
#define DETOURD_DAEMON_H

#include "control.h"
#include "datapath.h"
#include "io.h"
#include "underlay.h"

struct daemon {
	const char *config_path;
	const char *host;
	struct hostcfg *hc;
	struct datapath *dp;
	struct io_port **io;   /* [hc->n_ports], NULL while the interface is missing */
	struct control *ctl;
	struct underlay *ul;   /* Geneve to the other hosts; NULL until the VTEP address is up */
	uint64_t started_ns, reloads, reload_failures;
};

uint64_t now_ns(void);
/* Load the file and swap it in. On failure returns false and appends
 * "FILE:LINE: msg" strings to errors (a JSON array). */
bool daemon_reload(struct daemon *d, json_t *errors);
void daemon_register_handlers(struct daemon *d);

#endif
