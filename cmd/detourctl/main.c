/* detourctl - the operator's CLI (SPEC section 11): sends one command to
 * the local detourd over its UNIX control socket (src/control.h) and prints
 * the reply, as JSON (--json) or rendered for humans (src/render.h). Owns
 * the command-line interface only; what each command shows is decided by
 * the daemon's handlers. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "control.h"
#include "render.h"

static const char *const show_objects[] = {
	"ports", "rules", "chains", "paths", "flows", "nodes", "stats", "tunnels",
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: detourctl [--socket PATH] [--json] COMMAND\n"
		"\n"
		"commands:\n"
		"  show ports|rules|chains|paths|flows|nodes|stats|tunnels\n"
		"  trace GUEST FLOW         e.g. trace web1 'tcp 10.0.0.1:1234 > 10.0.0.2:80'\n"
		"                           or   trace web1 'icmp 10.0.0.1 > 10.0.0.2'\n"
		"  node down NODE           take a service node out of service\n"
		"  node up NODE             put it back\n"
		"  reload                   re-read the topology file\n"
		"  capture POINT FILE.pcap [--count N]\n"
		"\n"
		"options:\n"
		"  --socket PATH   detourd control socket (default: $DETOUR_SOCKET, else the\n"
		"                  only socket in " CONTROL_DEFAULT_DIR "/)\n"
		"  --json          print the reply as JSON\n"
		"  -h, --help      this text\n");
}

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("detourctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	usage(stderr);
	return 2;
}

/* Appends a string to args; false on memory error. */
static bool push(json_t *args, const char *s)
{
	return json_array_append_new(args, json_string(s)) == 0;
}

static bool valid_count(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	return *s && !*end && !errno && v > 0 && v <= INT_MAX;
}

/* Builds args for COMMAND argv[0..argc-1]; returns 0, or 2 after printing
 * usage, or 1 on another error. */
static int build_args(int argc, char **argv, json_t *args)
{
	const char *cmd = argv[0];

	if (!strcmp(cmd, "show")) {
		if (argc != 2)
			return bad_usage(argc < 2 ? "show: what? (ports, rules, chains, paths, flows, "
						    "nodes, stats or tunnels)" : "show: too many arguments");
		for (size_t i = 0; i < sizeof(show_objects) / sizeof(show_objects[0]); i++)
			if (!strcmp(argv[1], show_objects[i]))
				return push(args, argv[1]) ? 0 : 1;
		return bad_usage("show: unknown object '%s'", argv[1]);
	}
	if (!strcmp(cmd, "trace")) {
		if (argc < 3)
			return bad_usage("trace: need GUEST and FLOW");
		/* FLOW may come as one quoted word or as several: join them */
		size_t n = 0;
		for (int i = 2; i < argc; i++)
			n += strlen(argv[i]) + 1;
		char *flow = malloc(n);
		if (!flow)
			return 1;
		flow[0] = '\0';
		for (int i = 2; i < argc; i++) {
			if (i > 2)
				strcat(flow, " ");
			strcat(flow, argv[i]);
		}
		bool ok = push(args, argv[1]) && push(args, flow);
		free(flow);
		return ok ? 0 : 1;
	}
	if (!strcmp(cmd, "node")) {
		if (argc != 3)
			return bad_usage("node: need 'down NODE' or 'up NODE'");
		if (strcmp(argv[1], "down") && strcmp(argv[1], "up"))
			return bad_usage("node: unknown action '%s' (down or up)", argv[1]);
		return push(args, argv[1]) && push(args, argv[2]) ? 0 : 1;
	}
	if (!strcmp(cmd, "reload")) {
		if (argc != 1)
			return bad_usage("reload: takes no arguments");
		return 0;
	}
	if (!strcmp(cmd, "capture")) {
		const char *point = NULL, *file = NULL, *count = NULL;
		for (int i = 1; i < argc; i++) {
			if (!strcmp(argv[i], "--count") || !strcmp(argv[i], "-c")) {
				if (i + 1 >= argc)
					return bad_usage("capture: %s needs a number", argv[i]);
				count = argv[++i];
				if (!valid_count(count))
					return bad_usage("capture: bad count '%s'", count);
			} else if (!strncmp(argv[i], "--count=", 8)) {
				count = argv[i] + 8;
				if (!valid_count(count))
					return bad_usage("capture: bad count '%s'", count);
			} else if (argv[i][0] == '-' && argv[i][1]) {
				return bad_usage("capture: unknown option '%s'", argv[i]);
			} else if (!point) {
				point = argv[i];
			} else if (!file) {
				file = argv[i];
			} else {
				return bad_usage("capture: unexpected argument '%s'", argv[i]);
			}
		}
		if (!point || !file)
			return bad_usage("capture: need POINT and FILE.pcap");
		/* the daemon writes the file: give it an absolute path */
		char abs[PATH_MAX];
		if (file[0] != '/') {
			char cwd[PATH_MAX];
			if (!getcwd(cwd, sizeof(cwd)) ||
			    (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, file) >= sizeof(abs)) {
				fprintf(stderr, "detourctl: cannot make an absolute path of %s\n", file);
				return 1;
			}
			file = abs;
		}
		if (!push(args, point) || !push(args, file))
			return 1;
		if (count && (!push(args, "--count") || !push(args, count)))
			return 1;
		return 0;
	}
	return bad_usage("unknown command '%s'", cmd);
}

/* Prints every "errors" entry found in the reply, in result or error. */
static void print_errors(const json_t *errs)
{
	size_t i;
	json_t *e;

	if (!json_is_array(errs))
		return;
	json_array_foreach(errs, i, e) {
		char *s = json_is_string(e) ? NULL : render_scalar(e);
		const char *txt = json_is_string(e) ? json_string_value(e) : s;
		if (txt) {
			/* stays on one line, control characters escaped */
			json_t *tmp = json_string(txt);
			char *line = tmp ? render_scalar(tmp) : NULL;
			fprintf(stderr, "  %s\n", line ? line : txt);
			free(line);
			json_decref(tmp);
		}
		free(s);
	}
}

static int report_error(json_t *resp)
{
	json_t *error = json_object_get(resp, "error");
	json_t *result = json_object_get(resp, "result");
	const char *msg = NULL;
	char *owned = NULL;

	if (json_is_string(error))
		msg = json_string_value(error);
	else if (json_is_object(error) && json_is_string(json_object_get(error, "message")))
		msg = json_string_value(json_object_get(error, "message"));
	else if (error && !json_is_null(error) && !json_is_array(error))
		msg = owned = render_scalar(error);
	json_t *m = json_string(msg ? msg : "command failed");
	char *safe = m ? render_scalar(m) : NULL;
	fprintf(stderr, "detourctl: %s\n", safe ? safe : "command failed");
	free(safe);
	json_decref(m);
	free(owned);

	if (json_is_array(error))
		print_errors(error);
	print_errors(json_object_get(error, "errors"));
	print_errors(json_object_get(resp, "errors"));
	print_errors(json_object_get(result, "errors"));
	return 1;
}

int main(int argc, char **argv)
{
	const char *sock = NULL;
	bool as_json = false;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			as_json = true;
		} else if (!strcmp(a, "--socket")) {
			if (i + 1 >= argc)
				return bad_usage("--socket needs a PATH");
			sock = argv[++i];
		} else if (!strncmp(a, "--socket=", 9)) {
			sock = a + 9;
		} else if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (a[0] == '-' && a[1]) {
			return bad_usage("unknown option '%s'", a);
		} else {
			break;
		}
	}
	if (i >= argc)
		return bad_usage("no command given");

	/* --json and -h are also accepted after the command */
	char **cargv = calloc((size_t)(argc - i) + 1, sizeof(*cargv));
	int cargc = 0;
	if (!cargv)
		return 1;
	for (int k = i; k < argc; k++) {
		if (!strcmp(argv[k], "--json")) {
			as_json = true;
		} else if (!strcmp(argv[k], "-h") || !strcmp(argv[k], "--help")) {
			usage(stdout);
			free(cargv);
			return 0;
		} else {
			cargv[cargc++] = argv[k];
		}
	}

	json_t *args = json_array();
	if (!args) {
		free(cargv);
		return 1;
	}
	int rc = build_args(cargc, cargv, args);
	if (rc) {
		json_decref(args);
		free(cargv);
		return rc;
	}
	json_t *req = json_pack("{s:s,s:o,s:b}", "cmd", cargv[0], "args", args, "json", as_json);
	free(cargv);
	if (!req)
		return 1;

	char path[PATH_MAX], err[1024];
	if (!sock) {
		const char *env = getenv("DETOUR_SOCKET");
		if (env && *env) {
			sock = env;
		} else {
			if (control_default_socket(CONTROL_DEFAULT_DIR, path, sizeof(path), err,
						   sizeof(err)) < 0) {
				fprintf(stderr, "detourctl: %s\n", err);
				json_decref(req);
				return 1;
			}
			sock = path;
		}
	}

	json_t *resp = NULL;
	if (control_request(sock, req, &resp, err, sizeof(err)) < 0) {
		fprintf(stderr, "detourctl: %s\n", err);
		json_decref(req);
		return 1;
	}
	json_decref(req);

	rc = 0;
	if (!json_is_true(json_object_get(resp, "ok"))) {
		rc = report_error(resp);
	} else {
		json_t *result = json_object_get(resp, "result");
		if (as_json) {
			char *s = json_dumps(result ? result : json_null(),
					     JSON_INDENT(2) | JSON_ENCODE_ANY);
			if (!s || printf("%s\n", s) < 0)
				rc = 1;
			free(s);
		} else if (render_result(stdout, result) < 0) {
			rc = 1;
		}
	}
	json_decref(resp);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "detourctl: write error: %s\n", strerror(errno));
		rc = 1;
	}
	return rc;
}
