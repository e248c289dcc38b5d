/* Listening sockets: parse bind strings, bind before any fork, keep them open
 * across reloads (the accept queue survives worker churn), and read each TCP
 * listener's queue depth. */
#ifndef DROVER_LISTEN_H
#define DROVER_LISTEN_H

#include <stddef.h>

#include "conf/conf.h"
#include "workers/worker.h"

struct listeners {
	struct worker_listener *l;
	size_t n;
};

/* Parse "HOST:PORT", "[V6]:PORT", ":PORT" or "unix:PATH" into l (no socket). */
int listen_parse(const char *bind, struct worker_listener *l, char *err, size_t errlen);
/* Bind every address of binds.  Sockets of prev whose bind string is still
 * wanted are reused (moved out of prev), so a reload keeps their queues.
 * -1 with err naming the address and the reason; nothing opened stays open. */
int listen_open(const struct conf_list *binds, int backlog, struct listeners *prev,
		struct listeners *out, char *err, size_t errlen);
/* Close all (unlinking unix socket files). */
void listen_close(struct listeners *ls);
/* Connections waiting in the accept queue, and the queue limit (TCP_INFO). */
int listen_queue(int fd, unsigned *queued, unsigned *limit);
#endif
