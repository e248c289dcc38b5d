/* drover's configuration model: the struct generated from options.def, its
 * defaults, INI loading, single-key setting (for flags and --set), validation,
 * printing (--check-config), --help text and the example INI.
 * Knows nothing of processes; never logs: errors come back as text. */
#ifndef DROVER_CONF_H
#define DROVER_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct conf_list {
	char **items;
	size_t n;
};

enum conf_type { CONF_STR, CONF_INT, CONF_BOOL, CONF_DUR, CONF_SIZE, CONF_ENUM, CONF_LIST, CONF_NUM };

#define CONF_CTYPE_STR char *
#define CONF_CTYPE_INT long long
#define CONF_CTYPE_BOOL bool
#define CONF_CTYPE_DUR double
#define CONF_CTYPE_NUM double /* a plain decimal (a ratio) */
#define CONF_CTYPE_SIZE unsigned long long
#define CONF_CTYPE_ENUM int /* index into the choices */
#define CONF_CTYPE_LIST struct conf_list

struct drover_conf {
#define OPT(sec, key, type, def, min, max, choices, help) CONF_CTYPE_##type key;
#include "options.def"
#undef OPT
};

/* Enum values, in the order of the choices in options.def. */
enum { WORKER_SYNC, WORKER_THREAD, WORKER_EVENT, WORKER_ASGI };
enum { LOG_DEBUG_, LOG_INFO_, LOG_WARNING_, LOG_ERROR_, LOG_CRITICAL_ };

/* One row of the table, for code that walks every option. */
struct conf_option {
	const char *section, *key, *def, *choices, *help;
	enum conf_type type;
	double min, max;
	size_t offset;
};
extern const struct conf_option conf_options[];
extern const size_t conf_noptions;

#define CONF_ERR_MAX 512

/* All functions returning int give 0 on success, -1 with a message in err
 * (at most CONF_ERR_MAX bytes) on failure; on failure the conf is unchanged
 * as far as the caller can tell only for conf_load_file (which works on a copy). */

/* The umask option's value ("027", "0o27"): the mask, or -EINVAL. */
int conf_umask(const char *v);

/* Fill c with the built-in defaults.  c must be zeroed or freed before. */
void conf_defaults(struct drover_conf *c);
/* Release every string and list of c. */
void conf_free(struct drover_conf *c);
/* Deep copy; dst is overwritten (not freed first). */
void conf_copy(struct drover_conf *dst, const struct drover_conf *src);

/* Apply an INI file on top of c.  The whole file is validated on a copy first:
 * on any error c is untouched and err reads "FILE:LINE: [section] key: why".
 * A missing or unreadable file: "FILE: why". */
int conf_load_file(struct drover_conf *c, const char *path, char *err);

/* Set one option from text, as a flag or --set would.  For LIST options,
 * 'replace' clears the list first (the first -b on the command line replaces
 * the file's binds; later ones append).  err reads "[section] key: why". */
int conf_set(struct drover_conf *c, const char *section, const char *key,
	     const char *value, bool replace, char *err);
/* Find an option by key alone (keys are unique), or by "section.key". */
const struct conf_option *conf_find(const char *key);

/* Checks across options (e.g. max_requests_jitter without max_requests is fine,
 * but an empty bind list is not).  err reads "[section] key: why". */
int conf_validate(const struct drover_conf *c, char *err);

/* The effective configuration as an INI file (--check-config). */
void conf_print(const struct drover_conf *c, FILE *f);
/* The option part of --help: "  --key-name VALUE   help (default: X)". */
void conf_help(FILE *f);
/* The fully commented example INI (contrib/drover.ini is this output). */
void conf_example(FILE *f);

/* Parsers of the value syntaxes, exposed for the other modules and tests. */
int conf_parse_duration(const char *s, double *out);
int conf_parse_size(const char *s, unsigned long long *out);
int conf_parse_bool(const char *s, bool *out);
/* Name of an enum value, e.g. conf_enum_name("worker_class", 1) == "thread". */
const char *conf_enum_name(const char *key, int value);

#endif
