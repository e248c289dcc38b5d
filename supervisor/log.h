/* The master's error log.  The log file is made the master's fd 2, so that
 * workers inherit it and anything written to stderr (an app's prints, a
 * Python traceback) lands in the same place. */
#ifndef DROVER_LOG_H
#define DROVER_LOG_H

#include <stddef.h>

#include "conf/conf.h"

extern int log_level;

/* Point fd 2 at path ("-" or empty: leave stderr).  -1 with err on failure. */
int log_open(const char *path, char *err, size_t errlen);
/* USR1: reopen the file (logrotate moved it away). */
void log_reopen(const char *path);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG_, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO_, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING_, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR_, __VA_ARGS__)
#define log_crit(...) log_msg(LOG_CRITICAL_, __VA_ARGS__)
#endif
