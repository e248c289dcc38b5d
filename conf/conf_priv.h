/* Helpers shared by conf.c (parsing, errors) and conf_ini.c (rendering), so
 * that a value is written the way it is read.  Private to conf/: nothing
 * outside this folder includes it. */
#ifndef DROVER_CONF_PRIV_H
#define DROVER_CONF_PRIV_H

#include <stddef.h>

/* Shortest plain decimal (no exponent) that strtod reads back as v. */
void conf_fmt_double(char *buf, size_t n, double v);
/* A size with the largest exact 1024-based suffix: 100M, 64K, 8190. */
void conf_fmt_size(char *buf, size_t n, unsigned long long v);
/* '|'-separated choices as "a, b or c". */
void conf_choices_text(char *buf, size_t n, const char *choices);
/* Value checks of user, group and umask (conf_user.c): 0, or -1 with why. */
int conf_check_user(const char *v, char *why, size_t n);
int conf_check_group(const char *v, char *why, size_t n);
int conf_check_umask(const char *v, char *why, size_t n);

#endif
