/* detour-lab - builds a lab of hosts, guests and service nodes from network
 * namespaces and veth pairs on this machine, runs detourd and detour-sn in
 * it, and tears it down (SPEC section 2, issue 2 item 13).
 *
 * Owns: the lab layout (namespace P-NAME per host, guest and node; P-ul for
 * the underlay bridge), the state directory /run/detour/lab-P/ (topology
 * copy, pid files, the list of namespaces it made) and the processes it
 * starts. Must not: touch anything outside the namespaces it creates, or
 * processes it did not start (except those living inside its namespaces at
 * `down`). Every external tool (ip, nft, detourctl) is run by fork/exec,
 * never through a shell. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "topology.h"

/* MTU of the link to an nsh node: guest MTU 1500 + Ethernet + NSH with TLVs */
#define NSH_LINK_MTU 1600

#define RUN_DIR "/run/detour"
#define NETNS_DIR "/run/netns"
#define PREFIX_MAX 12
#define READY_TIMEOUT_MS 10000
#define SN_READY_TIMEOUT_MS 5000
#define POLL_MS 50

static const char *g_prefix = "dt";
static char g_bindir[PATH_MAX];
static char g_statedir[PATH_MAX];

static void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err(const char *fmt, ...)
{
	va_list ap;
	fputs("detour-lab: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* snprintf that treats truncation as a fatal error (paths, names). */
static void xsnprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void xsnprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= n) {
		fprintf(stderr, "detour-lab: name or path too long: %.60s...\n", buf);
		exit(1);
	}
}

static void usage(FILE *f)
{
	fputs("usage: detour-lab [--prefix P] up FILE\n"
	      "       detour-lab [--prefix P] down [FILE]\n"
	      "       detour-lab [--prefix P] exec NAME CMD [ARG...]\n"
	      "       detour-lab [--prefix P] pid NAME\n"
	      "Builds the topology FILE as network namespaces P-NAME (P defaults to \"dt\"),\n"
	      "starts detourd per host and detour-sn per nsh node; state in /run/detour/lab-P/.\n"
	      "DETOUR_LAB_WORKERS=N in the environment starts each detourd with --workers N.\n",
	      f);
}

/* ---- small string buffer ---------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = b->p ? vsnprintf(b->p + b->len, room, fmt, ap) : vsnprintf(NULL, 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if (b->p && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap ? b->cap * 2 : 1024;
		while (ncap < b->len + (size_t)n + 1)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			err("out of memory");
			exit(1);
		}
		b->p = np;
		b->cap = ncap;
	}
}

static void sb_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- time ---------------------------------------------------------------- */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- paths and files ------------------------------------------------------ */

static void ns_name(char *buf, size_t n, const char *name)
{
	xsnprintf(buf, n, "%s-%s", g_prefix, name);
}

static void state_path(char *buf, size_t n, const char *file)
{
	xsnprintf(buf, n, "%s/%s", g_statedir, file);
}

static bool path_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

static bool netns_exists(const char *ns)
{
	char p[PATH_MAX];
	xsnprintf(p, sizeof(p), NETNS_DIR "/%s", ns);
	return path_exists(p);
}

static int append_line(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int append_line(const char *file, const char *fmt, ...)
{
	char p[PATH_MAX];
	state_path(p, sizeof(p), file);
	FILE *f = fopen(p, "ae");
	if (!f) {
		err("cannot write %s: %s", p, strerror(errno));
		return -1;
	}
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	if (fclose(f) != 0) {
		err("cannot write %s: %s", p, strerror(errno));
		return -1;
	}
	return 0;
}

static int copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		err("cannot open %s: %s", src, strerror(errno));
		return -1;
	}
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		err("cannot create %s: %s", dst, strerror(errno));
		close(in);
		return -1;
	}
	char buf[8192];
	int rc = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err("reading %s: %s", src, strerror(errno));
			rc = -1;
			break;
		}
		if (n == 0)
			break;
		ssize_t off = 0;
		while (off < n) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				err("writing %s: %s", dst, strerror(errno));
				rc = -1;
				break;
			}
			off += w;
		}
		if (rc)
			break;
	}
	close(in);
	if (close(out) != 0 && rc == 0) {
		err("writing %s: %s", dst, strerror(errno));
		rc = -1;
	}
	return rc;
}

/* Prints the last lines of a log file to stderr. */
static void print_log_tail(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err("(no log at %s)", path);
		return;
	}
	char buf[4096];
	off_t end = lseek(fd, 0, SEEK_END);
	off_t start = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
	lseek(fd, start, SEEK_SET);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		err("(log %s is empty)", path);
		return;
	}
	buf[n] = 0;
	/* keep the last 20 lines */
	int lines = 0;
	char *s = buf + n;
	while (s > buf) {
		--s;
		if (*s == '\n' && s != buf + n - 1 && ++lines == 20) {
			++s;
			break;
		}
	}
	fprintf(stderr, "---- last lines of %s ----\n%s%s---- end of log ----\n", path, s,
		buf[n - 1] == '\n' ? "" : "\n");
}

/* ---- namespaces and child processes --------------------------------------- */

/* Joins the named namespace; used only in children (or just before exec). */
static int enter_netns(const char *ns)
{
	char p[PATH_MAX];
	xsnprintf(p, sizeof(p), NETNS_DIR "/%s", ns);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "detour-lab: cannot open namespace %s: %s\n", p, strerror(errno));
		return -1;
	}
	if (setns(fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "detour-lab: setns %s: %s\n", p, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Runs argv (PATH lookup) in namespace ns (NULL: this one), feeding `input`
 * on stdin when given. quiet sends stdout and stderr to /dev/null.
 * timeout_ms > 0 kills the child after that long. Returns the exit status
 * (0 success), or -1 when it could not run or was killed. */
static int run(const char *ns, char *const argv[], const char *input, bool quiet, long timeout_ms)
{
	int pfd[2] = {-1, -1};
	if (input && pipe2(pfd, O_CLOEXEC) < 0) {
		err("pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		err("fork: %s", strerror(errno));
		if (input) {
			close(pfd[0]);
			close(pfd[1]);
		}
		return -1;
	}
	if (pid == 0) {
		if (input)
			dup2(pfd[0], 0);
		else {
			int dn = open("/dev/null", O_RDONLY);
			if (dn >= 0)
				dup2(dn, 0);
		}
		if (quiet) {
			int dn = open("/dev/null", O_WRONLY);
			if (dn >= 0) {
				dup2(dn, 1);
				dup2(dn, 2);
			}
		}
		if (ns && enter_netns(ns) < 0)
			_exit(126);
		execvp(argv[0], argv);
		fprintf(stderr, "detour-lab: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (input) {
		close(pfd[0]);
		signal(SIGPIPE, SIG_IGN);
		size_t len = strlen(input), off = 0;
		while (off < len) {
			ssize_t w = write(pfd[1], input + off, len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				break;
			off += (size_t)w;
		}
		close(pfd[1]);
	}
	int status;
	long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, timeout_ms > 0 ? WNOHANG : 0);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			err("waitpid: %s", strerror(errno));
			return -1;
		}
		if (r == 0) {
			if (now_ms() > deadline) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				return -1;
			}
			sleep_ms(10);
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -1;
}

static int ip_batch(const char *ns, const struct sbuf *cmds, bool force, bool quiet)
{
	if (!cmds->len)
		return 0;
	char *argv_force[] = {"ip", "-force", "-batch", "-", NULL};
	char *argv_plain[] = {"ip", "-batch", "-", NULL};
	return run(ns, force ? argv_force : argv_plain, cmds->p, quiet, 0);
}

/* Writes sysctl values (pairs of /proc/sys-relative path, value) inside ns. */
static int set_sysctls(const char *ns, const char *const *kv, size_t n)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		err("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (enter_netns(ns) < 0)
			_exit(1);
		for (size_t i = 0; i + 1 < n; i += 2) {
			char p[PATH_MAX];
			const char *v = kv[i + 1];
			bool optional = v[0] == '?'; /* "?1": skipped where the kernel has no such setting */
			v += optional;
			xsnprintf(p, sizeof(p), "/proc/sys/%s", kv[i]);
			int fd = open(p, O_WRONLY | O_CLOEXEC);
			if (fd < 0 && errno == ENOENT && optional)
				continue;
			if (fd < 0 || write(fd, v, strlen(v)) < 0) {
				fprintf(stderr, "detour-lab: sysctl %s=%s in %s: %s\n", kv[i], kv[i + 1], ns,
					strerror(errno));
				_exit(1);
			}
			close(fd);
		}
		_exit(0);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Start time of a process (field 22 of /proc/PID/stat), 0 if gone; *zombie
 * tells whether it has exited but not been reaped. */
static unsigned long long proc_starttime(pid_t pid, bool *zombie)
{
	char p[64], buf[1024];
	xsnprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *s = strrchr(buf, ')');
	if (!s || s[1] != ' ')
		return 0;
	s += 2;
	if (zombie)
		*zombie = (*s == 'Z' || *s == 'X');
	/* s points at field 3 (state); field 22 is 19 fields further */
	for (int f = 3; f < 22; f++) {
		s = strchr(s, ' ');
		if (!s)
			return 0;
		s++;
	}
	return strtoull(s, NULL, 10);
}

/* True while pid still runs as the process we started. */
static bool proc_alive(pid_t pid, unsigned long long start)
{
	while (waitpid(pid, NULL, WNOHANG) > 0)
		; /* reap if it is our child */
	bool zombie = false;
	unsigned long long st = proc_starttime(pid, &zombie);
	return st != 0 && !zombie && (start == 0 || st == start);
}

/* Starts a program in ns, detached (own session), output to logpath; records
 * NAME.pid and a line in `procs`. Returns the pid or -1. */
static pid_t start_daemon(const char *ns, const char *name, char *const argv[], const char *logpath)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		err("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		setsid();
		int dn = open("/dev/null", O_RDONLY);
		if (dn >= 0)
			dup2(dn, 0);
		int lf = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		if (enter_netns(ns) < 0)
			_exit(126);
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		fprintf(stderr, "detour-lab: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	unsigned long long st = 0;
	for (int i = 0; i < 100 && !(st = proc_starttime(pid, NULL)); i++)
		sleep_ms(1);
	char file[TOPO_NAME_MAX + 8];
	xsnprintf(file, sizeof(file), "%s.pid", name);
	char p[PATH_MAX];
	state_path(p, sizeof(p), file);
	FILE *f = fopen(p, "we");
	if (f) {
		fprintf(f, "%d\n", (int)pid);
		fclose(f);
	}
	if (append_line("procs", "%s %d %llu", name, (int)pid, st) < 0 || !f) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

/* ---- down -------------------------------------------------------------- */

struct proc_rec {
	char name[TOPO_NAME_MAX];
	pid_t pid;
	unsigned long long start;
};

static size_t read_procs(struct proc_rec **out)
{
	char p[PATH_MAX];
	state_path(p, sizeof(p), "procs");
	*out = NULL;
	FILE *f = fopen(p, "re");
	if (!f)
		return 0;
	size_t n = 0, cap = 0;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		struct proc_rec r = {0};
		int pid;
		char name[TOPO_NAME_MAX];
		if (sscanf(line, "%31s %d %llu", name, &pid, &r.start) < 2 || pid <= 1)
			continue;
		xsnprintf(r.name, sizeof(r.name), "%s", name);
		r.pid = pid;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct proc_rec *np = realloc(*out, cap * sizeof(*np));
			if (!np)
				break;
			*out = np;
		}
		(*out)[n++] = r;
	}
	fclose(f);
	return n;
}

static void stop_recorded_procs(void)
{
	struct proc_rec *pr;
	size_t n = read_procs(&pr);
	for (size_t i = 0; i < n; i++)
		if (proc_alive(pr[i].pid, pr[i].start))
			kill(pr[i].pid, SIGTERM);
	long long deadline = now_ms() + 2000;
	for (;;) {
		bool any = false;
		for (size_t i = 0; i < n; i++)
			if (proc_alive(pr[i].pid, pr[i].start))
				any = true;
		if (!any || now_ms() > deadline)
			break;
		sleep_ms(20);
	}
	for (size_t i = 0; i < n; i++)
		if (proc_alive(pr[i].pid, pr[i].start)) {
			err("%s (pid %d) did not stop on SIGTERM; killing it", pr[i].name, (int)pr[i].pid);
			kill(pr[i].pid, SIGKILL);
		}
	for (size_t i = 0; i < n; i++)
		while (waitpid(pr[i].pid, NULL, WNOHANG) > 0)
			;
	free(pr);
}

struct strlist {
	char **v;
	size_t n, cap;
};

static void sl_add(struct strlist *l, const char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		char **nv = realloc(l->v, l->cap * sizeof(*nv));
		if (!nv) {
			err("out of memory");
			exit(1);
		}
		l->v = nv;
	}
	l->v[l->n] = strdup(s);
	if (!l->v[l->n]) {
		err("out of memory");
		exit(1);
	}
	l->n++;
}

static void sl_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static void read_lines(const char *file, struct strlist *l)
{
	char p[PATH_MAX];
	state_path(p, sizeof(p), file);
	FILE *f = fopen(p, "re");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = 0;
		if (line[0])
			sl_add(l, line);
	}
	fclose(f);
}

/* SIGKILLs every process whose network namespace is one of `nss`. */
static void kill_procs_in_netns(const struct strlist *nss)
{
	struct stat *ids = calloc(nss->n ? nss->n : 1, sizeof(*ids));
	bool *have = calloc(nss->n ? nss->n : 1, sizeof(*have));
	if (!ids || !have) {
		free(ids);
		free(have);
		return;
	}
	size_t nh = 0;
	for (size_t i = 0; i < nss->n; i++) {
		char p[PATH_MAX];
		xsnprintf(p, sizeof(p), NETNS_DIR "/%s", nss->v[i]);
		if (stat(p, &ids[i]) == 0) {
			have[i] = true;
			nh++;
		}
	}
	for (int round = 0; nh && round < 50; round++) {
		DIR *d = opendir("/proc");
		if (!d)
			break;
		bool found = false;
		struct dirent *de;
		while ((de = readdir(d))) {
			char *end;
			long pid = strtol(de->d_name, &end, 10);
			if (*end || pid <= 1 || pid == getpid())
				continue;
			char p[64];
			struct stat st;
			xsnprintf(p, sizeof(p), "/proc/%ld/ns/net", pid);
			if (stat(p, &st) < 0)
				continue;
			for (size_t i = 0; i < nss->n; i++) {
				if (have[i] && st.st_ino == ids[i].st_ino && st.st_dev == ids[i].st_dev) {
					bool zombie = false;
					if (proc_starttime((pid_t)pid, &zombie) && !zombie) {
						kill((pid_t)pid, SIGKILL);
						found = true;
					}
					break;
				}
			}
		}
		closedir(d);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!found)
			break;
		sleep_ms(20);
	}
	free(ids);
	free(have);
}

static void delete_netns(const struct strlist *nss)
{
	struct sbuf b = {0};
	for (size_t i = 0; i < nss->n; i++)
		if (netns_exists(nss->v[i]))
			sb_printf(&b, "netns del %s\n", nss->v[i]);
	if (b.len && ip_batch(NULL, &b, true, false) != 0) {
		/* one by one, so one failure does not hide the others */
		for (size_t i = 0; i < nss->n; i++) {
			if (!netns_exists(nss->v[i]))
				continue;
			char *argv[] = {"ip", "netns", "del", nss->v[i], NULL};
			if (run(NULL, argv, NULL, true, 0) != 0 && netns_exists(nss->v[i]))
				err("could not delete namespace %s", nss->v[i]);
		}
	}
	sb_free(&b);
}

/* Namespace names the lab of topology t would create. */
static void topo_netns(const struct topology *t, struct strlist *l)
{
	char ns[PATH_MAX];
	ns_name(ns, sizeof(ns), "ul");
	sl_add(l, ns);
	for (unsigned i = 0; i < t->n_hosts; i++) {
		ns_name(ns, sizeof(ns), t->hosts[i].name);
		sl_add(l, ns);
	}
	for (unsigned i = 0; i < t->n_guests; i++) {
		ns_name(ns, sizeof(ns), t->guests[i].name);
		sl_add(l, ns);
	}
	for (unsigned i = 0; i < t->n_nodes; i++) {
		ns_name(ns, sizeof(ns), t->nodes[i].name);
		sl_add(l, ns);
	}
}

static void print_topo_errors(const char *file, const struct topo_errors *e)
{
	for (unsigned i = 0; i < e->n && i < ARRAY_SIZE(e->e); i++)
		if (e->e[i].line > 0)
			fprintf(stderr, "%s:%d: %s\n", file, e->e[i].line, e->e[i].msg);
		else
			fprintf(stderr, "%s: %s\n", file, e->e[i].msg);
	if (e->n_dropped)
		fprintf(stderr, "%s: ... and %u more errors\n", file, e->n_dropped);
	if (!e->n && !e->n_dropped)
		fprintf(stderr, "%s: invalid topology\n", file);
}

/* Removes everything the lab with the current prefix made. Never fails
 * because something is already gone. `file` is used only when no state
 * directory is left. */
static int do_down(const char *file)
{
	struct strlist nss = {0}, names = {0};
	bool have_state = path_exists(g_statedir);
	if (have_state) {
		stop_recorded_procs();
		read_lines("netns", &nss);
		read_lines("names", &names);
	} else if (file) {
		struct topo_errors e = {0};
		struct topology *t = topology_load_file(file, &e);
		if (!t) {
			print_topo_errors(file, &e);
			err("no lab state in %s and the file is invalid: nothing removed", g_statedir);
			return 1;
		}
		topo_netns(t, &nss);
		for (unsigned i = 0; i < t->n_hosts; i++) {
			char line[TOPO_NAME_MAX + 8];
			xsnprintf(line, sizeof(line), "host %s", t->hosts[i].name);
			sl_add(&names, line);
		}
		topology_free(t);
	}
	kill_procs_in_netns(&nss);
	delete_netns(&nss);
	for (size_t i = 0; i < names.n; i++) {
		if (strncmp(names.v[i], "host ", 5) != 0)
			continue;
		char sock[PATH_MAX];
		xsnprintf(sock, sizeof(sock), RUN_DIR "/%s-%s.sock", g_prefix, names.v[i] + 5);
		unlink(sock);
	}
	if (have_state) {
		DIR *d = opendir(g_statedir);
		if (d) {
			struct dirent *de;
			while ((de = readdir(d))) {
				if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
					continue;
				char p[PATH_MAX];
				state_path(p, sizeof(p), de->d_name);
				unlink(p);
			}
			closedir(d);
		}
		if (rmdir(g_statedir) < 0 && errno != ENOENT)
			err("cannot remove %s: %s", g_statedir, strerror(errno));
	}
	sl_free(&nss);
	sl_free(&names);
	return 0;
}

/* ---- up ------------------------------------------------------------------- */

static void fmt_addr(const struct ipaddr *a, int plen, bool ip6_default64, char *buf, size_t n)
{
	char s[IPADDR_STRLEN];
	ipaddr_format(a, s);
	if (ipaddr_is_v4(a)) {
		int l = plen > 96 && plen <= 128 ? plen - 96 : 24;
		xsnprintf(buf, n, "%s/%d", s, l);
	} else {
		int l = plen > 0 && plen <= 128 ? plen : (ip6_default64 ? 64 : 128);
		xsnprintf(buf, n, "%s/%d", s, l);
	}
}

static bool check_names(const struct topology *t)
{
	struct {
		const char *kind, *name;
	} *all;
	size_t n = 1 + (size_t)t->n_hosts + t->n_guests + t->n_nodes, k = 0;
	all = calloc(n, sizeof(*all));
	if (!all)
		return false;
	all[k].kind = "underlay";
	all[k++].name = "ul";
	for (unsigned i = 0; i < t->n_hosts; i++) {
		all[k].kind = "host";
		all[k++].name = t->hosts[i].name;
	}
	for (unsigned i = 0; i < t->n_guests; i++) {
		all[k].kind = "guest";
		all[k++].name = t->guests[i].name;
	}
	for (unsigned i = 0; i < t->n_nodes; i++) {
		all[k].kind = "node";
		all[k++].name = t->nodes[i].name;
	}
	bool ok = true;
	for (size_t i = 0; i < k; i++)
		for (size_t j = i + 1; j < k; j++)
			if (!strcmp(all[i].name, all[j].name)) {
				err("%s and %s are both named \"%s\": the lab needs one namespace per name",
				    all[i].kind, all[j].kind, all[j].name);
				ok = false;
			}
	free(all);
	return ok;
}

static int add_netns(const char *name)
{
	char ns[PATH_MAX];
	ns_name(ns, sizeof(ns), name);
	if (append_line("netns", "%s", ns) < 0)
		return -1;
	return 0;
}

/* Readiness of detourd: the socket accepts a connection and
 * `detourctl --socket S show ports` exits 0. */
static int wait_detourd(const char *host, pid_t pid, const char *sock, const char *logpath)
{
	char ctl[PATH_MAX];
	xsnprintf(ctl, sizeof(ctl), "%s/detourctl", g_bindir);
	long long deadline = now_ms() + READY_TIMEOUT_MS;
	for (;;) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			if (WIFEXITED(status))
				err("detourd of host %s exited with status %d during start-up",
				    host, WEXITSTATUS(status));
			else
				err("detourd of host %s died (signal %d) during start-up", host,
				    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
			print_log_tail(logpath);
			return -1;
		}
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			struct sockaddr_un sa = {.sun_family = AF_UNIX};
			xsnprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
			int c = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
			close(fd);
			if (c == 0) {
				char *argv[] = {ctl, "--socket", (char *)sock, "show", "ports", NULL};
				if (run(NULL, argv, NULL, true, 2000) == 0)
					return 0;
			}
		}
		if (now_ms() > deadline) {
			err("detourd of host %s not ready within %d s (socket %s)", host,
			    READY_TIMEOUT_MS / 1000, sock);
			print_log_tail(logpath);
			return -1;
		}
		sleep_ms(POLL_MS);
	}
}

/* Readiness of detour-sn: it has a packet socket open in its namespace. If
 * it never shows one but keeps running, go on with a warning. */
static int wait_sn(const char *node, pid_t pid, const char *logpath)
{
	long long deadline = now_ms() + SN_READY_TIMEOUT_MS;
	for (;;) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			err("detour-sn of node %s exited during start-up (status %d)", node,
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			print_log_tail(logpath);
			return -1;
		}
		char p[64];
		xsnprintf(p, sizeof(p), "/proc/%d/net/packet", (int)pid);
		FILE *f = fopen(p, "re");
		if (f) {
			char line[256];
			int lines = 0;
			while (fgets(line, sizeof(line), f))
				lines++;
			fclose(f);
			if (lines > 1)
				return 0;
		}
		if (now_ms() > deadline) {
			err("warning: detour-sn of node %s shows no packet socket after %d s; going on",
			    node, SN_READY_TIMEOUT_MS / 1000);
			return 0;
		}
		sleep_ms(10);
	}
}

static const char L2_NFT[] =
	"table bridge detour {\n"
	"\tchain forward {\n"
	"\t\ttype filter hook forward priority 0; policy accept;\n"
	"\t\tcounter\n"
	"\t}\n"
	"}\n";

static const char L3_NFT[] =
	"table inet detour {\n"
	"\tchain forward {\n"
	"\t\ttype filter hook forward priority 0; policy accept;\n"
	"\t\tcounter\n"
	"\t}\n"
	"\tchain prerouting {\n"
	"\t\ttype nat hook prerouting priority -100;\n"
	"\t}\n"
	"}\n";

static int build_lab(const struct topology *t, const char *cfg)
{
	char ns[PATH_MAX], peerns[PATH_MAX], addr[IPADDR_STRLEN + 8], mac[MAC_STRLEN];
	struct sbuf root = {0}, nsb = {0};
	int rc = -1;
	struct sbuf *per = NULL; /* per namespace batch: 0 = ul, hosts, guests, nodes */
	size_t nper = 1 + (size_t)t->n_hosts + t->n_guests + t->n_nodes;
	per = calloc(nper, sizeof(*per));
	if (!per) {
		err("out of memory");
		return -1;
	}
	size_t hb = 1, gb = hb + t->n_hosts, nb = gb + t->n_guests;

	/* 1. namespaces (recorded before they exist, so a failure removes them) */
	if (add_netns("ul") < 0)
		goto out;
	ns_name(ns, sizeof(ns), "ul");
	sb_printf(&nsb, "netns add %s\n", ns);
	for (unsigned i = 0; i < t->n_hosts; i++) {
		if (add_netns(t->hosts[i].name) < 0)
			goto out;
		ns_name(ns, sizeof(ns), t->hosts[i].name);
		sb_printf(&nsb, "netns add %s\n", ns);
	}
	for (unsigned i = 0; i < t->n_guests; i++) {
		if (add_netns(t->guests[i].name) < 0)
			goto out;
		ns_name(ns, sizeof(ns), t->guests[i].name);
		sb_printf(&nsb, "netns add %s\n", ns);
	}
	for (unsigned i = 0; i < t->n_nodes; i++) {
		if (add_netns(t->nodes[i].name) < 0)
			goto out;
		ns_name(ns, sizeof(ns), t->nodes[i].name);
		sb_printf(&nsb, "netns add %s\n", ns);
	}

	if (ip_batch(NULL, &nsb, false, false) != 0) {
		err("creating namespaces failed (see the ip error above)");
		goto out;
	}
	/* Kernel IPv6 on the host-side ports, the underlay bridge and the l2
	 * and nsh nodes would only send router solicitations and MLD reports
	 * into the data plane and the service nodes' counters: off by default
	 * for interfaces created there. Guests and l3 nodes keep IPv6. */
	{
		static const char *const v6off[] = {"net/ipv6/conf/default/disable_ipv6", "1"};
		/* The underlay bridge stands in for the datacenter's switches: no
		 * iptables of this machine on it (br_netfilter, when some other
		 * software loaded it, would run them there, charged to the sending
		 * host's data plane) */
		static const char *const ulkv[] = {
			"net/ipv6/conf/default/disable_ipv6", "1",
			"net/bridge/bridge-nf-call-iptables", "?0",
			"net/bridge/bridge-nf-call-ip6tables", "?0",
			"net/bridge/bridge-nf-call-arptables", "?0",
		};
		ns_name(ns, sizeof(ns), "ul");
		if (set_sysctls(ns, ulkv, ARRAY_SIZE(ulkv)) < 0)
			goto sysctl_fail;
		for (unsigned i = 0; i < t->n_hosts; i++) {
			ns_name(ns, sizeof(ns), t->hosts[i].name);
			if (set_sysctls(ns, v6off, 2) < 0)
				goto sysctl_fail;
		}
		for (unsigned i = 0; i < t->n_nodes; i++) {
			const struct topo_node *n = &t->nodes[i];
			if (n->service >= t->n_services || t->services[n->service].mode == SVC_MODE_L3)
				continue;
			ns_name(ns, sizeof(ns), n->name);
			if (set_sysctls(ns, v6off, 2) < 0)
				goto sysctl_fail;
		}
	}

	/* 2. veth pairs, created straight into their namespaces; those of
	 * guests and nodes with one queue per CPU, so that detourd's workers
	 * can each take an AF_XDP queue */
	char vq[64];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	ncpu = ncpu < 1 ? 1 : ncpu > 16 ? 16 : ncpu;
	xsnprintf(vq, sizeof(vq), " numtxqueues %ld numrxqueues %ld", ncpu, ncpu);
	char ulns[PATH_MAX];
	ns_name(ulns, sizeof(ulns), "ul");
	sb_printf(&per[0], "link set lo up\nlink add br0 type bridge\nlink set br0 up\n");
	for (unsigned i = 0; i < t->n_hosts; i++) {
		const struct topo_host *h = &t->hosts[i];
		ns_name(ns, sizeof(ns), h->name);
		/* one queue per CPU: an AF_XDP uplink (topology 'uplink: ul0') gives each worker its own */
		sb_printf(&root, "link add name ul0%s netns %s type veth peer name uh%u%s netns %s\n", vq, ns, i, vq,
			  ulns);
		sb_printf(&per[0], "link set uh%u master br0\nlink set uh%u up\n", i, i);
		fmt_addr(&h->vtep, ipaddr_is_v4(&h->vtep) ? 96 + 24 : 64, true, addr, sizeof(addr));
		sb_printf(&per[hb + i], "link set lo up\naddr add %s dev ul0%s\nlink set ul0 up\n", addr,
			  ipaddr_is_v4(&h->vtep) ? "" : " nodad");
	}
	for (unsigned i = 0; i < t->n_guests; i++) {
		const struct topo_guest *g = &t->guests[i];
		if (g->host >= t->n_hosts) {
			err("guest %s: bad host index", g->name);
			goto out;
		}
		ns_name(ns, sizeof(ns), g->name);
		ns_name(peerns, sizeof(peerns), t->hosts[g->host].name);
		sb_printf(&root, "link add name eth0 netns %s%s type veth peer name %s netns %s%s\n", ns, vq,
			  g->port, peerns, vq);
		mac_format(&g->mac, mac);
		struct sbuf *b = &per[gb + i];
		sb_printf(b, "link set lo up\nlink set eth0 address %s\n", mac);
		if (g->has_ip) {
			fmt_addr(&g->ip, g->plen, true, addr, sizeof(addr));
			sb_printf(b, "addr add %s dev eth0%s\n", addr,
				  ipaddr_is_v4(&g->ip) ? "" : " nodad");
		}
		sb_printf(b, "link set eth0 up\n");
		sb_printf(&per[hb + g->host], "link set %s up\n", g->port);
	}
	for (unsigned i = 0; i < t->n_nodes; i++) {
		const struct topo_node *n = &t->nodes[i];
		if (n->host >= t->n_hosts || n->service >= t->n_services) {
			err("node %s: bad host or service index", n->name);
			goto out;
		}
		enum svc_mode mode = t->services[n->service].mode;
		ns_name(ns, sizeof(ns), n->name);
		ns_name(peerns, sizeof(peerns), t->hosts[n->host].name);
		struct sbuf *b = &per[nb + i];
		sb_printf(b, "link set lo up\n");
		if (mode == SVC_MODE_L2) {
			if (n->n_ports != 2) {
				err("l2 node %s needs two ports [in, out]", n->name);
				goto out;
			}
			sb_printf(&root, "link add name in netns %s%s type veth peer name %s netns %s%s\n",
				  ns, vq, n->ports[0], peerns, vq);
			sb_printf(&root, "link add name out netns %s%s type veth peer name %s netns %s%s\n",
				  ns, vq, n->ports[1], peerns, vq);
			sb_printf(b, "link add br0 type bridge\n"
				     "link set in master br0\nlink set out master br0\n"
				     "link set in up\nlink set out up\nlink set br0 up\n");
			sb_printf(&per[hb + n->host], "link set %s up\nlink set %s up\n", n->ports[0],
				  n->ports[1]);
		} else {
			if (n->n_ports < 1) {
				err("node %s needs a port", n->name);
				goto out;
			}
			sb_printf(&root, "link add name eth0 netns %s%s type veth peer name %s netns %s%s\n",
				  ns, vq, n->ports[0], peerns, vq);
			if (n->has_mac) {
				mac_format(&n->mac, mac);
				sb_printf(b, "link set eth0 address %s\n", mac);
			}
			/* NSH adds a header and an Ethernet header in front of the
			 * guest's frame: the node link carries more than the guest MTU */
			if (mode == SVC_MODE_NSH) {
				sb_printf(b, "link set eth0 mtu %d\n", NSH_LINK_MTU);
				sb_printf(&per[hb + n->host], "link set %s mtu %d\n", n->ports[0], NSH_LINK_MTU);
			}
			sb_printf(b, "link set eth0 up\n");
			if (mode == SVC_MODE_L3)
				sb_printf(b, "addr add 169.254.0.1/32 dev eth0\n"
					     "route add default dev eth0\n"
					     "route add ::/0 dev eth0\n");
			sb_printf(&per[hb + n->host], "link set %s up\n", n->ports[0]);
		}
	}
	if (ip_batch(NULL, &root, false, false) != 0) {
		err("creating namespaces and veth pairs failed (see the ip error above)");
		goto out;
	}

	/* 3. sysctls before addresses and routes (IPv6 VTEPs, l3 nodes) */
	for (unsigned i = 0; i < t->n_hosts; i++) {
		static const char *const v6on[] = {"net/ipv6/conf/ul0/disable_ipv6", "0"};
		if (ipaddr_is_v4(&t->hosts[i].vtep))
			continue;
		ns_name(ns, sizeof(ns), t->hosts[i].name);
		if (set_sysctls(ns, v6on, 2) < 0)
			goto sysctl_fail;
	}
	for (unsigned i = 0; i < t->n_nodes; i++) {
		const struct topo_node *n = &t->nodes[i];
		if (t->services[n->service].mode != SVC_MODE_L3)
			continue;
		static const char *const kv[] = {
			"net/ipv4/ip_forward", "1",
			"net/ipv4/conf/all/send_redirects", "0",
			"net/ipv4/conf/eth0/send_redirects", "0",
			"net/ipv4/conf/all/rp_filter", "0",
			"net/ipv4/conf/eth0/rp_filter", "0",
			"net/ipv6/conf/all/forwarding", "1",
		};
		ns_name(ns, sizeof(ns), n->name);
		if (set_sysctls(ns, kv, ARRAY_SIZE(kv)) < 0)
			goto sysctl_fail;
	}

	/* 4. per namespace configuration */
	for (size_t i = 0; i < nper; i++) {
		const char *name = i == 0 ? "ul"
				   : i < gb   ? t->hosts[i - hb].name
				   : i < nb   ? t->guests[i - gb].name
					      : t->nodes[i - nb].name;
		ns_name(ns, sizeof(ns), name);
		if (ip_batch(ns, &per[i], false, false) != 0) {
			err("configuring namespace %s failed (see the ip error above)", ns);
			goto out;
		}
	}

	/* 5. nftables in l2 and l3 nodes */
	for (unsigned i = 0; i < t->n_nodes; i++) {
		const struct topo_node *n = &t->nodes[i];
		enum svc_mode mode = t->services[n->service].mode;
		if (mode == SVC_MODE_NSH)
			continue;
		ns_name(ns, sizeof(ns), n->name);
		char *argv[] = {"nft", "-f", "-", NULL};
		if (run(ns, argv, mode == SVC_MODE_L2 ? L2_NFT : L3_NFT, false, 0) != 0) {
			err("loading nftables rules in %s failed", ns);
			goto out;
		}
	}

	/* 6. service node programs */
	for (unsigned i = 0; i < t->n_nodes; i++) {
		const struct topo_node *n = &t->nodes[i];
		if (t->services[n->service].mode != SVC_MODE_NSH)
			continue;
		char bin[PATH_MAX], stats[PATH_MAX], logp[PATH_MAX], file[TOPO_NAME_MAX + 8];
		xsnprintf(bin, sizeof(bin), "%s/detour-sn", g_bindir);
		xsnprintf(file, sizeof(file), "%s.stats", n->name);
		state_path(stats, sizeof(stats), file);
		xsnprintf(file, sizeof(file), "%s.log", n->name);
		state_path(logp, sizeof(logp), file);
		ns_name(ns, sizeof(ns), n->name);
		char *argv[10];
		int k = 0;
		argv[k++] = bin;
		argv[k++] = "--iface";
		argv[k++] = "eth0";
		if (n->has_mac) {
			mac_format(&n->mac, mac);
			argv[k++] = "--mac";
			argv[k++] = mac;
		}
		argv[k++] = "--stats";
		argv[k++] = stats;
		argv[k] = NULL;
		pid_t pid = start_daemon(ns, n->name, argv, logp);
		if (pid < 0 || wait_sn(n->name, pid, logp) < 0) {
			err("starting detour-sn for node %s failed", n->name);
			goto out;
		}
	}

	/* 7. one detourd per host */
	for (unsigned i = 0; i < t->n_hosts; i++) {
		const struct topo_host *h = &t->hosts[i];
		char bin[PATH_MAX], sock[PATH_MAX], logp[PATH_MAX], file[TOPO_NAME_MAX + 8];
		xsnprintf(bin, sizeof(bin), "%s/detourd", g_bindir);
		xsnprintf(sock, sizeof(sock), RUN_DIR "/%s-%s.sock", g_prefix, h->name);
		xsnprintf(file, sizeof(file), "%s.log", h->name);
		state_path(logp, sizeof(logp), file);
		unlink(sock);
		ns_name(ns, sizeof(ns), h->name);
		const char *workers = getenv("DETOUR_LAB_WORKERS");
		char *argv[] = {bin, "--config", (char *)cfg, "--host", (char *)h->name,
				"--socket", sock, workers ? "--workers" : NULL, (char *)workers, NULL};
		pid_t pid = start_daemon(ns, h->name, argv, logp);
		if (pid < 0 || wait_detourd(h->name, pid, sock, logp) < 0) {
			err("starting detourd for host %s failed", h->name);
			goto out;
		}
	}
	rc = 0;
	goto out;
sysctl_fail:
	err("setting sysctls in %s failed", ns);
out:
	sb_free(&root);
	sb_free(&nsb);
	for (size_t i = 0; i < nper; i++)
		sb_free(&per[i]);
	free(per);
	return rc;
}

static int do_up(const char *file)
{
	struct topo_errors e = {0};
	struct topology *t = topology_load_file(file, &e);
	if (!t) {
		print_topo_errors(file, &e);
		err("%s is not a valid topology: nothing built", file);
		return 1;
	}
	int rc = 1;
	if (!check_names(t))
		goto out;
	const char *need[] = {"detourd", "detourctl", "detour-sn"};
	bool has_nsh = false;
	for (unsigned i = 0; i < t->n_nodes; i++)
		if (t->services[t->nodes[i].service].mode == SVC_MODE_NSH)
			has_nsh = true;
	for (size_t i = 0; i < ARRAY_SIZE(need); i++) {
		if (i == 2 && !has_nsh)
			continue;
		char p[PATH_MAX];
		xsnprintf(p, sizeof(p), "%s/%s", g_bindir, need[i]);
		if (access(p, X_OK) != 0) {
			err("%s not found (expected next to detour-lab); run make first", p);
			goto out;
		}
	}
	if (path_exists(g_statedir)) {
		fprintf(stderr, "detour-lab: a lab with prefix %s exists; taking it down first\n",
			g_prefix);
		do_down(NULL);
	}
	if (mkdir(RUN_DIR, 0755) < 0 && errno != EEXIST) {
		err("cannot create %s: %s", RUN_DIR, strerror(errno));
		goto out;
	}
	if (mkdir(g_statedir, 0755) < 0) {
		err("cannot create %s: %s", g_statedir, strerror(errno));
		goto out;
	}
	char cfg[PATH_MAX];
	state_path(cfg, sizeof(cfg), "topology.yaml");
	if (copy_file(file, cfg) < 0)
		goto fail;
	for (unsigned i = 0; i < t->n_hosts; i++)
		if (append_line("names", "host %s", t->hosts[i].name) < 0)
			goto fail;
	for (unsigned i = 0; i < t->n_guests; i++)
		if (append_line("names", "guest %s", t->guests[i].name) < 0)
			goto fail;
	for (unsigned i = 0; i < t->n_nodes; i++)
		if (append_line("names", "node %s %s", t->nodes[i].name,
				svc_mode_name(t->services[t->nodes[i].service].mode)) < 0)
			goto fail;
	if (build_lab(t, cfg) < 0)
		goto fail;
	printf("lab %s is up: %u hosts, %u guests, %u service nodes (state in %s)\n", g_prefix,
	       t->n_hosts, t->n_guests, t->n_nodes, g_statedir);
	rc = 0;
	goto out;
fail:
	err("bringing the lab up failed; removing what was made");
	do_down(NULL);
out:
	topology_free(t);
	return rc;
}

/* ---- exec and pid ------------------------------------------------------- */

static bool is_host(const char *name)
{
	struct strlist names = {0};
	read_lines("names", &names);
	bool yes = false;
	for (size_t i = 0; i < names.n; i++)
		if (!strncmp(names.v[i], "host ", 5) && !strcmp(names.v[i] + 5, name))
			yes = true;
	sl_free(&names);
	return yes;
}

static int do_exec(const char *name, char **cmd)
{
	char ns[PATH_MAX];
	ns_name(ns, sizeof(ns), name);
	if (!netns_exists(ns)) {
		err("no namespace %s: is the lab with prefix %s up, and is %s a host, guest or node "
		    "of it?",
		    ns, g_prefix, name);
		return 1;
	}
	if (enter_netns(ns) < 0)
		return 1;
	/* Like `ip netns exec`: a private mount namespace with this netns's sysfs.
	 * Best effort: tools that need it are rare. */
	if (unshare(CLONE_NEWNS) == 0 && mount("", "/", NULL, MS_SLAVE | MS_REC, NULL) == 0) {
		if (umount2("/sys", MNT_DETACH) == 0)
			mount(ns, "/sys", "sysfs", 0, NULL);
	}
	if (is_host(name)) {
		char sock[PATH_MAX];
		xsnprintf(sock, sizeof(sock), RUN_DIR "/%s-%s.sock", g_prefix, name);
		setenv("DETOUR_SOCKET", sock, 1);
	}
	execvp(cmd[0], cmd);
	err("cannot run %s: %s", cmd[0], strerror(errno));
	return 127;
}

static int do_pid(const char *name)
{
	if (strchr(name, '/') || !name[0]) {
		err("bad name \"%s\"", name);
		return 2;
	}
	char file[PATH_MAX], p[PATH_MAX];
	xsnprintf(file, sizeof(file), "%s.pid", name);
	state_path(p, sizeof(p), file);
	FILE *f = fopen(p, "re");
	if (!f) {
		if (!path_exists(g_statedir))
			err("no lab with prefix %s is up", g_prefix);
		else
			err("no process recorded for %s (pid works for hosts and nsh nodes)", name);
		return 1;
	}
	int pid = 0;
	int ok = fscanf(f, "%d", &pid);
	fclose(f);
	if (ok != 1 || pid <= 0) {
		err("bad pid file %s", p);
		return 1;
	}
	printf("%d\n", pid);
	return 0;
}

/* ---- main ----------------------------------------------------------------- */

static bool valid_prefix(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > PREFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

static int set_bindir(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		err("cannot resolve /proc/self/exe: %s", strerror(errno));
		return -1;
	}
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (!slash) {
		err("odd executable path %s", self);
		return -1;
	}
	*slash = 0;
	xsnprintf(g_bindir, sizeof(g_bindir), "%s", self[0] ? self : "/");
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--prefix") && i + 1 < argc) {
			g_prefix = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "--prefix=", 9)) {
			g_prefix = argv[i] + 9;
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			err("unknown option %s", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (!valid_prefix(g_prefix)) {
		err("bad prefix \"%s\": 1 to %d letters, digits or _", g_prefix, PREFIX_MAX);
		return 2;
	}
	xsnprintf(g_statedir, sizeof(g_statedir), RUN_DIR "/lab-%s", g_prefix);
	const char *cmd = argv[i++];
	int nargs = argc - i;
	if (!strcmp(cmd, "up")) {
		if (nargs != 1) {
			usage(stderr);
			return 2;
		}
	} else if (!strcmp(cmd, "down")) {
		if (nargs > 1) {
			usage(stderr);
			return 2;
		}
	} else if (!strcmp(cmd, "exec")) {
		if (nargs < 2) {
			usage(stderr);
			return 2;
		}
	} else if (!strcmp(cmd, "pid")) {
		if (nargs != 1) {
			usage(stderr);
			return 2;
		}
		return do_pid(argv[i]);
	} else {
		err("unknown command %s", cmd);
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "exec") && geteuid() != 0) {
		err("%s needs root (it creates network namespaces)", cmd);
		return 1;
	}
	if (!strcmp(cmd, "exec")) {
		if (strchr(argv[i], '/')) {
			err("bad name \"%s\"", argv[i]);
			return 2;
		}
		return do_exec(argv[i], argv + i + 1);
	}
	if (set_bindir() < 0)
		return 1;
	if (!strcmp(cmd, "up"))
		return do_up(argv[i]);
	return do_down(nargs ? argv[i] : NULL);
}
