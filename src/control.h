/* control.h - the operator control channel between detourctl and detourd:
 * a UNIX stream socket, one newline-terminated JSON request per connection,
 * one JSON reply, then close. Owns the socket file, the connections and the
 * request parsing/dispatch; the command handlers belong to the daemon and
 * are only called through control_register()ed function pointers. Must not
 * touch forwarding state itself.
 *
 * Request (max CONTROL_MAX_REQUEST bytes, then '\n'):
 *   {"cmd": "show", "args": ["ports"], "json": true}
 *   "cmd" a non-empty string (required), "args" an array of strings
 *   (optional, default []), "json" a boolean (optional). Other keys are
 *   ignored.
 * Reply:
 *   {"ok": true, "result": <any JSON>}
 *   {"ok": false, "error": "clear message", ...details}
 */
#ifndef DETOUR_CONTROL_H
#define DETOUR_CONTROL_H

#include <stddef.h>
#include <jansson.h>

#define CONTROL_MAX_REQUEST (64 * 1024)  /* bytes, without the newline */
#define CONTROL_MAX_REPLY (64 * 1024 * 1024)
#define CONTROL_READ_TIMEOUT_MS 1000     /* a client must send its request within this */
#define CONTROL_WRITE_TIMEOUT_MS 5000    /* ... and read the reply within this */
#define CONTROL_MAX_CONNS 32
#define CONTROL_CLIENT_TIMEOUT_MS 10000  /* default of control_request() */
#define CONTROL_DEFAULT_DIR "/run/detour"

struct control;

/* A command handler. args is the request's "args" array (borrowed); for a
 * handler registered with a subcommand the subcommand itself is removed,
 * e.g. "show ports" -> args []. err is zeroed before the call.
 *   - return a new reference to the result (any JSON value, json_null()
 *     for "nothing to say") with err left empty: success;
 *   - return NULL with err set: {"ok":false,"error":err};
 *   - return an object AND set err: failure with details, the object's
 *     keys are merged into the reply, e.g. for reload
 *     {"ok":false,"error":"reload rejected","errors":["f.yaml:3: ..."]}. */
typedef json_t *(*control_handler)(void *ctx, json_t *args, char *err, size_t errlen);

/* Creates the directory of path (mkdir -p, 0755), removes a stale socket
 * file (refuses if a daemon still answers there or if path is not a
 * socket), binds, chmods 0660 and listens. NULL with err set on failure. */
struct control *control_open(const char *path, char *err, size_t errlen);

/* A dispatcher without a socket (tests, fuzzing): control_fd() is -1,
 * control_poll() does nothing, control_handle_request() works. */
struct control *control_new(void);

/* Registers handler h for cmd (with sub != NULL: only when args[0] == sub,
 * e.g. ("show","ports"); sub == NULL: any args, e.g. ("reload", NULL)).
 * An exact (cmd, sub) match wins over (cmd, NULL). 0, or -1 (errno EEXIST
 * for a duplicate, EINVAL, ENOMEM). */
int control_register(struct control *c, const char *cmd, const char *sub,
		     control_handler h, void *ctx);

/* A file descriptor that becomes readable (POLLIN) when control_poll() has
 * work: a new connection, request bytes, reply space or a connection
 * timing out. It is an epoll descriptor, usable in poll/select/epoll. */
int control_fd(const struct control *c);

/* Never blocks: accepts pending connections, reads requests, dispatches,
 * writes replies, and drops connections past their deadline. Call it when
 * control_fd() is readable (calling it more often is harmless). */
void control_poll(struct control *c);

/* Closes every connection and the socket, unlinks the socket file (if it
 * is still ours) and frees c. NULL is fine. */
void control_close(struct control *c);

/* Parses one request (buf need not be NUL-terminated and may hold any
 * bytes), dispatches it and returns the reply line (compact JSON plus
 * '\n', malloc'd, caller frees). Never NULL except on out of memory. */
char *control_handle_request(struct control *c, const char *buf, size_t len);

/* Client side (detourctl). Connects to path, sends req as one line, reads
 * the whole reply and parses it (key order preserved). 0 with *resp set
 * to a reply object that has a boolean "ok" (true or false: a daemon-side
 * error is still a successful exchange), or -1 with err set, e.g.
 * "cannot connect to detourd at /run/detour/h1.sock: No such file or
 * directory (is detourd running?)". */
int control_request(const char *path, json_t *req, json_t **resp, char *err, size_t errlen);
int control_request_timeout(const char *path, json_t *req, json_t **resp, int timeout_ms,
			    char *err, size_t errlen);

/* Picks the socket when neither --socket nor $DETOUR_SOCKET is given: the
 * only *.sock in dir (CONTROL_DEFAULT_DIR normally). None: dir/detourd.sock
 * (the connect error then says what is wrong). Several: -1 with err listing
 * them. 0 with the path in out. */
int control_default_socket(const char *dir, char *out, size_t outlen, char *err, size_t errlen);

#endif
