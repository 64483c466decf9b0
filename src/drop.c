/* drop.c - names and texts of drop reasons. */
#include "drop.h"

static const char *const texts[] = {
#define DROP_TEXT(name, text) text,
	DROP_REASONS(DROP_TEXT)
#undef DROP_TEXT
};
static const char *const names[] = {
#define DROP_NAME(name, text) #name,
	DROP_REASONS(DROP_NAME)
#undef DROP_NAME
};

const char *drop_reason_text(enum drop_reason r)
{
	return (unsigned)r < DROP__MAX ? texts[r] : "?";
}
const char *drop_reason_name(enum drop_reason r)
{
	return (unsigned)r < DROP__MAX ? names[r] : "?";
}
