/* gunicorn compatibility of the configuration (issue 14): gunicorn's flag
 * names (the GUNICORN rows of options.def) and gunicorn's spellings of values
 * (worker classes, access-log atoms, a bind without a port), translated to
 * drover's.  Pure text functions; never logs. */
#ifndef DROVER_CONF_GUNICORN_H
#define DROVER_CONF_GUNICORN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "conf.h"

/* One gunicorn flag.  key: the drover option it sets, "" accepted with no
 * effect, "!" refused; note says why (for "" and "!"). */
struct conf_gunicorn_flag {
	const char *flag; /* long name without "--" */
	int short_;       /* short letter, or 0 */
	const char *key;
	int arg;          /* 1: takes a value */
	const char *note;
};
extern const struct conf_gunicorn_flag conf_gunicorn_flags[];
extern const size_t conf_gunicorn_nflags;

/* Translate a gunicorn spelling of option key's value into drover's.
 * Returns 0 with *out NULL (nothing to translate), 0 with *out a malloc'd
 * replacement, or -1 with why (a refusal, e.g. -k gevent, or a bad atom). */
int conf_gunicorn_value(const char *key, const char *value, char **out, char *why, size_t n);

/* gunicorn's access_log_format ("%(h)s %(r)s ...", Python %-formatting of
 * named atoms) as a drover format ("%h %r ...").  0 with *out malloc'd, or
 * -1 with why naming the atom drover cannot log. */
int conf_gunicorn_log_format(const char *g, char **out, char *why, size_t n);

/* The gunicorn flags for option key, as ", also -t, --timeout", in buf. */
void conf_gunicorn_aliases(const char *key, char *buf, size_t n);
/* The --help part listing accepted-without-effect and refused gunicorn flags. */
void conf_gunicorn_help(FILE *f);

/* Apply the settings of a gunicorn.conf.py (text: the "name<TAB>value" lines
 * of worker_python_config) onto c, each through conf_set's validation.  On
 * error c is untouched and err reads "FILE: name: why".  warn (empty if none)
 * lists, in one line, the names drover does not support. */
int conf_apply_gunicorn_py(struct drover_conf *c, const char *path, const char *text,
			   char *err, size_t errlen, char *warn, size_t warnlen);
/* Whether name is a server hook drover calls. */
bool conf_gunicorn_is_hook(const char *name);

#endif
