/* Process titles.  The kernel shows /proc/PID/cmdline from the original
 * argv memory; the strings of argv and environ are contiguous, so once
 * environ is copied to the heap the whole span can hold the title.  argv is
 * copied too, since the caller keeps parsing it (and re-reads it on reload). */
#include "proctitle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

static char *area;
static size_t area_len;

void proctitle_init(int argc, char **argv)
{
	if (argc <= 0 || !argv[0])
		return;
	char *start = argv[0];
	char *end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	char **env = calloc(nenv + 1, sizeof(char *));
	if (!env)
		return;
	for (size_t i = 0; i < nenv; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		env[i] = strdup(environ[i]);
	}
	environ = env;
	for (int i = 0; i < argc; i++)
		argv[i] = strdup(argv[i]);
	area = start;
	area_len = (size_t)(end - start);
}

void proctitle_set(const char *title)
{
	char comm[16];
	snprintf(comm, sizeof(comm), "%s", title);
	prctl(PR_SET_NAME, comm);
	if (!area || area_len < 2)
		return;
	size_t n = strlen(title);
	if (n >= area_len)
		n = area_len - 1;
	memcpy(area, title, n);
	memset(area + n, 0, area_len - n);
}
