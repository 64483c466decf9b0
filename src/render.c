/* render.c - human-readable rendering of control replies (see render.h).
 * Owns only formatting; knows nothing about particular commands and must
 * not grow command-specific cases. */
#include "render.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A growable string. On memory error ok goes false and the content is
 * dropped; callers check once at the end. */
struct sbuf {
	char *s;
	size_t len, cap;
	bool ok;
};

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
	if (!b->ok)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 64;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		char *p = realloc(b->s, ncap);
		if (!p) {
			b->ok = false;
			return;
		}
		b->s = p;
		b->cap = ncap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static char *sb_take(struct sbuf *b)
{
	if (!b->ok) {
		free(b->s);
		return NULL;
	}
	if (!b->s)
		return strdup("");
	return b->s;
}

/* Appends s with control characters escaped; newline and tab kept when
 * multiline (free text), escaped otherwise (table cells, values). */
static void sb_escaped(struct sbuf *b, const char *s, size_t n, bool multiline)
{
	char hex[8];

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n' && multiline) {
			sb_putn(b, "\n", 1);
		} else if (c == '\t' && multiline) {
			sb_putn(b, "\t", 1);
		} else if (c == '\n') {
			sb_puts(b, "\\n");
		} else if (c == '\t') {
			sb_puts(b, "\\t");
		} else if (c == '\r') {
			sb_puts(b, "\\r");
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(hex, sizeof(hex), "\\x%02x", c);
			sb_puts(b, hex);
		} else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
			   (unsigned char)s[i + 1] <= 0x9f) {
			/* C1 control characters (U+0080..U+009F) */
			snprintf(hex, sizeof(hex), "\\u%04x", (unsigned char)s[i + 1]);
			sb_puts(b, hex);
			i++;
		} else {
			sb_putn(b, (const char *)&s[i], 1);
		}
	}
}

/* Display width: UTF-8 code points (continuation bytes do not count). */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void sb_pad(struct sbuf *b, size_t n)
{
	static const char sp[] = "                                ";

	while (n > 0) {
		size_t k = n < sizeof(sp) - 1 ? n : sizeof(sp) - 1;
		sb_putn(b, sp, k);
		n -= k;
	}
}

static void sb_real(struct sbuf *b, double d)
{
	char tmp[40];

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	sb_puts(b, tmp);
}

/* One value on one line. */
static void sb_scalar(struct sbuf *b, const json_t *v)
{
	char tmp[32];

	switch (json_typeof(v)) {
	case JSON_NULL:
		sb_puts(b, "-");
		break;
	case JSON_TRUE:
		sb_puts(b, "true");
		break;
	case JSON_FALSE:
		sb_puts(b, "false");
		break;
	case JSON_INTEGER:
		snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		sb_puts(b, tmp);
		break;
	case JSON_REAL:
		sb_real(b, json_real_value(v));
		break;
	case JSON_STRING:
		sb_escaped(b, json_string_value(v), json_string_length(v), false);
		break;
	default: {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!s) {
			b->ok = false;
			return;
		}
		sb_escaped(b, s, strlen(s), false);
		free(s);
	}
	}
}

char *render_scalar(const json_t *v)
{
	struct sbuf b = {.ok = true};

	sb_scalar(&b, v);
	return sb_take(&b);
}

static bool is_container(const json_t *v) { return json_is_object(v) || json_is_array(v); }

static bool all_objects(const json_t *a)
{
	size_t i;
	json_t *e;

	if (!json_array_size(a))
		return false;
	json_array_foreach(a, i, e) {
		if (!json_is_object(e))
			return false;
	}
	return true;
}

static bool all_strings(const json_t *a)
{
	size_t i;
	json_t *e;

	json_array_foreach(a, i, e) {
		if (!json_is_string(e))
			return false;
	}
	return true;
}

static bool all_scalars(const json_t *a)
{
	size_t i;
	json_t *e;

	json_array_foreach(a, i, e) {
		if (is_container(e))
			return false;
	}
	return true;
}

static void render_value(struct sbuf *b, const json_t *v, size_t indent);

static void render_table(struct sbuf *b, const json_t *rows, size_t indent)
{
	size_t nrows = json_array_size(rows), ncols = 0, i;
	const char **cols = NULL;
	json_t *row;

	/* columns: keys of the first row in order, then any new keys */
	json_array_foreach(rows, i, row) {
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)row, k, x) {
			size_t j;
			for (j = 0; j < ncols && strcmp(cols[j], k); j++)
				;
			if (j < ncols)
				continue;
			const char **n = realloc(cols, (ncols + 1) * sizeof(*cols));
			if (!n) {
				free(cols);
				b->ok = false;
				return;
			}
			cols = n;
			cols[ncols++] = k;
		}
	}
	if (!ncols) {
		free(cols);
		return;
	}
	/* cells[r][c], row 0 = header */
	char **cells = calloc((nrows + 1) * ncols, sizeof(*cells));
	size_t *w = calloc(ncols, sizeof(*w));
	bool *right = calloc(ncols, sizeof(*right));
	if (!cells || !w || !right) {
		b->ok = false;
		goto out;
	}
	for (size_t c = 0; c < ncols; c++) {
		struct sbuf h = {.ok = true};
		char *up = strdup(cols[c]);
		if (!up) {
			b->ok = false;
			goto out;
		}
		for (char *p = up; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		sb_escaped(&h, up, strlen(up), false);
		free(up);
		cells[c] = sb_take(&h);
		if (!cells[c]) {
			b->ok = false;
			goto out;
		}
		bool num = false, other = false;
		for (size_t r = 0; r < nrows; r++) {
			json_t *x = json_object_get(json_array_get(rows, r), cols[c]);
			if (json_is_number(x))
				num = true;
			else if (x && !json_is_null(x))
				other = true;
			cells[(r + 1) * ncols + c] = x ? render_scalar(x) : strdup("");
			if (!cells[(r + 1) * ncols + c]) {
				b->ok = false;
				goto out;
			}
		}
		right[c] = num && !other;
		for (size_t r = 0; r <= nrows; r++) {
			size_t cw = width(cells[r * ncols + c]);
			if (cw > w[c])
				w[c] = cw;
		}
	}
	for (size_t r = 0; r <= nrows; r++) {
		sb_pad(b, indent);
		for (size_t c = 0; c < ncols; c++) {
			const char *cell = cells[r * ncols + c];
			size_t pad = w[c] - width(cell);
			bool last = c + 1 == ncols;
			if (right[c])
				sb_pad(b, pad);
			sb_puts(b, cell);
			if (!right[c] && !last)
				sb_pad(b, pad);
			if (!last)
				sb_puts(b, "  ");
		}
		/* a right-aligned last column is padded before; nothing after */
		while (b->ok && b->len && b->s[b->len - 1] == ' ')
			b->s[--b->len] = '\0';
		sb_puts(b, "\n");
	}
out:
	if (cells)
		for (size_t k = 0; k < (nrows + 1) * ncols; k++)
			free(cells[k]);
	free(cells);
	free(w);
	free(right);
	free(cols);
}

static void render_lines(struct sbuf *b, const json_t *a, size_t indent)
{
	size_t i;
	json_t *e;

	json_array_foreach(a, i, e) {
		sb_pad(b, indent);
		sb_escaped(b, json_string_value(e), json_string_length(e), true);
		sb_puts(b, "\n");
	}
}

/* Is v shown on the same line as its key? */
static bool inline_value(const json_t *v)
{
	if (!is_container(v))
		return true;
	if (json_is_array(v))
		return json_array_size(v) == 0 || all_scalars(v);
	return json_object_size(v) == 0;
}

static void inline_text(struct sbuf *b, const json_t *v)
{
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		if (!json_array_size(v))
			sb_puts(b, "(none)");
		json_array_foreach(v, i, e) {
			if (i)
				sb_puts(b, ", ");
			sb_scalar(b, e);
		}
	} else if (json_is_object(v)) {
		sb_puts(b, "(none)");
	} else {
		sb_scalar(b, v);
	}
}

static void render_object(struct sbuf *b, const json_t *o, size_t indent)
{
	const char *k;
	json_t *v;
	void *it = json_object_iter((json_t *)o);
	bool printed = false, after_section = false;

	while (it) {
		k = json_object_iter_key(it);
		v = json_object_iter_value(it);
		if (!strcmp(k, "lines") && json_is_array(v) && all_strings(v)) {
			render_lines(b, v, indent);
			printed = true;
			after_section = false;
			it = json_object_iter_next((json_t *)o, it);
			continue;
		}
		if (inline_value(v)) {
			/* a run of key: value lines, keys aligned */
			size_t kw = 0;
			void *end = it;
			while (end && inline_value(json_object_iter_value(end)) &&
			       strcmp(json_object_iter_key(end), "lines")) {
				struct sbuf t = {.ok = true};
				const char *kk = json_object_iter_key(end);
				sb_escaped(&t, kk, strlen(kk), false);
				if (t.ok && t.s && width(t.s) > kw)
					kw = width(t.s);
				free(t.s);
				end = json_object_iter_next((json_t *)o, end);
			}
			if (it != end) {
				if (after_section)
					sb_puts(b, "\n");
				after_section = false;
				for (; it != end; it = json_object_iter_next((json_t *)o, it)) {
					struct sbuf t = {.ok = true};
					k = json_object_iter_key(it);
					sb_escaped(&t, k, strlen(k), false);
					char *ks = sb_take(&t);
					if (!ks) {
						b->ok = false;
						return;
					}
					sb_pad(b, indent);
					sb_puts(b, ks);
					sb_puts(b, ":");
					sb_pad(b, kw - width(ks) + 1);
					free(ks);
					inline_text(b, json_object_iter_value(it));
					sb_puts(b, "\n");
				}
				printed = true;
				continue;
			}
		}
		/* a section: heading, then the content indented */
		if (printed)
			sb_puts(b, "\n");
		sb_pad(b, indent);
		sb_escaped(b, k, strlen(k), false);
		sb_puts(b, ":\n");
		render_value(b, v, indent + 2);
		printed = true;
		after_section = true;
		it = json_object_iter_next((json_t *)o, it);
	}
}

static void render_value(struct sbuf *b, const json_t *v, size_t indent)
{
	size_t i;
	json_t *e;

	switch (json_typeof(v)) {
	case JSON_NULL:
		break;
	case JSON_STRING: {
		size_t n = json_string_length(v);
		if (!n)
			break;
		sb_pad(b, indent);
		sb_escaped(b, json_string_value(v), n, true);
		if (json_string_value(v)[n - 1] != '\n')
			sb_puts(b, "\n");
		break;
	}
	case JSON_ARRAY:
		if (!json_array_size(v)) {
			sb_pad(b, indent);
			sb_puts(b, "(none)\n");
		} else if (all_objects(v)) {
			render_table(b, v, indent);
		} else {
			json_array_foreach(v, i, e) {
				sb_pad(b, indent);
				sb_scalar(b, e);
				sb_puts(b, "\n");
			}
		}
		break;
	case JSON_OBJECT:
		render_object(b, v, indent);
		break;
	default:
		sb_pad(b, indent);
		sb_scalar(b, v);
		sb_puts(b, "\n");
	}
}

char *render_to_string(const json_t *v)
{
	struct sbuf b = {.ok = true};

	if (v)
		render_value(&b, v, 0);
	return sb_take(&b);
}

int render_result(FILE *out, const json_t *v)
{
	char *s = render_to_string(v);

	if (!s)
		return -1;
	size_t n = strlen(s);
	int r = (fwrite(s, 1, n, out) == n && fflush(out) == 0) ? 0 : -1;
	free(s);
	return r;
}
