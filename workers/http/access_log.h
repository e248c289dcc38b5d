/* The access log: one line per request in an Apache-style format of %-codes,
 * compiled once per worker into a list of pieces. */
#ifndef DROVER_ACCESS_LOG_H
#define DROVER_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "workers/app/app.h"

struct access_log;

/* fmt: a preset name ("drover", "common", "combined") or a format.  NULL with
 * a message in err for an unknown %-code. */
struct access_log *access_log_new(const char *fmt, int fd, char *err, size_t errlen);
void access_log_free(struct access_log *a);
void access_log_set_fd(struct access_log *a, int fd);
int access_log_fd(const struct access_log *a);
/* Format one line into out (NUL-terminated, newline included); its length. */
size_t access_log_format(const struct access_log *a, char *out, size_t cap,
			 const struct drover_request *req, int status, uint64_t bytes,
			 uint64_t duration_ns);
/* Format and write(2) one line. */
void access_log_write(struct access_log *a, const struct drover_request *req, int status,
		      uint64_t bytes, uint64_t duration_ns);
#endif
