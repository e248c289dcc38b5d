/* The master's error log: gunicorn-style lines "[time] [pid] [LEVEL] text",
 * each one write(2) on fd 2 so concurrent writers never interleave. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_level = LOG_INFO_;

static const char *const names[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};

void log_msg(int level, const char *fmt, ...)
{
	if (level < log_level)
		return;
	int saved = errno; /* %m in fmt refers to the caller's errno */
	char line[4096];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(line, sizeof(line), "[%Y-%m-%d %H:%M:%S +0000] ", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "[%d] [%s] ", (int)getpid(),
			      names[level < 0 ? 0 : level > 4 ? 4 : level]);
	va_list ap;
	va_start(ap, fmt);
	errno = saved;
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n = m < 0 ? n : n + (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(2, line, n);
	(void)w;
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
