/* The error log line, for workers and master alike: one write(2) per line to
 * fd 2, so lines from many processes and threads do not interleave
 * (O_APPEND). */
#include <errno.h>
#include "wlog.h"
#include "worker.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int wlog_level = LOG_INFO_;

static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};

void worker_log_write(int level, const char *fmt, va_list ap)
{
	char line[4096];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	size_t n = strftime(line, sizeof(line), "[%Y-%m-%d %H:%M:%S +0000] ", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "[%d] [%s] ", (int)getpid(),
			      level_names[level < 0 ? 0 : level > 4 ? 4 : level]);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	n = m < 0 ? n : n + (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(2, line, n);
	(void)w; /* nowhere left to report a failing error log */
}

void wlog(int level, const char *fmt, ...)
{
	if (level < wlog_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	worker_log_write(level, fmt, ap);
	va_end(ap);
}

void wlog_reopen(const char *path)
{
	if (!path || !*path || strcmp(path, "-") == 0)
		return;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		wlog_error("cannot reopen error log %s: %s", path, strerror(errno));
		return;
	}
	dup2(fd, 2);
	close(fd);
}
