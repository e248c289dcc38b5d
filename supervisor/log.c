/* The master's error log: the workers' line format (worker_log_write), the
 * level filter, and opening the file as fd 2 (again on USR1). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "workers/worker.h"

int log_level = LOG_INFO_;

void log_msg(int level, const char *fmt, ...)
{
	if (level < log_level)
		return;
	int saved = errno; /* a caller's strerror(errno) argument was taken already */
	va_list ap;
	va_start(ap, fmt);
	worker_log_write(level, fmt, ap);
	va_end(ap);
	errno = saved;
}

int log_open(const char *path, char *err, size_t errlen)
{
	if (!path || !*path || strcmp(path, "-") == 0)
		return 0;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open error log %s: %s", path, strerror(errno));
		return -1;
	}
	if (dup2(fd, 2) < 0) {
		snprintf(err, errlen, "dup2(error log): %s", strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void log_reopen(const char *path)
{
	char err[512];
	if (log_open(path, err, sizeof(err)) < 0)
		log_error("%s", err);
}
