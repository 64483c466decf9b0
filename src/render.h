/* render.h - human-readable rendering of detourd control replies for
 * detourctl: generic, driven only by the shape of the JSON (the daemon's
 * handlers decide the content). Owns no state; must not know about any
 * particular command.
 *
 *   array of objects   -> aligned table, columns = keys of the first object
 *                         in order (keys first seen in later rows appended),
 *                         upper-case header, numbers right-aligned, nested
 *                         values compact JSON, null as "-"
 *   object             -> per key, in order: a scalar -> "key: value" (keys
 *                         of a run of scalars aligned); an array of objects
 *                         or a nested object -> "key:" heading then its
 *                         content indented; "lines" (array of strings) ->
 *                         the lines as they are
 *   array of scalars   -> one per line; empty array -> "(none)"
 *   string             -> as it is; null -> nothing
 * Control characters from the daemon are escaped (no terminal injection). */
#ifndef DETOUR_RENDER_H
#define DETOUR_RENDER_H

#include <stdio.h>
#include <jansson.h>

/* Renders v to out. 0, or -1 on a write or memory error. */
int render_result(FILE *out, const json_t *v);

/* The same into a malloc'd string (caller frees); NULL on memory error. */
char *render_to_string(const json_t *v);

/* A scalar as text ("-" for null, compact JSON for arrays/objects, reals in
 * their shortest round-trip form); malloc'd, NULL on memory error. */
char *render_scalar(const json_t *v);

#endif
