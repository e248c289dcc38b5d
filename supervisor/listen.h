/* Every socket the master listens on: the app's listeners (bind strings),
 * the metrics listener and the control socket.  Parsed and bound here, before
 * any fork; kept open across reloads so the accept queue survives worker
 * churn.  A unix socket path is claimed only if no live listener answers on
 * it, and a master removes only the socket file it created itself.  Sockets
 * inherited through LISTEN_FDS (systemd socket activation, or the master we
 * replace on USR2: one code path) are matched to bind entries here. */
#ifndef DROVER_LISTEN_H
#define DROVER_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "workers/worker.h"

/* Where a listening socket came from, which says what this master may do to
 * it beyond accepting. */
enum listen_origin {
	LISTEN_BOUND, /* bound here */
	LISTEN_UPGRADE, /* bound by the master we replaced (USR2), passed by LISTEN_FDS */
	LISTEN_SYSTEMD, /* socket activation: systemd keeps it, we never shut or unlink it */
};

/* The socket file a unix listener created: removed at close only if the
 * path still names this very file (another master may have replaced it).
 * Inherited sockets never have a file of ours. */
struct listen_file {
	dev_t dev;
	ino_t ino; /* 0: no file of ours (TCP, or not bound by us) */
	enum listen_origin origin;
};

struct listeners {
	struct worker_listener *l;
	struct listen_file *file; /* parallel to l */
	size_t n;
	/* Another master holding the same sockets (the other side of a USR2
	 * hand-over), 0: none.  While it lives, no socket is shut down or its
	 * file removed: on Linux shutdown() on a listening socket stops it for
	 * every process sharing it. */
	pid_t sharer;
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
/* Close all, removing the unix socket files we created (none while a
 * sharer lives). */
void listen_close(struct listeners *ls);
/* Whether listener i is also another process's (systemd's, or a live
 * sharer's): then its queue is theirs too and it must not be shut down. */
bool listen_shared(const struct listeners *ls, size_t i);

/* Take the sockets passed by LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES
 * (sd_listen_fds_with_names, which also unsets them) for listen_open to
 * match: a bind "fd:NAME" takes the socket of that name, any other bind the
 * socket listening on its address.  origin is what they are (LISTEN_UPGRADE
 * or LISTEN_SYSTEMD); bit i of systemd_mask marks socket i as systemd's
 * anyway (an upgrade passes on what systemd gave the old master).  The
 * number of sockets, or -errno (a passed fd that is not a listening stream
 * socket: -ENOTSOCK). */
int listen_inherit(enum listen_origin origin, unsigned long long systemd_mask);
/* After the first listen_open: an inherited socket that no bind entry took
 * is an error (said in err), -1; else 0. */
int listen_inherit_check(char *err, size_t errlen);
/* The name under which a USR2 upgrade passes the metrics listener: not a
 * bind entry's, taken by listen_metrics for the same address. */
#define LISTEN_METRICS_NAME "drover-metrics"
/* Close passed sockets nobody took (a metrics listener no longer wanted). */
void listen_inherit_close_unused(void);
/* The LISTEN_FDNAMES name under which listener i is passed on (its
 * systemd name, the bind's fd:NAME, or "bind"); never contains ':'. */
const char *listen_pass_name(const struct listeners *ls, size_t i);
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
