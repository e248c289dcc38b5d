/* Every listening socket of the master (see listen.h).  They are
 * non-blocking because event workers poll them and a blocking accept() after
 * another worker won the race would hang; sync workers try accept first.
 * Errors are returned (-errno, or a message in err): the caller logs. */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

int listen_parse(const char *bind, struct worker_listener *l, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	snprintf(l->name, sizeof(l->name), "%s", bind);
	if (strncmp(bind, "fd:", 3) == 0) {
		/* a socket passed by name (systemd's FileDescriptorName=), which
		 * LISTEN_FDNAMES separates with ':' */
		if (!bind[3] || strchr(bind + 3, ':') || strlen(bind) >= sizeof(l->name)) {
			snprintf(err, errlen, "%s: expected fd:NAME (a LISTEN_FDNAMES name)", bind);
			return -1;
		}
		l->family = AF_UNSPEC; /* known once the socket is taken */
		return 0;
	}
	if (strncmp(bind, "unix:", 5) == 0) {
		if (strlen(bind + 5) == 0 || strlen(bind + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			snprintf(err, errlen, "%s: bad unix socket path", bind);
			return -1;
		}
		l->family = AF_UNIX;
		return 0;
	}
	const char *colon = strrchr(bind, ':');
	const char *host = bind;
	size_t hlen = colon ? (size_t)(colon - bind) : 0;
	if (bind[0] == '[') {
		const char *close = strchr(bind, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "%s: expected [IPv6]:PORT", bind);
			return -1;
		}
		host = bind + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	}
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || colon[1] == 0 || *end || port < 0 || port > 65535 || hlen >= sizeof(l->host)) {
		snprintf(err, errlen, "%s: expected HOST:PORT, [IPv6]:PORT or unix:PATH", bind);
		return -1;
	}
	memcpy(l->host, host, hlen);
	l->host[hlen] = 0;
	l->port = (int)port;
	l->family = strchr(l->host, ':') ? AF_INET6 : AF_INET;
	return 0;
}


void master_fds_add(struct master_fds *s, int fd)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->fd[i] == fd)
			return;
	if (s->n < MASTER_FDS_MAX)
		s->fd[s->n++] = fd;
}

void master_fds_del(struct master_fds *s, int fd)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->fd[i] == fd) {
			s->fd[i] = s->fd[--s->n];
			return;
		}
}

/* -errno of a failed getaddrinfo: EAI_SYSTEM carries errno, the rest mean
 * the name is not usable. */
static int resolve(const struct worker_listener *l, struct sockaddr_storage *ss, socklen_t *sl,
		   int *family)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res;
	char port[8];
	snprintf(port, sizeof(port), "%d", l->port);
	int rc = getaddrinfo(l->host[0] ? l->host : NULL, port, &hints, &res);
	if (rc != 0)
		return rc == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	*family = res->ai_family;
	freeaddrinfo(res);
	return 0;
}

/* bind + listen on a fresh socket: the fd, or -errno (the socket closed). */
static int bind_listen(int fd, const struct sockaddr *sa, socklen_t sl, int backlog)
{
	if (fd < 0)
		return -errno;
	if (bind(fd, sa, sl) == 0 && listen(fd, backlog) == 0)
		return fd;
	int e = -errno;
	close(fd);
	return e;
}

/* A unix socket path that a live listener answers on belongs to someone
 * else: "address in use", as for TCP.  A socket file nobody answers on
 * (ECONNREFUSED: left by a master that died) is removed so bind can take the
 * path.  Anything that is not a socket is left for bind to refuse. */
static int claim_unix_path(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int err = errno;
	close(fd);
	if (r == 0 || err == EAGAIN || err == EINPROGRESS)
		return -EADDRINUSE; /* answered, or its backlog is full: alive */
	struct stat st;
	if (err == ECONNREFUSED && lstat(sa->sun_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* The one unix bind path: claim, bind (with umask_bits cleared from the
 * file's mode from birth), listen, and note the file we created. */
static int open_unix_path(const char *path, mode_t umask_bits, int backlog,
			  struct listen_file *file)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(un.sun_path))
		return -ENAMETOOLONG;
	memcpy(un.sun_path, path, strlen(path) + 1);
	int r = claim_unix_path(&un);
	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	mode_t old = umask_bits ? umask(umask_bits) : 0;
	fd = bind_listen(fd, (struct sockaddr *)&un, sizeof(un), backlog);
	if (umask_bits)
		umask(old);
	struct stat st;
	if (fd >= 0 && lstat(path, &st) == 0)
		*file = (struct listen_file){.dev = st.st_dev, .ino = st.st_ino};
	return fd;
}

void listen_unlink_own(const char *path, const struct listen_file *file)
{
	struct stat st;
	if (file->ino && lstat(path, &st) == 0 && st.st_dev == file->dev &&
	    st.st_ino == file->ino)
		unlink(path);
}

/* defer: the listener serves HTTP clients, which speak first. */
static int open_tcp(struct worker_listener *l, int backlog, bool defer)
{
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	int r = resolve(l, &ss, &sl, &l->family);
	if (r < 0)
		return r;
	int fd = socket(l->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd >= 0) {
		/* Failing options cost performance or a restart delay, not service. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (l->family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if ((fd = bind_listen(fd, (struct sockaddr *)&ss, sl, backlog)) < 0)
		return fd;
	/* HTTP clients speak first: have accept() return a connection only once
	 * its request bytes arrived, which saves every model a wakeup and the
	 * sync model a failed read plus a poll per request (nginx's deferred). */
	if (defer)
		setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
	if (l->port == 0) { /* port 0: the kernel picked one; tell the logs */
		struct sockaddr_storage got;
		socklen_t gl = sizeof(got);
		if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0)
			l->port = ntohs(got.ss_family == AF_INET6
						? ((struct sockaddr_in6 *)&got)->sin6_port
						: ((struct sockaddr_in *)&got)->sin_port);
	}
	return fd;
}

/* ---- inherited sockets (LISTEN_FDS): systemd socket activation and USR2 ---- */

#define INHERIT_MAX 64

static struct inherited {
	int fd;
	char name[64]; /* LISTEN_FDNAMES entry ("unknown" when none) */
	enum listen_origin origin;
	bool taken;
} inh[INHERIT_MAX];
static size_t ninh;

/* The other master of an upgrade lives: our parent (we are the new master),
 * or a child still running (we are the old one).  Not kill(pid, 0): an old
 * master that exited stays a zombie until its own parent reaps it (or its
 * pid goes to someone else), and a new master stopped right after the
 * hand-over then took the sockets for shared and left its unix socket files
 * behind.  A parent that exited is no longer getppid() (we were reparented);
 * a child that exited is seen without reaping it (WNOWAIT leaves that to
 * the child watcher). */
static bool sharer_alive(pid_t pid)
{
	if (pid == getppid())
		return true;
	siginfo_t si = {0};
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

bool listen_shared(const struct listeners *ls, size_t i)
{
	return ls->file[i].origin == LISTEN_SYSTEMD || (ls->sharer && sharer_alive(ls->sharer));
}

int listen_inherit(enum listen_origin origin, unsigned long long systemd_mask)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);
	if (n <= 0)
		return n;
	int rc = n;
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		if (rc > 0 && sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
			rc = -ENOTSOCK;
		if (rc > 0 && (size_t)i < INHERIT_MAX) {
			/* Ours now: kept from exec'd helpers; non-blocking as every
			 * listener here (listen.c's header says why).  O_NONBLOCK is on
			 * the shared file description, which the other holders (systemd,
			 * the old master) do not mind. */
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
			struct inherited *h = &inh[ninh++];
			*h = (struct inherited){.fd = fd, .origin = origin};
			if (i < 64 && (systemd_mask >> i) & 1)
				h->origin = LISTEN_SYSTEMD;
			snprintf(h->name, sizeof(h->name), "%s", names && names[i] ? names[i] : "unknown");
		} else {
			close(fd); /* a socket we cannot use must not linger in the pool */
		}
		free(names ? names[i] : NULL);
	}
	free(names);
	return rc > 0 && n > INHERIT_MAX ? -EMFILE : rc;
}

/* Whether inherited socket fd listens on l's address. */
static bool same_address(int fd, struct worker_listener *l)
{
	struct sockaddr_storage got, want;
	socklen_t gl = sizeof(got), wl = 0;
	if (getsockname(fd, (struct sockaddr *)&got, &gl) < 0)
		return false;
	if (l->family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&got;
		return got.ss_family == AF_UNIX && gl > offsetof(struct sockaddr_un, sun_path) &&
		       strncmp(un->sun_path, l->name + 5, sizeof(un->sun_path)) == 0;
	}
	int family;
	if (resolve(l, &want, &wl, &family) < 0 || got.ss_family != want.ss_family)
		return false;
	if (family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&got, *b = (const void *)&want;
		return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *a = (const void *)&got, *b = (const void *)&want;
	return a->sin6_port == b->sin6_port &&
	       memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
}

/* A listener given by name has its address only once taken: fill what the
 * workers use (family, numeric host, port) from the socket itself. */
static void describe_taken(struct worker_listener *l, int fd)
{
	struct sockaddr_storage got;
	socklen_t gl = sizeof(got);
	if (getsockname(fd, (struct sockaddr *)&got, &gl) < 0)
		return;
	l->family = got.ss_family;
	if (got.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&got;
		inet_ntop(AF_INET, &a->sin_addr, l->host, sizeof(l->host));
		l->port = ntohs(a->sin_port);
	} else if (got.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&got;
		inet_ntop(AF_INET6, &a->sin6_addr, l->host, sizeof(l->host));
		l->port = ntohs(a->sin6_port);
	}
}

/* A unix socket passed by the master we replace (USR2) is ours from now on,
 * its file too: that master leaves the file to us (upgrade.c, handed_over)
 * and we remove it when we stop for good, as if we had bound it.  The file
 * at the path now is the one it bound.  systemd's are never ours (they stay
 * LISTEN_SYSTEMD, ino 0). */
static void note_upgraded_file(const char *path, struct listen_file *file)
{
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		file->dev = st.st_dev;
		file->ino = st.st_ino;
	}
}

/* 0 if an inherited socket matches l (by fd:NAME, else by address): l and
 * file then describe it; -1 if none does. */
static int take_inherited(struct worker_listener *l, struct listen_file *file)
{
	bool by_name = strncmp(l->name, "fd:", 3) == 0;
	for (size_t i = 0; i < ninh; i++) {
		struct inherited *h = &inh[i];
		if (h->taken || (by_name ? strcmp(h->name, l->name + 3) != 0 : !same_address(h->fd, l)) ||
		    (!by_name && strcmp(h->name, LISTEN_METRICS_NAME) == 0))
			continue;
		h->taken = true;
		l->fd = h->fd;
		if (by_name || l->family != AF_UNIX)
			describe_taken(l, h->fd);
		*file = (struct listen_file){.origin = h->origin};
		if (h->origin == LISTEN_UPGRADE && !by_name && l->family == AF_UNIX)
			note_upgraded_file(l->name + 5, file);
		return 0;
	}
	return -1;
}

int listen_inherit_check(char *err, size_t errlen)
{
	for (size_t i = 0; i < ninh; i++) {
		if (inh[i].taken || strcmp(inh[i].name, LISTEN_METRICS_NAME) == 0)
			continue;
		char addr[128] = "?";
		struct sockaddr_storage got;
		socklen_t gl = sizeof(got);
		struct worker_listener l = {0};
		if (getsockname(inh[i].fd, (struct sockaddr *)&got, &gl) == 0 &&
		    got.ss_family == AF_UNIX)
			snprintf(addr, sizeof(addr), "unix:%.100s",
				 ((struct sockaddr_un *)&got)->sun_path);
		else if ((describe_taken(&l, inh[i].fd), l.host[0]))
			snprintf(addr, sizeof(addr), l.family == AF_INET6 ? "[%s]:%d" : "%s:%d", l.host,
				 l.port);
		snprintf(err, errlen, "passed socket %d (name %s, %s) matches no bind entry: add "
			 "\"bind = %s\" or \"bind = fd:%s\"", inh[i].fd, inh[i].name, addr, addr,
			 inh[i].name);
		return -1;
	}
	return 0;
}

void listen_inherit_close_unused(void)
{
	for (size_t i = 0; i < ninh; i++)
		if (!inh[i].taken) {
			close(inh[i].fd);
			inh[i].taken = true;
		}
}

/* The metrics listener the master we replace passes on, if it listens on
 * l's address: its fd, else -1. */
static int take_inherited_metrics(struct worker_listener *l)
{
	for (size_t i = 0; i < ninh; i++) {
		struct inherited *h = &inh[i];
		if (!h->taken && strcmp(h->name, LISTEN_METRICS_NAME) == 0 && same_address(h->fd, l)) {
			h->taken = true;
			describe_taken(l, h->fd);
			return h->fd;
		}
	}
	return -1;
}

const char *listen_pass_name(const struct listeners *ls, size_t i)
{
	const char *name = ls->l[i].name;
	return strncmp(name, "fd:", 3) == 0 ? name + 3 : "bind";
}

static int open_one(struct worker_listener *l, struct listen_file *file, int backlog, char *err,
		    size_t errlen)
{
	if (take_inherited(l, file) == 0)
		return 0;
	if (l->family == AF_UNSPEC) {
		snprintf(err, errlen, "cannot listen on %s: no socket of that name was passed "
			 "(LISTEN_FDS/LISTEN_FDNAMES)", l->name);
		return -1;
	}
	int fd = l->family == AF_UNIX ? open_unix_path(l->name + 5, 0, backlog, file)
				      : open_tcp(l, backlog, true);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", l->name,
			 fd == -EADDRNOTAVAIL && l->family != AF_UNIX ? "cannot resolve the host"
								      : strerror(-fd));
		return -1;
	}
	l->fd = fd;
	return 0;
}

static int take_from(struct listeners *prev, struct worker_listener *l, struct listen_file *file)
{
	for (size_t i = 0; prev && i < prev->n; i++) {
		if (prev->l[i].fd >= 0 && strcmp(prev->l[i].name, l->name) == 0) {
			*l = prev->l[i];
			*file = prev->file[i];
			prev->l[i].fd = -1;
			return 1;
		}
	}
	return 0;
}

/* A failed reload gives the sockets it reused back to prev, losing nothing. */
static void give_back(struct listeners *out, struct listeners *prev)
{
	for (size_t i = 0; prev && i < out->n; i++) {
		for (size_t j = 0; out->l[i].fd >= 0 && j < prev->n; j++) {
			if (prev->l[j].fd < 0 && strcmp(prev->l[j].name, out->l[i].name) == 0) {
				prev->l[j] = out->l[i];
				prev->file[j] = out->file[i];
				out->l[i].fd = -1;
			}
		}
	}
}

int listen_open(const struct conf_list *binds, int backlog, struct listeners *prev,
		struct listeners *out, char *err, size_t errlen)
{
	size_t cap = binds->n ? binds->n : 1;
	*out = (struct listeners){.l = calloc(cap, sizeof(*out->l)),
				  .file = calloc(cap, sizeof(*out->file)),
				  .sharer = prev ? prev->sharer : 0};
	if (!out->l || !out->file) {
		snprintf(err, errlen, "out of memory");
		listen_close(out);
		return -1;
	}
	for (size_t i = 0; i < binds->n; i++) {
		struct worker_listener *l = &out->l[out->n];
		struct listen_file *file = &out->file[out->n];
		if (listen_parse(binds->items[i], l, err, errlen) < 0)
			goto fail;
		if (!take_from(prev, l, file) && open_one(l, file, backlog, err, errlen) < 0)
			goto fail;
		out->n++;
	}
	return 0;
fail:
	give_back(out, prev);
	listen_close(out);
	return -1;
}

void listen_close(struct listeners *ls)
{
	bool shared = ls->sharer && sharer_alive(ls->sharer);
	for (size_t i = 0; i < ls->n; i++) {
		if (ls->l[i].fd < 0)
			continue;
		close(ls->l[i].fd);
		if (ls->l[i].family == AF_UNIX && !shared)
			listen_unlink_own(ls->l[i].name + 5, &ls->file[i]);
	}
	free(ls->l);
	free(ls->file);
	*ls = (struct listeners){0};
}

int listen_metrics(const char *spec, char *name, size_t cap)
{
	char bind[160];
	struct worker_listener l;
	char err[128];
	/* A bare PORT is ":PORT"; the rest is the bind-string grammar. */
	snprintf(bind, sizeof(bind), "%s%s", strchr(spec, ':') ? "" : ":", spec);
	if (strncmp(bind, "unix:", 5) == 0 || listen_parse(bind, &l, err, sizeof(err)) < 0)
		return -EINVAL;
	if (!l.host[0] || strcmp(l.host, "localhost") == 0)
		snprintf(l.host, sizeof(l.host), "127.0.0.1"); /* metrics are private by default */
	unsigned char addr[16];
	if (inet_pton(AF_INET, l.host, addr) != 1 && inet_pton(AF_INET6, l.host, addr) != 1)
		return -EINVAL;
	int fd = take_inherited_metrics(&l);
	if (fd < 0)
		fd = open_tcp(&l, 64, false);
	if (fd >= 0)
		snprintf(name, cap, l.family == AF_INET6 ? "[%s]:%d" : "%s:%d", l.host, l.port);
	return fd;
}

int listen_private_unix(const char *path, int backlog, struct listen_file *file)
{
	int fd = open_unix_path(path, 0177, backlog, file);
	if (fd >= 0 && chmod(path, 0600) < 0) { /* a umask wider than ours */
		int e = -errno;
		close(fd);
		listen_unlink_own(path, file);
		return e;
	}
	return fd;
}

int listen_queue(int fd, unsigned *queued, unsigned *limit)
{
	/* On a listening socket, Linux reports the accept queue length in
	 * tcpi_unacked and its limit in tcpi_sacked. */
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	*queued = ti.tcpi_unacked;
	*limit = ti.tcpi_sacked;
	return 0;
}
