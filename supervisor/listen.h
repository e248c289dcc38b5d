/* Every socket the master listens on: the app's listeners (bind strings),
 * the metrics listener and the control socket.  Parsed and bound here, before
 * any fork; kept open across reloads so the accept queue survives worker
 * churn.  A unix socket path is claimed only if no live listener answers on
 * it, and a master removes only the socket file it created itself.  This is
 * where inherited sockets (LISTEN_FDS, an upgrade) will come in. */
#ifndef DROVER_LISTEN_H
#define DROVER_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "workers/worker.h"

/* The socket file a unix listener created: removed at close only if the
 * path still names this very file (another master may have replaced it). */
struct listen_file {
	dev_t dev;
	ino_t ino; /* 0: no file of ours (TCP, or not bound by us) */
};

struct listeners {
	struct worker_listener *l;
	struct listen_file *file; /* parallel to l */
	size_t n;
};

/* fds of the master's own sockets (control, metrics and their clients) that
 * a forked worker closes first thing. */
#define MASTER_FDS_MAX 64
struct master_fds {
	int fd[MASTER_FDS_MAX];
	size_t n;
};
void master_fds_add(struct master_fds *s, int fd);
void master_fds_del(struct master_fds *s, int fd);

/* Parse "HOST:PORT", "[V6]:PORT", ":PORT" or "unix:PATH" into l (no socket). */
int listen_parse(const char *bind, struct worker_listener *l, char *err, size_t errlen);
/* Bind every address of binds.  Sockets of prev whose bind string is still
 * wanted are reused (moved out of prev), so a reload keeps their queues.
 * -1 with err naming the address and the reason; nothing opened stays open. */
int listen_open(const struct conf_list *binds, int backlog, struct listeners *prev,
		struct listeners *out, char *err, size_t errlen);
/* Close all, removing the unix socket files we created. */
void listen_close(struct listeners *ls);
/* Connections waiting in the accept queue, and the queue limit (TCP_INFO).
 * 0 or -errno. */
int listen_queue(int fd, unsigned *queued, unsigned *limit);

/* The metrics listener: "PORT", ":PORT", "HOST:PORT" or "[V6]:PORT" with a
 * numeric host; no host (or localhost) means loopback.  Returns the
 * non-blocking fd and writes "HOST:PORT" (the port the kernel picked for 0)
 * to name; -EINVAL for a malformed spec, else -errno of the failing call. */
int listen_metrics(const char *spec, char *name, size_t cap);

/* A unix stream socket at path for the master alone (the control socket):
 * mode 0600 from birth, no window with wider rights.  The non-blocking fd, or
 * -EADDRINUSE if a live listener answers there, or another -errno. */
int listen_private_unix(const char *path, int backlog, struct listen_file *file);
/* Remove path if it is still the file we bound (file), else leave it. */
void listen_unlink_own(const char *path, const struct listen_file *file);
#endif
