/* control.c - operator control channel (see control.h): the daemon-side
 * UNIX socket server with non-blocking per-connection state, the request
 * parser/dispatcher, and the client helper used by detourctl. Owns the
 * socket file and its connections only; never touches forwarding state
 * (handlers, owned by the daemon, do that). */
#include "control.h"
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CMD_ERRLEN 1024

struct handler_ent {
	char *cmd;
	char *sub; /* NULL = any args */
	control_handler h;
	void *ctx;
};

enum conn_state { CONN_READ, CONN_WRITE };

struct conn {
	int fd;
	enum conn_state state;
	int64_t deadline; /* monotonic ms */
	char *in;
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	struct conn *next;
};

struct control {
	int lfd, epfd, tfd;
	char *path;
	dev_t dev;
	ino_t ino;
	struct handler_ent *h;
	size_t nh, caph;
	struct conn *conns;
	size_t nconns;
	/* epoll tags: their addresses identify the listening socket and timer */
	char tag_listen, tag_timer;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- dispatch */

struct control *control_new(void)
{
	struct control *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->lfd = c->epfd = c->tfd = -1;
	return c;
}

int control_register(struct control *c, const char *cmd, const char *sub,
		     control_handler h, void *ctx)
{
	if (!c || !cmd || !*cmd || !h || (sub && !*sub)) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < c->nh; i++) {
		const struct handler_ent *e = &c->h[i];
		if (!strcmp(e->cmd, cmd) && ((!e->sub && !sub) || (e->sub && sub && !strcmp(e->sub, sub)))) {
			errno = EEXIST;
			return -1;
		}
	}
	if (c->nh == c->caph) {
		size_t ncap = c->caph ? c->caph * 2 : 16;
		struct handler_ent *n = realloc(c->h, ncap * sizeof(*n));
		if (!n) {
			errno = ENOMEM;
			return -1;
		}
		c->h = n;
		c->caph = ncap;
	}
	struct handler_ent *e = &c->h[c->nh];
	e->cmd = strdup(cmd);
	e->sub = sub ? strdup(sub) : NULL;
	if (!e->cmd || (sub && !e->sub)) {
		free(e->cmd);
		free(e->sub);
		errno = ENOMEM;
		return -1;
	}
	e->h = h;
	e->ctx = ctx;
	c->nh++;
	return 0;
}

/* A string for an error message: printable ASCII only, at most 64 chars. */
static void safe_str(char *dst, size_t dstlen, const char *s)
{
	size_t j = 0;

	for (size_t i = 0; s[i] && j + 4 < dstlen; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (i >= 64) {
			dst[j++] = '.';
			dst[j++] = '.';
			dst[j++] = '.';
			break;
		}
		dst[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	dst[j] = '\0';
}

/* Comma-separated list of the subcommands registered for cmd, or of all
 * commands when cmd is NULL (each listed once, in registration order). */
static void list_names(const struct control *c, const char *cmd, char *out, size_t outlen)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < c->nh; i++) {
		const char *name = cmd ? c->h[i].sub : c->h[i].cmd;
		bool dup = false;
		if (cmd && (strcmp(c->h[i].cmd, cmd) || !name))
			continue;
		for (size_t k = 0; k < i && !dup; k++) {
			const char *prev = cmd ? c->h[k].sub : c->h[k].cmd;
			if (cmd && (strcmp(c->h[k].cmd, cmd) || !prev))
				continue;
			dup = !strcmp(prev, name);
		}
		if (dup)
			continue;
		int n = snprintf(out + len, outlen - len, "%s%s", len ? ", " : "", name);
		if (n < 0 || (size_t)n >= outlen - len) {
			out[len] = '\0';
			return;
		}
		len += (size_t)n;
	}
}

static char *reply_dump(json_t *reply)
{
	char *s = reply ? json_dumps(reply, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(reply);
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}

static char *reply_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *reply_error(const char *fmt, ...)
{
	char msg[CMD_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the message may quote request bytes (jansson's parse errors do):
	 * keep it valid UTF-8 by turning anything but printable ASCII into '?' */
	for (char *m = msg; *m; m++)
		if ((unsigned char)*m < 0x20 || (unsigned char)*m >= 0x7f)
			*m = '?';
	return reply_dump(json_pack("{s:b,s:s}", "ok", 0, "error", msg));
}

static char *dispatch(struct control *c, const char *cmd, json_t *args)
{
	const char *sub = json_array_size(args) ? json_string_value(json_array_get(args, 0)) : NULL;
	const struct handler_ent *exact = NULL, *any = NULL;
	bool has_subs = false;
	char names[512], sc[80], ss[80];

	for (size_t i = 0; i < c->nh; i++) {
		const struct handler_ent *e = &c->h[i];
		if (strcmp(e->cmd, cmd))
			continue;
		if (!e->sub)
			any = e;
		else {
			has_subs = true;
			if (sub && !strcmp(e->sub, sub))
				exact = e;
		}
	}
	safe_str(sc, sizeof(sc), cmd);
	if (!exact && !any) {
		if (has_subs) {
			list_names(c, cmd, names, sizeof(names));
			if (!sub)
				return reply_error("'%s' needs an argument, one of: %s", sc, names);
			safe_str(ss, sizeof(ss), sub);
			return reply_error("unknown %s object '%s' (expected one of: %s)", sc, ss, names);
		}
		list_names(c, NULL, names, sizeof(names));
		return reply_error("unknown command '%s' (known commands: %s)", sc,
				   names[0] ? names : "none");
	}

	const struct handler_ent *e = exact ? exact : any;
	json_t *hargs = args;
	if (exact) {
		hargs = json_array();
		if (!hargs)
			return NULL;
		for (size_t i = 1; i < json_array_size(args); i++)
			json_array_append(hargs, json_array_get(args, i));
	} else {
		json_incref(hargs);
	}

	char err[CMD_ERRLEN];
	memset(err, 0, sizeof(err));
	json_t *res = e->h(e->ctx, hargs, err, sizeof(err));
	json_decref(hargs);
	err[sizeof(err) - 1] = '\0';

	if (!err[0] && res) {
		json_t *reply = json_object();
		if (!reply || json_object_set_new(reply, "ok", json_true()) ||
		    json_object_set_new(reply, "result", res)) {
			json_decref(reply);
			return NULL;
		}
		char *line = reply_dump(reply);
		return line ? line : reply_error("internal error: cannot encode the result of '%s'", sc);
	}
	if (!err[0])
		snprintf(err, sizeof(err), "'%s' failed", sc);
	json_t *reply = json_pack("{s:b,s:s}", "ok", 0, "error", err);
	if (!reply) {
		json_decref(res);
		return NULL;
	}
	if (json_is_object(res)) {
		const char *k;
		json_t *v;
		json_object_foreach(res, k, v) {
			if (strcmp(k, "ok") && strcmp(k, "error"))
				json_object_set(reply, k, v);
		}
	} else if (res && !json_is_null(res)) {
		json_object_set(reply, "result", res);
	}
	json_decref(res);
	char *line = reply_dump(reply);
	return line ? line : reply_error("%s", err);
}

char *control_handle_request(struct control *c, const char *buf, size_t len)
{
	json_error_t jerr;

	if (len > CONTROL_MAX_REQUEST)
		return reply_error("request too long (more than %d bytes)", CONTROL_MAX_REQUEST);
	/* a trailing newline (and CR) is the request terminator, not content */
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (!len)
		return reply_error("empty request");
	json_t *req = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!req)
		return reply_error("request is not valid JSON: %s (at byte %d)", jerr.text,
				   jerr.position);
	char *out;
	json_t *cmd = json_object_get(req, "cmd");
	json_t *args = json_object_get(req, "args");
	json_t *js = json_object_get(req, "json");
	if (!json_is_object(req))
		out = reply_error("request must be a JSON object");
	else if (!cmd)
		out = reply_error("request has no \"cmd\"");
	else if (!json_is_string(cmd) || !json_string_length(cmd))
		out = reply_error("\"cmd\" must be a non-empty string");
	else if (strlen(json_string_value(cmd)) != json_string_length(cmd))
		out = reply_error("\"cmd\" must not contain NUL characters");
	else if (args && !json_is_array(args))
		out = reply_error("\"args\" must be an array of strings");
	else if (js && !json_is_boolean(js))
		out = reply_error("\"json\" must be true or false");
	else {
		out = NULL;
		for (size_t i = 0; i < json_array_size(args); i++) {
			json_t *a = json_array_get(args, i);
			if (!json_is_string(a)) {
				out = reply_error("\"args\"[%zu] must be a string", i);
				break;
			}
			if (strlen(json_string_value(a)) != json_string_length(a)) {
				out = reply_error("\"args\"[%zu] must not contain NUL characters", i);
				break;
			}
		}
		if (!out) {
			json_t *a = args ? json_incref(args) : json_array();
			out = a ? dispatch(c, json_string_value(cmd), a) : NULL;
			json_decref(a);
		}
	}
	json_decref(req);
	return out;
}

/* ------------------------------------------------------------------ server */

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(tmp))
		return 0;
	memcpy(tmp, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		char save = tmp[i];
		tmp[i] = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
			set_err(err, errlen, "cannot create directory %s: %s", tmp, strerror(errno));
			return -1;
		}
		tmp[i] = save;
	}
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		set_err(err, errlen, "%s is not a directory", dir);
		return -1;
	}
	return 0;
}

static int fill_addr(struct sockaddr_un *sa, const char *path, char *err, size_t errlen)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (!path || !*path) {
		set_err(err, errlen, "empty control socket path");
		return -1;
	}
	if (strlen(path) >= sizeof(sa->sun_path)) {
		set_err(err, errlen, "control socket path too long (max %zu bytes): %s",
		       sizeof(sa->sun_path) - 1, path);
		return -1;
	}
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

/* Is a server answering at sa? */
static bool socket_alive(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int e = errno;
	close(fd);
	return r == 0 || (r < 0 && e == EAGAIN); /* EAGAIN: alive, backlog full */
}

static int ep_add(int epfd, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = {.events = events, .data.ptr = ptr};
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

struct control *control_open(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;

	if (fill_addr(&sa, path, err, errlen) < 0)
		return NULL;

	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (mkdir_p(dir, err, errlen) < 0)
			return NULL;
	}

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			set_err(err, errlen, "%s exists and is not a socket; not removing it", path);
			return NULL;
		}
		if (socket_alive(&sa)) {
			set_err(err, errlen, "another detourd is already listening on %s", path);
			return NULL;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			set_err(err, errlen, "cannot remove stale socket %s: %s", path, strerror(errno));
			return NULL;
		}
	}

	struct control *c = control_new();
	if (!c) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	c->path = strdup(path);
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!c->path || c->lfd < 0) {
		set_err(err, errlen, "cannot create control socket: %s", strerror(errno));
		goto fail;
	}
	if (bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		set_err(err, errlen, "cannot bind control socket %s: %s", path, strerror(errno));
		free(c->path);
		c->path = NULL; /* not ours: do not unlink */
		goto fail;
	}
	if (chmod(path, 0660) < 0 || stat(path, &st) < 0) {
		set_err(err, errlen, "cannot set mode of %s: %s", path, strerror(errno));
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if (listen(c->lfd, 64) < 0) {
		set_err(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		goto fail;
	}
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->epfd < 0 || c->tfd < 0 || ep_add(c->epfd, c->lfd, EPOLLIN, &c->tag_listen) < 0 ||
	    ep_add(c->epfd, c->tfd, EPOLLIN, &c->tag_timer) < 0) {
		set_err(err, errlen, "cannot set up control socket polling: %s", strerror(errno));
		goto fail;
	}
	return c;
fail:
	control_close(c);
	return NULL;
}

int control_fd(const struct control *c)
{
	return c ? c->epfd : -1;
}

static void conn_free(struct control *c, struct conn *k)
{
	struct conn **pp = &c->conns;

	while (*pp && *pp != k)
		pp = &(*pp)->next;
	if (*pp)
		*pp = k->next;
	if (c->epfd >= 0)
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, k->fd, NULL);
	close(k->fd);
	free(k->in);
	free(k->out);
	free(k);
	c->nconns--;
}

/* Best effort, one non-blocking write: used when giving up on a client. */
static void send_final(int fd, const char *line)
{
	if (line) {
		ssize_t r = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)r;
	}
}

/* Writes what the socket takes; frees the connection when done or dead. */
static void conn_write(struct control *c, struct conn *k)
{
	while (k->outoff < k->outlen) {
		ssize_t r = send(k->fd, k->out + k->outoff, k->outlen - k->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0) {
			k->outoff += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (k->state != CONN_WRITE) {
				struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = k};
				k->state = CONN_WRITE;
				k->deadline = now_ms() + CONTROL_WRITE_TIMEOUT_MS;
				epoll_ctl(c->epfd, EPOLL_CTL_MOD, k->fd, &ev);
			}
			return;
		}
		break; /* peer gone */
	}
	conn_free(c, k);
}

static void conn_reply(struct control *c, struct conn *k, char *line)
{
	if (!line) {
		conn_free(c, k);
		return;
	}
	k->out = line;
	k->outlen = strlen(line);
	k->outoff = 0;
	free(k->in);
	k->in = NULL;
	conn_write(c, k);
}

static void conn_read(struct control *c, struct conn *k)
{
	for (;;) {
		size_t room = CONTROL_MAX_REQUEST + 1 - k->inlen;
		if (room == 0) {
			conn_reply(c, k, reply_error("request too long (more than %d bytes)",
						     CONTROL_MAX_REQUEST));
			return;
		}
		ssize_t r = recv(k->fd, k->in + k->inlen, room, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r < 0) {
			conn_free(c, k);
			return;
		}
		if (r == 0) {
			/* EOF: nothing sent (a probe) -> just close; else treat
			 * what came as the request */
			if (k->inlen == 0) {
				conn_free(c, k);
				return;
			}
			conn_reply(c, k, control_handle_request(c, k->in, k->inlen));
			return;
		}
		char *nl = memchr(k->in + k->inlen, '\n', (size_t)r);
		k->inlen += (size_t)r;
		if (nl) {
			conn_reply(c, k, control_handle_request(c, k->in, (size_t)(nl - k->in)));
			return;
		}
	}
}

static void do_accept(struct control *c)
{
	for (;;) {
		int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or EMFILE & co: try again next poll */
		}
		if (c->nconns >= CONTROL_MAX_CONNS) {
			char *line = reply_error("detourd is busy (too many control connections)");
			send_final(fd, line);
			free(line);
			close(fd);
			continue;
		}
		struct conn *k = calloc(1, sizeof(*k));
		char *in = malloc(CONTROL_MAX_REQUEST + 1);
		if (!k || !in || ep_add(c->epfd, fd, EPOLLIN, k) < 0) {
			free(k);
			free(in);
			close(fd);
			continue;
		}
		k->fd = fd;
		k->in = in;
		k->state = CONN_READ;
		k->deadline = now_ms() + CONTROL_READ_TIMEOUT_MS;
		k->next = c->conns;
		c->conns = k;
		c->nconns++;
	}
}

static void arm_timer(struct control *c)
{
	int64_t first = INT64_MAX;
	struct itimerspec its;

	for (struct conn *k = c->conns; k; k = k->next)
		if (k->deadline < first)
			first = k->deadline;
	memset(&its, 0, sizeof(its));
	if (first != INT64_MAX) {
		int64_t d = first + 1; /* absolute monotonic ms; never 0 (= disarm) */
		its.it_value.tv_sec = d / 1000;
		its.it_value.tv_nsec = (long)(d % 1000) * 1000000L;
	}
	timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

void control_poll(struct control *c)
{
	struct epoll_event evs[CONTROL_MAX_CONNS + 2];

	if (!c || c->epfd < 0)
		return;
	int n = epoll_wait(c->epfd, evs, (int)ARRAY_SIZE(evs), 0);
	bool accept_pending = false;
	for (int i = 0; i < n; i++) {
		void *p = evs[i].data.ptr;
		if (p == &c->tag_listen) {
			accept_pending = true;
		} else if (p == &c->tag_timer) {
			uint64_t ticks;
			ssize_t r = read(c->tfd, &ticks, sizeof(ticks));
			(void)r;
		} else {
			struct conn *k = p;
			if (k->state == CONN_READ)
				conn_read(c, k);
			else
				conn_write(c, k);
		}
	}
	/* accept after serving: new conns are not in this batch of events */
	if (accept_pending)
		do_accept(c);

	int64_t now = now_ms();
	for (struct conn *k = c->conns, *next; k; k = next) {
		next = k->next;
		if (k->deadline > now)
			continue;
		if (k->state == CONN_READ) {
			char *line = reply_error("timed out waiting for the request (%d ms)",
						 CONTROL_READ_TIMEOUT_MS);
			send_final(k->fd, line);
			free(line);
		}
		conn_free(c, k);
	}
	arm_timer(c);
}

void control_close(struct control *c)
{
	struct stat st;

	if (!c)
		return;
	while (c->conns)
		conn_free(c, c->conns);
	if (c->lfd >= 0)
		close(c->lfd);
	if (c->epfd >= 0)
		close(c->epfd);
	if (c->tfd >= 0)
		close(c->tfd);
	if (c->path && lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	free(c->path);
	for (size_t i = 0; i < c->nh; i++) {
		free(c->h[i].cmd);
		free(c->h[i].sub);
	}
	free(c->h);
	free(c);
}

/* ------------------------------------------------------------------ client */

static int poll_one(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, (int)MIN(left, 1000000));
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

static const char *connect_hint(int e)
{
	switch (e) {
	case ENOENT:
	case ECONNREFUSED:
		return " (is detourd running?)";
	case EACCES:
	case EPERM:
		return " (run as root or as a member of the socket's group)";
	default:
		return "";
	}
}

int control_request_timeout(const char *path, json_t *req, json_t **resp, int timeout_ms,
			    char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : CONTROL_CLIENT_TIMEOUT_MS);
	char *line = NULL, *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = -1, ret = -1;

	*resp = NULL;
	if (fill_addr(&sa, path, err, errlen) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		set_err(err, errlen, "cannot create socket: %s", strerror(errno));
		return -1;
	}
	/* AF_UNIX connect does not go "in progress": EAGAIN means the
	 * daemon's backlog is full; retry until the deadline */
	int r;
	for (;;) {
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		if (r == 0 || (errno != EINTR && errno != EAGAIN))
			break;
		if (errno == EAGAIN) {
			if (now_ms() >= deadline) {
				set_err(err, errlen, "cannot connect to detourd at %s: timed out "
				       "(daemon busy)", path);
				goto out;
			}
			poll(NULL, 0, 10);
		}
	}
	if (r < 0) {
		int e = errno;
		set_err(err, errlen, "cannot connect to detourd at %s: %s%s", path, strerror(e),
		       connect_hint(e));
		goto out;
	}

	char *body = json_dumps(req, JSON_COMPACT);
	if (!body) {
		set_err(err, errlen, "cannot encode the request");
		goto out;
	}
	size_t blen = strlen(body);
	line = realloc(body, blen + 2);
	if (!line) {
		free(body);
		set_err(err, errlen, "out of memory");
		goto out;
	}
	line[blen++] = '\n';
	line[blen] = '\0';
	size_t off = 0;
	while (off < blen) {
		ssize_t w = send(fd, line + off, blen - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (poll_one(fd, POLLOUT, deadline) > 0)
				continue;
			set_err(err, errlen, "detourd at %s did not take the request (timed out)", path);
			goto out;
		}
		break; /* EPIPE & co: the daemon may still have replied (an error) */
	}

	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= CONTROL_MAX_REPLY) {
				set_err(err, errlen, "reply from detourd at %s too long", path);
				goto out;
			}
			size_t ncap = cap ? cap * 2 : 65536;
			char *n = realloc(buf, ncap);
			if (!n) {
				set_err(err, errlen, "out of memory");
				goto out;
			}
			buf = n;
			cap = ncap;
		}
		ssize_t rd = recv(fd, buf + len, cap - 1 - len, 0);
		if (rd > 0) {
			len += (size_t)rd;
			continue;
		}
		if (rd == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (poll_one(fd, POLLIN, deadline) > 0)
				continue;
			set_err(err, errlen, "detourd at %s did not reply within %d ms", path,
			       timeout_ms > 0 ? timeout_ms : CONTROL_CLIENT_TIMEOUT_MS);
			goto out;
		}
		if (len)
			break; /* reset after a complete reply: parse what came */
		set_err(err, errlen, "reading the reply from detourd at %s: %s", path, strerror(errno));
		goto out;
	}
	if (len == 0) {
		set_err(err, errlen, "detourd at %s closed the connection without replying", path);
		goto out;
	}
	json_error_t jerr;
	json_t *j = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, &jerr);
	if (!j) {
		set_err(err, errlen, "bad reply from detourd at %s: %s", path, jerr.text);
		goto out;
	}
	if (!json_is_object(j) || !json_is_boolean(json_object_get(j, "ok"))) {
		json_decref(j);
		set_err(err, errlen, "bad reply from detourd at %s: no \"ok\" field", path);
		goto out;
	}
	*resp = j;
	ret = 0;
out:
	free(line);
	free(buf);
	close(fd);
	return ret;
}

int control_request(const char *path, json_t *req, json_t **resp, char *err, size_t errlen)
{
	return control_request_timeout(path, req, resp, CONTROL_CLIENT_TIMEOUT_MS, err, errlen);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int control_default_socket(const char *dir, char *out, size_t outlen, char *err, size_t errlen)
{
	char *names[64];
	size_t n = 0, more = 0;
	DIR *d = opendir(dir);

	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			size_t l = strlen(de->d_name);
			if (l <= 5 || strcmp(de->d_name + l - 5, ".sock"))
				continue;
			char p[PATH_MAX];
			struct stat st;
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			if (lstat(p, &st) < 0 || !S_ISSOCK(st.st_mode))
				continue;
			if (n < ARRAY_SIZE(names)) {
				names[n] = strdup(p);
				if (names[n])
					n++;
			} else {
				more++;
			}
		}
		closedir(d);
	}
	int ret = 0;
	if (n == 1) {
		if ((size_t)snprintf(out, outlen, "%s", names[0]) >= outlen) {
			set_err(err, errlen, "socket path too long: %s", names[0]);
			ret = -1;
		}
	} else if (n == 0) {
		if ((size_t)snprintf(out, outlen, "%s/detourd.sock", dir) >= outlen) {
			set_err(err, errlen, "socket directory path too long: %s", dir);
			ret = -1;
		}
	} else {
		qsort(names, n, sizeof(names[0]), cmp_str);
		size_t l = 0;
		int w = snprintf(err, errlen, "several detourd sockets in %s, choose one with --socket "
				 "or DETOUR_SOCKET:", dir);
		if (w > 0)
			l = (size_t)w;
		for (size_t i = 0; i < n && l < errlen; i++) {
			w = snprintf(err + l, errlen - l, " %s", names[i]);
			if (w > 0)
				l += (size_t)w;
		}
		if (more && l < errlen)
			snprintf(err + l, errlen - l, " (and %zu more)", more);
		ret = -1;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return ret;
}
