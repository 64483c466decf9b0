/* detourd - the per-host agent and data plane (SPEC section 2), standalone
 * mode: runs host NAME's data plane from a topology file.
 *
 *   detourd --config FILE --host NAME [--socket PATH] [--log-level L] [--syslog]
 *
 * One worker: a poll loop over the ports, the control socket and signals
 * (SIGHUP reloads, SIGTERM/SIGINT stop). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "nsh.h"

#define POOL_SIZE 16384
#define NSH_OVERHEAD_MAX 100 /* Ethernet + NSH base + the chain TLV, with room to spare */
#define CT_CAPACITY (1u << 18)

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void tx_cb(void *ctx, uint16_t port, struct pkt **pkts, uint32_t n)
{
	struct daemon *d = ctx;
	if (d->io[port])
		io_tx_burst(d->io[port], pkts, n);
}

/* The frames a port carries: guest MTU, plus the NSH encapsulation on the
 * link to an nsh node. */
static uint16_t port_mtu(const struct hostcfg *hc, const struct hc_port *hp, uint16_t mtu)
{
	if (hp->kind == PORT_SN && hc->topo->services[hc->topo->nodes[hp->ref].service].mode == SVC_MODE_NSH)
		return (uint16_t)MIN(mtu + NSH_OVERHEAD_MAX, IO_MTU_MAX);
	return mtu;
}

static void tunnel_cb(void *ctx, struct pkt **pkts, const struct ipaddr *dst, uint32_t n)
{
	struct daemon *d = ctx;
	if (d->ul)
		underlay_tx_burst(d->ul, pkts, dst, NULL, n, NULL); /* failures counted per peer */
	else
		d->dp->drops[DROP_NO_UNDERLAY] += n;
}

/* The underlay socket on this host's VTEP, with the other hosts as the only
 * accepted senders. */
static void open_underlay(struct daemon *d, bool quiet)
{
	char err[256], vtep[IPADDR_STRLEN];
	ipaddr_format(&d->hc->vtep, vtep);
	if (d->ul && !ipaddr_eq(underlay_vtep(d->ul), &d->hc->vtep)) {
		underlay_close(d->ul);
		d->ul = NULL;
	}
	if (!d->ul) {
		d->ul = underlay_open(&d->hc->vtep, GENEVE_PORT, err, sizeof(err));
		if (!d->ul) {
			if (!quiet)
				log_warn("underlay %s: %s (retrying every second)", vtep, err);
			return;
		}
		log_info("underlay on %s port %u", vtep, GENEVE_PORT);
	}
	if (!underlay_set_peers(d->ul, d->hc->peers, d->hc->n_peers, err, sizeof(err)))
		log_err("underlay peers: %s", err);
}

/* Open a port as the topology asks (`io:`); AF_XDP that cannot be had
 * falls back to AF_PACKET with a log line. */
static struct io_port *open_port(const struct hc_port *hp, uint16_t mtu, bool quiet)
{
	char err[256];
	struct io_opts o;
	io_opts_init(&o);
	o.mtu = mtu;
	if (hp->io == PORT_IO_AFXDP || hp->io == PORT_IO_AUTO) {
		/* auto: native mode only (generic mode cannot take GSO frames from a TSO peer) */
		o.xdp_mode = hp->io == PORT_IO_AUTO ? IO_XDP_MODE_NATIVE : IO_XDP_MODE_AUTO;
		struct io_port *io = io_open_afxdp(hp->ifname, &o, err, sizeof(err));
		if (io) {
			log_info("port %s open (AF_XDP)", hp->ifname);
			return io;
		}
		if (!quiet)
			log_warn("port %s: AF_XDP not available (%s); using AF_PACKET", hp->ifname, err);
	}
	struct io_port *io = io_open_afpacket(hp->ifname, &o, err, sizeof(err));
	if (!io) {
		if (!quiet)
			log_warn("port %s: %s (retrying every second)", hp->ifname, err);
	} else
		log_info("port %s open (AF_PACKET)", hp->ifname);
	return io;
}

static uint16_t host_mtu(const struct hostcfg *hc)
{
	return hc->topo->hosts[hc->self].mtu ? hc->topo->hosts[hc->self].mtu : 1500;
}

/* Open every port of hc, reusing the already open ones of the same name. */
static struct io_port **open_ports(const struct hostcfg *hc, struct io_port **old, const struct hostcfg *oldhc)
{
	struct io_port **io = calloc(hc->n_ports + 1u, sizeof(*io));
	if (!io)
		return NULL;
	for (uint16_t i = 0; i < hc->n_ports; i++) {
		uint16_t o = oldhc ? hostcfg_port_by_ifname(oldhc, hc->ports[i].ifname) : PORT_NONE;
		if (o != PORT_NONE && old[o]) {
			io[i] = old[o];
			old[o] = NULL;
		} else {
			io[i] = open_port(&hc->ports[i], port_mtu(hc, &hc->ports[i], host_mtu(hc)), false);
		}
	}
	if (oldhc)
		for (uint16_t i = 0; i < oldhc->n_ports; i++)
			if (old[i]) {
				log_info("port %s closed", oldhc->ports[i].ifname);
				io_close(old[i]);
			}
	return io;
}

static struct hostcfg *load(const char *path, const char *host, json_t *errors)
{
	struct topo_errors errs;
	memset(&errs, 0, sizeof(errs));
	struct topology *t = topology_load_file(path, &errs);
	if (!t) {
		for (unsigned i = 0; i < errs.n && i < ARRAY_SIZE(errs.e); i++)
			json_array_append_new(errors, json_sprintf("%s:%d: %s", path, errs.e[i].line, errs.e[i].msg));
		if (errs.n_dropped)
			json_array_append_new(errors, json_sprintf("%s: %u more errors", path, errs.n_dropped));
		if (errs.n == 0)
			json_array_append_new(errors, json_sprintf("%s: cannot load", path));
		return NULL;
	}
	char err[256];
	struct hostcfg *hc = hostcfg_build(t, host, err, sizeof(err));
	if (!hc)
		json_array_append_new(errors, json_sprintf("%s: %s", path, err));
	return hc;
}

bool daemon_reload(struct daemon *d, json_t *errors)
{
	struct hostcfg *hc = load(d->config_path, d->host, errors);
	if (!hc) {
		d->reload_failures++;
		return false;
	}
	hostcfg_inherit_liveness(hc, d->hc);
	dp_flush(d->dp);
	struct io_port **io = open_ports(hc, d->io, d->hc);
	if (!io || !dp_set_config(d->dp, hc)) {
		json_array_append_new(errors, json_string("out of memory"));
		free(io);
		hostcfg_free(hc);
		d->reload_failures++;
		return false;
	}
	free(d->io);
	d->io = io;
	hostcfg_free(d->hc);
	d->hc = hc;
	d->reloads++;
	open_underlay(d, false);
	log_info("reloaded %s: %u ports, %u paths", d->config_path, hc->n_ports, hc->ps->n_paths);
	return true;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: detourd --config FILE --host NAME [--socket PATH] [--log-level error|warning|info|debug] "
		   "[--syslog]\n");
}

static void log_errors(json_t *errors)
{
	size_t i;
	json_t *v;
	json_array_foreach(errors, i, v)
		log_err("%s", json_string_value(v));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"host", required_argument, NULL, 'H'},
		{"socket", required_argument, NULL, 's'}, {"log-level", required_argument, NULL, 'l'},
		{"syslog", no_argument, NULL, 'S'},       {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct daemon d = {0};
	const char *sock = NULL;
	enum log_level lvl = LOG_LVL_INFO;
	bool use_syslog = false;
	int c;
	while ((c = getopt_long(argc, argv, "c:H:s:l:Sh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': d.config_path = optarg; break;
		case 'H': d.host = optarg; break;
		case 's': sock = optarg; break;
		case 'S': use_syslog = true; break;
		case 'l':
			if (!strcmp(optarg, "error")) lvl = LOG_LVL_ERR;
			else if (!strcmp(optarg, "warning")) lvl = LOG_LVL_WARN;
			else if (!strcmp(optarg, "info")) lvl = LOG_LVL_INFO;
			else if (!strcmp(optarg, "debug")) lvl = LOG_LVL_DEBUG;
			else { usage(stderr); return 2; }
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!d.config_path || !d.host || optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("detourd", use_syslog, lvl);
	char sockbuf[256];
	if (!sock) {
		snprintf(sockbuf, sizeof(sockbuf), "/run/detour/%s.sock", d.host);
		sock = sockbuf;
	}
	json_t *errors = json_array();
	d.hc = load(d.config_path, d.host, errors);
	if (!d.hc) {
		log_errors(errors);
		log_err("not starting: %s is invalid", d.config_path);
		return 1;
	}
	json_decref(errors);
	d.started_ns = now_ns();
	d.dp = dp_create(d.hc, POOL_SIZE, CT_CAPACITY, tx_cb, &d);
	if (!d.dp) {
		log_err("cannot allocate the datapath");
		return 1;
	}
	d.dp->now_ns = d.started_ns;
	d.io = open_ports(d.hc, NULL, NULL);
	dp_set_tunnel(d.dp, tunnel_cb, &d);
	open_underlay(&d, false);
	char err[256];
	d.ctl = control_open(sock, err, sizeof(err));
	if (!d.ctl) {
		log_err("%s", err);
		return 1;
	}
	daemon_register_handlers(&d);

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	log_info("host %s running: %u ports, %u paths, socket %s", d.host, d.hc->n_ports, d.hc->ps->n_paths, sock);

	struct pollfd *pfd = NULL;
	size_t pfd_cap = 0;
	uint64_t last_retry = now_ns();
	bool running = true;
	while (running) {
		size_t n = d.hc->n_ports + 3u;
		if (n > pfd_cap) {
			free(pfd);
			pfd = calloc(n, sizeof(*pfd));
			pfd_cap = n;
		}
		pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = control_fd(d.ctl), .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = d.ul ? underlay_fd(d.ul) : -1, .events = POLLIN};
		for (uint16_t i = 0; i < d.hc->n_ports; i++)
			pfd[3 + i] = (struct pollfd){.fd = d.io[i] ? io_fd(d.io[i]) : -1, .events = POLLIN};
		int r = poll(pfd, n, 100);
		if (r < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			break;
		}
		uint64_t t = now_ns();
		dp_tick(d.dp, t);
		/* data first: drain every port in bursts until all are idle or a budget is spent */
		for (int round = 0; round < 64; round++) {
			uint32_t got = 0;
			for (uint16_t i = 0; i < d.hc->n_ports; i++) {
				if (!d.io[i])
					continue;
				struct pkt *b[BATCH_MAX];
				uint32_t k = io_rx_burst(d.io[i], d.dp->pool, b, BATCH_MAX);
				if (k) {
					dp_input(d.dp, i, b, k);
					got += k;
				}
			}
			if (d.ul) {
				struct pkt *b[BATCH_MAX];
				struct ipaddr from[BATCH_MAX];
				uint32_t k = underlay_rx_burst(d.ul, d.dp->pool, b, from, BATCH_MAX);
				if (k) {
					dp_input_tunnel(d.dp, b, k);
					got += k;
				}
			}
			dp_flush(d.dp);
			if (!got)
				break;
		}
		/* a port whose interface went away: at once when poll() reports
		 * it (it would forever), else at the once-a-second check below */
		bool tick = t - last_retry > 1000000000ull;
		for (uint16_t i = 0; i < d.hc->n_ports; i++) {
			if (!d.io[i] || !(tick || (pfd[3 + i].revents & (POLLERR | POLLHUP | POLLNVAL))))
				continue;
			if (!io_check_alive(d.io[i])) {
				log_warn("port %s: interface gone; closed, retrying every second", d.hc->ports[i].ifname);
				io_close(d.io[i]);
				d.io[i] = NULL;
			}
		}
		if (pfd[1].revents)
			control_poll(d.ctl);
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					json_t *e = json_array();
					if (!daemon_reload(&d, e)) {
						log_errors(e);
						log_err("reload rejected; running state kept");
					}
					json_decref(e);
				} else {
					running = false;
				}
			}
		}
		if (tick) {
			last_retry = t;
			for (uint16_t i = 0; i < d.hc->n_ports; i++)
				if (!d.io[i])
					d.io[i] = open_port(&d.hc->ports[i], port_mtu(d.hc, &d.hc->ports[i], host_mtu(d.hc)), true);
			if (!d.ul)
				open_underlay(&d, true);
		}
	}
	log_info("stopping");
	control_close(d.ctl);
	underlay_close(d.ul);
	for (uint16_t i = 0; i < d.hc->n_ports; i++)
		io_close(d.io[i]);
	free(d.io);
	free(pfd);
	dp_destroy(d.dp);
	hostcfg_free(d.hc);
	close(sfd);
	return 0;
}
