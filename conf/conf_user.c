/* Checks of the process-setup options (user, group, umask): a name that
 * does not resolve on this host is a configuration error, reported with the
 * file, line and key like any other bad value, instead of a failure deep in
 * the master's start.  Kept apart from conf.c's address checks. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_priv.h"

static bool all_digits(const char *v)
{
	return *v && strspn(v, "0123456789") == strlen(v);
}

/* Octal, said so: "0o22" (Python's, gunicorn -m 0o22), a leading 0 ("022",
 * what umask(1) prints), or one digit.  "22" is refused, not guessed:
 * gunicorn reads it as decimal (18), a shell user as octal. */
int conf_umask(const char *v)
{
	const char *p = strncmp(v, "0o", 2) ? v : v + 2;
	char *end;

	if (!*p || strspn(p, "01234567") != strlen(p) || (p == v && p[0] != '0' && p[1]))
		return -EINVAL;
	long m = strtol(p, &end, 8);
	return m >= 0 && m <= 0777 ? (int)m : -EINVAL;
}

int conf_check_user(const char *v, char *why, size_t n)
{
	/* A numeric uid needs no passwd entry (containers often have none). */
	if (!*v || all_digits(v) || getpwnam(v))
		return 0;
	snprintf(why, n, "no such user '%s' on this host (getpwnam)", v);
	return -1;
}

int conf_check_group(const char *v, char *why, size_t n)
{
	if (!*v || all_digits(v) || getgrnam(v))
		return 0;
	snprintf(why, n, "no such group '%s' on this host (getgrnam)", v);
	return -1;
}

int conf_check_umask(const char *v, char *why, size_t n)
{
	if (!*v || conf_umask(v) >= 0)
		return 0;
	snprintf(why, n, "expected an octal mask from 0 to 0777 with a leading 0 (027 or 0o27), "
		 "got '%s'", v);
	return -1;
}
