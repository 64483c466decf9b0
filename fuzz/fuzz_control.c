/* fuzz_control.c - libFuzzer target for the control channel's request
 * parser/dispatcher (control_handle_request) and, on the same bytes read
 * as JSON, the reply renderer (render_to_string). Owns nothing else. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "render.h"

static json_t *h_echo(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	return json_incref(args);
}

static json_t *h_fail(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)ctx;
	snprintf(err, errlen, "failed with %zu args", json_array_size(args));
	return json_array_size(args) % 2 ? json_pack("{s:O}", "errors", args) : NULL;
}

static json_t *h_table(void *ctx, json_t *args, char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	return json_pack("[{s:O,s:i}]", "args", args, "n", (json_int_t)json_array_size(args));
}

static struct control *setup(void)
{
	struct control *c = control_new();

	if (!c)
		abort();
	control_register(c, "show", "ports", h_table, NULL);
	control_register(c, "show", "rules", h_echo, NULL);
	control_register(c, "trace", NULL, h_echo, NULL);
	control_register(c, "node", NULL, h_fail, NULL);
	control_register(c, "reload", NULL, h_fail, NULL);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct control *c;

	if (!c)
		c = setup();
	char *reply = control_handle_request(c, (const char *)data, size);
	if (!reply)
		abort(); /* only on out of memory */
	size_t n = strlen(reply);
	if (n == 0 || reply[n - 1] != '\n')
		abort();
	json_t *j = json_loads(reply, 0, NULL);
	if (!json_is_object(j) || !json_is_boolean(json_object_get(j, "ok")))
		abort();
	if (json_is_false(json_object_get(j, "ok")) &&
	    !json_is_string(json_object_get(j, "error")))
		abort();
	char *r = render_to_string(json_object_get(j, "result"));
	free(r);
	json_decref(j);
	free(reply);

	/* the renderer on arbitrary JSON */
	json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (v) {
		r = render_to_string(v);
		if (!r)
			abort();
		free(r);
		json_decref(v);
	}
	return 0;
}
