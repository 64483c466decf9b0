/* test_control.c - unit tests of the control channel (src/control.c: the
 * socket server, request parsing/dispatch, client helper, socket discovery)
 * and of the reply renderer (src/render.c). A server runs in a thread of
 * this process on a socket under /tmp; clients talk to it from the main
 * thread. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "render.h"

/* ------------------------------------------------------------ handlers */

static json_t *h_ports(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	json_t *r = json_loads("[{\"name\":\"web1\",\"rx\":5},{\"name\":\"db\",\"rx\":12}]", 0, NULL);
	/* report how many args the handler saw (subcommand removed) */
	json_object_set_new(json_array_get(r, 0), "nargs", json_integer((json_int_t)json_array_size(args)));
	return r;
}

static json_t *h_node(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)ctx;
	const char *n = json_string_value(json_array_get(args, 1));
	if (!n || strcmp(n, "fw1")) {
		snprintf(err, errlen, "no such node '%s'", n ? n : "");
		return NULL;
	}
	return json_null();
}

static json_t *h_reload(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)ctx;
	(void)args;
	snprintf(err, errlen, "reload rejected");
	return json_pack("{s:[s,s]}", "errors", "t.yaml:3: bad key", "t.yaml:7: bad chain");
}

static json_t *h_fail_silent(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)ctx;
	(void)args;
	(void)err;
	(void)errlen;
	return NULL;
}

static json_t *h_echo(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	return json_incref(args);
}

static void register_all(struct control *c)
{
	assert_int_equal(control_register(c, "show", "ports", h_ports, NULL), 0);
	assert_int_equal(control_register(c, "show", "rules", h_ports, NULL), 0);
	assert_int_equal(control_register(c, "node", NULL, h_node, NULL), 0);
	assert_int_equal(control_register(c, "reload", NULL, h_reload, NULL), 0);
	assert_int_equal(control_register(c, "fail", NULL, h_fail_silent, NULL), 0);
	assert_int_equal(control_register(c, "echo", NULL, h_echo, NULL), 0);
}

/* -------------------------------------------------------- server thread */

struct server {
	struct control *c;
	char dir[128];
	char path[200];
	pthread_t thr;
	atomic_bool stop;
};

static void *server_main(void *arg)
{
	struct server *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd p = {.fd = control_fd(s->c), .events = POLLIN};
		if (poll(&p, 1, 20) > 0)
			control_poll(s->c);
	}
	return NULL;
}

static int server_setup(void **state)
{
	struct server *s = calloc(1, sizeof(*s));
	char err[256];

	if (!s)
		return -1;
	snprintf(s->dir, sizeof(s->dir), "/tmp/detour-test-control-%d", (int)getpid());
	snprintf(s->path, sizeof(s->path), "%s/sub/h1.sock", s->dir);
	s->c = control_open(s->path, err, sizeof(err));
	if (!s->c) {
		fprintf(stderr, "control_open: %s\n", err);
		free(s);
		return -1;
	}
	register_all(s->c);
	if (pthread_create(&s->thr, NULL, server_main, s)) {
		control_close(s->c);
		free(s);
		return -1;
	}
	*state = s;
	return 0;
}

static int server_teardown(void **state)
{
	struct server *s = *state;
	char sub[256];

	atomic_store(&s->stop, true);
	pthread_join(s->thr, NULL);
	control_close(s->c);
	snprintf(sub, sizeof(sub), "%s/sub", s->dir);
	rmdir(sub);
	rmdir(s->dir);
	free(s);
	return 0;
}

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fill_sun(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);

	assert_true(n < sizeof(sa->sun_path));
	memcpy(sa->sun_path, path, n + 1);
}

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	fill_sun(&sa, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Reads until EOF or timeout; returns the malloc'd bytes (NUL-terminated),
 * NULL on timeout. */
static char *read_all(int fd, int timeout_ms)
{
	int64_t deadline = ms_now() + timeout_ms;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	assert_non_null(buf);
	for (;;) {
		int64_t left = deadline - ms_now();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			free(buf);
			return NULL;
		}
		if (len + 1 == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return buf;
}

/* Sends bytes raw (ignoring a reset: the server may reply early), returns
 * the parsed reply. */
static json_t *raw_exchange(const char *path, const char *data, size_t len)
{
	int fd = raw_connect(path);
	size_t off = 0;

	while (off < len) {
		ssize_t w = send(fd, data + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	char *reply = read_all(fd, 5000);
	close(fd);
	assert_non_null(reply);
	json_t *j = json_loads(reply, 0, NULL);
	if (!j)
		fprintf(stderr, "unparsable reply: %s\n", reply);
	free(reply);
	assert_non_null(j);
	return j;
}

static json_t *request(const char *path, const char *reqtext)
{
	json_t *req = json_loads(reqtext, 0, NULL);
	json_t *resp = NULL;
	char err[256] = "";

	assert_non_null(req);
	int r = control_request(path, req, &resp, err, sizeof(err));
	json_decref(req);
	if (r)
		fprintf(stderr, "control_request: %s\n", err);
	assert_int_equal(r, 0);
	assert_non_null(resp);
	return resp;
}

static void assert_error_contains(json_t *resp, const char *needle)
{
	assert_true(json_is_false(json_object_get(resp, "ok")));
	const char *e = json_string_value(json_object_get(resp, "error"));
	assert_non_null(e);
	if (!strstr(e, needle))
		fprintf(stderr, "error '%s' lacks '%s'\n", e, needle);
	assert_non_null(strstr(e, needle));
}

/* ----------------------------------------------------------- socket tests */

static void test_success(void **state)
{
	struct server *s = *state;
	json_t *resp = request(s->path, "{\"cmd\":\"show\",\"args\":[\"ports\"],\"json\":true}");

	assert_true(json_is_true(json_object_get(resp, "ok")));
	json_t *res = json_object_get(resp, "result");
	assert_int_equal(json_array_size(res), 2);
	json_t *first = json_array_get(res, 0);
	assert_string_equal(json_string_value(json_object_get(first, "name")), "web1");
	/* the handler saw args without the subcommand */
	assert_int_equal(json_integer_value(json_object_get(first, "nargs")), 0);
	/* key order survives the trip */
	void *it = json_object_iter(first);
	assert_string_equal(json_object_iter_key(it), "name");
	it = json_object_iter_next(first, it);
	assert_string_equal(json_object_iter_key(it), "rx");
	json_decref(resp);

	resp = request(s->path, "{\"cmd\":\"node\",\"args\":[\"down\",\"fw1\"]}");
	assert_true(json_is_true(json_object_get(resp, "ok")));
	assert_true(json_is_null(json_object_get(resp, "result")));
	json_decref(resp);
}

static void test_handler_error(void **state)
{
	struct server *s = *state;
	json_t *resp = request(s->path, "{\"cmd\":\"node\",\"args\":[\"down\",\"fw9\"]}");

	assert_error_contains(resp, "no such node 'fw9'");
	assert_null(json_object_get(resp, "result"));
	json_decref(resp);

	resp = request(s->path, "{\"cmd\":\"fail\"}");
	assert_error_contains(resp, "'fail' failed");
	json_decref(resp);

	/* error with details: keys merged into the reply */
	resp = request(s->path, "{\"cmd\":\"reload\"}");
	assert_error_contains(resp, "reload rejected");
	json_t *errs = json_object_get(resp, "errors");
	assert_int_equal(json_array_size(errs), 2);
	assert_string_equal(json_string_value(json_array_get(errs, 1)), "t.yaml:7: bad chain");
	json_decref(resp);
}

static void test_unknown_command(void **state)
{
	struct server *s = *state;
	json_t *resp = request(s->path, "{\"cmd\":\"frob\",\"args\":[]}");

	assert_error_contains(resp, "unknown command 'frob'");
	assert_error_contains(resp, "show, node, reload");
	json_decref(resp);

	resp = request(s->path, "{\"cmd\":\"show\",\"args\":[\"bogus\"]}");
	assert_error_contains(resp, "unknown show object 'bogus' (expected one of: ports, rules)");
	json_decref(resp);

	resp = request(s->path, "{\"cmd\":\"show\"}");
	assert_error_contains(resp, "'show' needs an argument");
	json_decref(resp);
}

static void test_malformed(void **state)
{
	struct server *s = *state;
	static const char junk[] = "this is not json\n";
	json_t *resp = raw_exchange(s->path, junk, sizeof(junk) - 1);

	assert_error_contains(resp, "not valid JSON");
	json_decref(resp);

	resp = raw_exchange(s->path, "{\"args\":[]}\n", 12);
	assert_error_contains(resp, "no \"cmd\"");
	json_decref(resp);

	/* request ended by EOF instead of a newline still works */
	static const char noeol[] = "{\"cmd\":\"show\",\"args\":[\"ports\"]}";
	int fd = raw_connect(s->path);
	assert_int_equal(write(fd, noeol, sizeof(noeol) - 1), (ssize_t)sizeof(noeol) - 1);
	shutdown(fd, SHUT_WR);
	char *reply = read_all(fd, 5000);
	close(fd);
	assert_non_null(reply);
	assert_non_null(strstr(reply, "\"ok\":true"));
	assert_non_null(strchr(reply, '\n'));
	free(reply);
}

static void test_oversize(void **state)
{
	struct server *s = *state;
	size_t n = CONTROL_MAX_REQUEST + 5000;
	char *big = malloc(n);

	assert_non_null(big);
	memset(big, 'x', n);
	json_t *resp = raw_exchange(s->path, big, n);
	assert_error_contains(resp, "too long");
	json_decref(resp);

	/* exactly the limit (spaces padding a valid request) is accepted */
	static const char req[] = "{\"cmd\":\"show\",\"args\":[\"ports\"]}";
	memset(big, ' ', CONTROL_MAX_REQUEST);
	memcpy(big, req, sizeof(req) - 1);
	big[CONTROL_MAX_REQUEST] = '\n';
	resp = raw_exchange(s->path, big, CONTROL_MAX_REQUEST + 1);
	assert_true(json_is_true(json_object_get(resp, "ok")));
	json_decref(resp);

	/* one byte more is not */
	memset(big, ' ', CONTROL_MAX_REQUEST + 1);
	memcpy(big, req, sizeof(req) - 1);
	big[CONTROL_MAX_REQUEST + 1] = '\n';
	resp = raw_exchange(s->path, big, CONTROL_MAX_REQUEST + 2);
	assert_error_contains(resp, "too long");
	json_decref(resp);
	free(big);
}

static void test_silent_client(void **state)
{
	struct server *s = *state;
	int64_t t0 = ms_now();
	int silent = raw_connect(s->path);
	int partial = raw_connect(s->path);

	assert_int_equal(write(partial, "{\"cmd\":", 7), 7);
	/* the server keeps serving others meanwhile */
	json_t *resp = request(s->path, "{\"cmd\":\"show\",\"args\":[\"ports\"]}");
	assert_true(json_is_true(json_object_get(resp, "ok")));
	json_decref(resp);
	assert_true(ms_now() - t0 < CONTROL_READ_TIMEOUT_MS);

	/* and drops the stuck ones after its timeout, with an error */
	char *r1 = read_all(silent, CONTROL_READ_TIMEOUT_MS + 3000);
	char *r2 = read_all(partial, CONTROL_READ_TIMEOUT_MS + 3000);
	int64_t dt = ms_now() - t0;
	assert_non_null(r1);
	assert_non_null(r2);
	assert_non_null(strstr(r1, "timed out"));
	assert_non_null(strstr(r2, "timed out"));
	assert_true(dt >= CONTROL_READ_TIMEOUT_MS - 50);
	free(r1);
	free(r2);
	close(silent);
	close(partial);
}

static void test_too_many_clients(void **state)
{
	struct server *s = *state;
	int fds[CONTROL_MAX_CONNS];

	for (int i = 0; i < CONTROL_MAX_CONNS; i++)
		fds[i] = raw_connect(s->path);
	/* the next one is told the daemon is busy, not left hanging */
	json_t *resp = request(s->path, "{\"cmd\":\"show\",\"args\":[\"ports\"]}");
	assert_error_contains(resp, "busy");
	json_decref(resp);
	for (int i = 0; i < CONTROL_MAX_CONNS; i++)
		close(fds[i]);
	/* closed connections are released: service resumes */
	int64_t deadline = ms_now() + 3000;
	bool ok = false;
	while (!ok && ms_now() < deadline) {
		resp = request(s->path, "{\"cmd\":\"show\",\"args\":[\"ports\"]}");
		ok = json_is_true(json_object_get(resp, "ok"));
		json_decref(resp);
	}
	assert_true(ok);
}

static void test_socket_file(void **state)
{
	struct server *s = *state;
	struct stat st;
	char err[256], dir[200];

	assert_int_equal(stat(s->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	snprintf(dir, sizeof(dir), "%s/sub", s->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);

	/* a second daemon on the same socket is refused, the first unharmed */
	assert_null(control_open(s->path, err, sizeof(err)));
	assert_non_null(strstr(err, "already listening"));
	assert_int_equal(stat(s->path, &st), 0);
	json_t *resp = request(s->path, "{\"cmd\":\"show\",\"args\":[\"ports\"]}");
	assert_true(json_is_true(json_object_get(resp, "ok")));
	json_decref(resp);
}

static void test_open_close(void **state)
{
	(void)state;
	char dir[128], path[200], err[256];
	struct stat st;

	snprintf(dir, sizeof(dir), "/tmp/detour-test-control-oc-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/x.sock", dir);
	mkdir(dir, 0755);

	/* stale socket file left by a dead daemon: replaced */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	fill_sun(&sa, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(stat(path, &st), 0);
	struct control *c = control_open(path, err, sizeof(err));
	assert_non_null(c);
	control_close(c);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);

	/* a regular file is not ours to remove */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_null(control_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path);

	/* path too long for sun_path */
	char longp[300];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_null(control_open(longp, err, sizeof(err)));
	assert_non_null(strstr(err, "too long"));
	rmdir(dir);
}

static void test_client_errors(void **state)
{
	(void)state;
	char err[256], path[200];
	json_t *req = json_pack("{s:s}", "cmd", "reload");
	json_t *resp = (json_t *)1;

	assert_int_equal(control_request("/tmp/detour-test-no-such.sock", req, &resp, err, sizeof(err)), -1);
	assert_null(resp);
	assert_string_equal(err, "cannot connect to detourd at /tmp/detour-test-no-such.sock: "
				 "No such file or directory (is detourd running?)");

	/* a server that never answers: the client gives up in time */
	snprintf(path, sizeof(path), "/tmp/detour-test-mute-%d.sock", (int)getpid());
	unlink(path);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	fill_sun(&sa, path);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	int64_t t0 = ms_now();
	assert_int_equal(control_request_timeout(path, req, &resp, 200, err, sizeof(err)), -1);
	assert_true(ms_now() - t0 < 2000);
	assert_non_null(strstr(err, "did not reply"));

	/* a server that answers garbage (a fresh one: the old backlog holds
	 * the abandoned connection) */
	close(lfd);
	unlink(path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	int cfd = -1;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cfd = accept(lfd, NULL, NULL);
		char buf[256];
		ssize_t r = read(cfd, buf, sizeof(buf));
		(void)r;
		r = write(cfd, "garbage\n", 8);
		_exit(0);
	}
	int rc = control_request_timeout(path, req, &resp, 5000, err, sizeof(err));
	int status;
	waitpid(pid, &status, 0);
	assert_int_equal(rc, -1);
	if (!strstr(err, "bad reply"))
		fprintf(stderr, "err: %s\n", err);
	assert_non_null(strstr(err, "bad reply"));
	close(lfd);
	unlink(path);
	json_decref(req);
}

/* ------------------------------------------------------ dispatcher tests */

static char *handle(struct control *c, const char *s)
{
	char *r = control_handle_request(c, s, strlen(s));
	assert_non_null(r);
	assert_int_equal(r[strlen(r) - 1], '\n');
	return r;
}

static void expect_error(struct control *c, const char *req, const char *needle)
{
	char *r = handle(c, req);
	json_t *j = json_loads(r, 0, NULL);
	assert_non_null(j);
	assert_error_contains(j, needle);
	json_decref(j);
	free(r);
}

static void test_bad_types(void **state)
{
	(void)state;
	struct control *c = control_new();

	assert_non_null(c);
	register_all(c);
	assert_int_equal(control_fd(c), -1);
	control_poll(c); /* harmless without a socket */
	expect_error(c, "", "empty request");
	expect_error(c, "\n", "empty request");
	expect_error(c, "[1,2]", "must be a JSON object");
	expect_error(c, "\"show\"", "must be a JSON object");
	expect_error(c, "{\"cmd\":5}", "\"cmd\" must be a non-empty string");
	expect_error(c, "{\"cmd\":\"\"}", "\"cmd\" must be a non-empty string");
	expect_error(c, "{\"cmd\":\"show\",\"args\":\"ports\"}", "\"args\" must be an array");
	expect_error(c, "{\"cmd\":\"show\",\"args\":[\"ports\",3]}", "\"args\"[1] must be a string");
	expect_error(c, "{\"cmd\":\"show\",\"args\":[\"ports\"],\"json\":1}", "\"json\" must be true or false");
	expect_error(c, "{\"cmd\":\"show\",\"cmd\":\"show\"}", "not valid JSON");
	expect_error(c, "{\"cmd\":\"show\"} trailing", "not valid JSON");
	expect_error(c, "{\"cmd\":\"sh\\u0000ow\"}", "NUL");
	expect_error(c, "{\"cmd\":\"\\u001b[31mred\"}", "unknown command '?[31mred'");

	/* raw NUL byte inside the buffer */
	static const char nul[] = "{\"cmd\":\"show\"\0}";
	char *r = control_handle_request(c, nul, sizeof(nul) - 1);
	assert_non_null(strstr(r, "\"ok\":false"));
	free(r);

	/* handlers without a subcommand get every arg, with CRLF tolerated */
	r = handle(c, "{\"cmd\":\"echo\",\"args\":[\"a\",\"b c\"]}\r\n");
	assert_string_equal(r, "{\"ok\":true,\"result\":[\"a\",\"b c\"]}\n");
	free(r);
	r = handle(c, "{\"cmd\":\"echo\",\"extra\":{}}");
	assert_string_equal(r, "{\"ok\":true,\"result\":[]}\n");
	free(r);

	/* registration rules */
	assert_int_equal(control_register(c, "show", "ports", h_ports, NULL), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(control_register(c, "", NULL, h_ports, NULL), -1);
	assert_int_equal(control_register(c, "x", "", h_ports, NULL), -1);
	assert_int_equal(control_register(c, "x", NULL, NULL, NULL), -1);
	/* an exact (cmd, sub) wins over (cmd, any) */
	assert_int_equal(control_register(c, "node", "list", h_echo, NULL), 0);
	r = handle(c, "{\"cmd\":\"node\",\"args\":[\"list\",\"z\"]}");
	assert_string_equal(r, "{\"ok\":true,\"result\":[\"z\"]}\n");
	free(r);
	expect_error(c, "{\"cmd\":\"node\",\"args\":[\"down\",\"zz\"]}", "no such node 'zz'");
	control_close(c);
}

/* --------------------------------------------------- socket discovery */

static void make_sock(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	fill_sun(&sa, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

static void test_default_socket(void **state)
{
	(void)state;
	char dir[128], p1[200], p2[200], other[200], out[256], err[512];

	snprintf(dir, sizeof(dir), "/tmp/detour-test-ds-%d", (int)getpid());
	mkdir(dir, 0755);
	assert_int_equal(control_default_socket(dir, out, sizeof(out), err, sizeof(err)), 0);
	snprintf(p1, sizeof(p1), "%s/detourd.sock", dir);
	assert_string_equal(out, p1);

	snprintf(other, sizeof(other), "%s/notes.txt.sock", dir); /* not a socket */
	FILE *f = fopen(other, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(p1, sizeof(p1), "%s/h2.sock", dir);
	make_sock(p1);
	assert_int_equal(control_default_socket(dir, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, p1);

	snprintf(p2, sizeof(p2), "%s/h1.sock", dir);
	make_sock(p2);
	assert_int_equal(control_default_socket(dir, out, sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "several"));
	/* listed sorted */
	assert_non_null(strstr(err, p2));
	assert_non_null(strstr(err, p1));
	assert_true(strstr(err, p2) < strstr(err, p1));
	assert_null(strstr(err, "notes"));
	unlink(p1);
	unlink(p2);
	unlink(other);
	rmdir(dir);
}

/* ---------------------------------------------------------- renderer */

static void expect_render(const char *json, const char *want)
{
	json_error_t e;
	json_t *v = json_loads(json, JSON_DECODE_ANY, &e);
	assert_non_null(v);
	char *got = render_to_string(v);
	assert_non_null(got);
	if (strcmp(got, want))
		fprintf(stderr, "render of %s:\n--- got\n%s--- want\n%s---\n", json, got, want);
	assert_string_equal(got, want);
	free(got);
	json_decref(v);
}

static void test_render_table(void **state)
{
	(void)state;
	expect_render("[{\"name\":\"web1\",\"mac\":\"02:00:00:00:00:01\",\"rx\":12345,\"tags\":[\"a\",\"b\"]},"
		      "{\"name\":\"database\",\"mac\":null,\"rx\":7,\"tags\":{\"k\":1}}]",
		      "NAME      MAC                   RX  TAGS\n"
		      "web1      02:00:00:00:00:01  12345  [\"a\",\"b\"]\n"
		      "database  -                      7  {\"k\":1}\n");
	/* keys missing in later rows are blank, new keys are appended;
	 * a right-aligned last column; no trailing spaces */
	expect_render("[{\"a\":\"x\",\"n\":1},{\"n\":100,\"z\":true}]",
		      "A    N  Z\n"
		      "x    1\n"
		      "   100  true\n");
	/* UTF-8 counts by code point; control characters escaped */
	expect_render("[{\"k\":\"h\\u00e9\"},{\"k\":\"a\\nb\\u001b\"}]",
		      "K\n"
		      "hé\n"
		      "a\\nb\\x1b\n");
	expect_render("[]", "(none)\n");
	expect_render("[1,\"two\",null,2.5]", "1\ntwo\n-\n2.5\n");
}

static void test_render_object(void **state)
{
	(void)state;
	expect_render("{\"host\":\"h1\",\"uptime_s\":12.5,\"up\":true,\"nodes\":[\"fw1\",\"ids1\"],"
		      "\"ports\":[{\"port\":\"p1\",\"rx\":1}],\"tunnels\":[],"
		      "\"drops\":{\"bad_geneve\":3,\"ttl\":0}}",
		      "host:     h1\n"
		      "uptime_s: 12.5\n"
		      "up:       true\n"
		      "nodes:    fw1, ids1\n"
		      "\n"
		      "ports:\n"
		      "  PORT  RX\n"
		      "  p1     1\n"
		      "\n"
		      "tunnels: (none)\n"
		      "\n"
		      "drops:\n"
		      "  bad_geneve: 3\n"
		      "  ttl:        0\n");
	expect_render("{\"lines\":[\"rule r1 matched\",\"  hop 1: fw1 on h2\"]}",
		      "rule r1 matched\n  hop 1: fw1 on h2\n");
	expect_render("\"plain text\"", "plain text\n");
	expect_render("\"two\\nlines\\n\"", "two\nlines\n");
	expect_render("null", "");
	expect_render("42", "42\n");
	expect_render("0.1", "0.1\n");
	expect_render("{}", "");
	json_t *big = json_real(1e300);
	char *s = render_scalar(big);
	assert_string_equal(s, "1e+300");
	free(s);
	json_decref(big);
	/* render_result writes the same to a FILE */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *v = json_pack("{s:i}", "a", 1);
	assert_int_equal(render_result(f, v), 0);
	fclose(f);
	assert_string_equal(buf, "a: 1\n");
	free(buf);
	json_decref(v);
}

#define SRV(t) cmocka_unit_test_setup_teardown(t, server_setup, server_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		SRV(test_success),
		SRV(test_handler_error),
		SRV(test_unknown_command),
		SRV(test_malformed),
		SRV(test_oversize),
		SRV(test_silent_client),
		SRV(test_too_many_clients),
		SRV(test_socket_file),
		cmocka_unit_test(test_open_close),
		cmocka_unit_test(test_client_errors),
		cmocka_unit_test(test_bad_types),
		cmocka_unit_test(test_default_socket),
		cmocka_unit_test(test_render_table),
		cmocka_unit_test(test_render_object),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
