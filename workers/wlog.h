/* Logging inside a worker: the error log is the worker's fd 2 (the master
 * points it at the configured file), lines in the master's format. */
#ifndef DROVER_WLOG_H
#define DROVER_WLOG_H

#include "conf/conf.h"

extern int wlog_level; /* LOG_DEBUG_ .. LOG_CRITICAL_ */

void wlog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define wlog_debug(...) wlog(LOG_DEBUG_, __VA_ARGS__)
#define wlog_info(...) wlog(LOG_INFO_, __VA_ARGS__)
#define wlog_warn(...) wlog(LOG_WARNING_, __VA_ARGS__)
#define wlog_error(...) wlog(LOG_ERROR_, __VA_ARGS__)

/* Reopen the error log (USR1): reopen path and dup2 it onto fd 2. */
void wlog_reopen(const char *path);
#endif
