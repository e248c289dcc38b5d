/* USR2 binary upgrade, both sides of it.  The old master forks and execs
 * its binary again (the path it was started from, so a replaced file or a
 * switched symlink is what runs) with the same argv, passing its listen
 * sockets the way systemd does (LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, fds
 * from 3): the new master takes them through the socket-activation path of
 * listen.c.  Readiness goes back over a pipe passed down as one more fd
 * (DROVER_UPGRADE_FD): the new master writes one byte once all its workers
 * accept, and the old master, which is its parent, also watches it with its
 * child watcher (an early exit means the upgrade failed) and a deadline
 * (upgrade_timeout).  While both run the old pidfile is PIDFILE.oldbin and
 * neither master shuts down or unlinks the shared sockets. */
#ifndef DROVER_UPGRADE_H
#define DROVER_UPGRADE_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct arbiter;

/* upgrade_handover, in the order of its choices in options.def */
enum { UPGRADE_AUTO, UPGRADE_MANUAL };

enum upgrade_phase {
	UPG_IDLE,
	UPG_STARTING, /* the new master boots; this one serves alone */
	UPG_HANDED_OVER, /* the new master serves; this one drains (auto) or waits (manual) */
};

struct upgrade {
	/* the old master's side */
	enum upgrade_phase phase;
	pid_t child; /* the new master, 0: none */
	int ready_fd; /* read end of the readiness pipe, -1: none */
	ev_io ready_io;
	ev_timer deadline;
	uint64_t begun_ns; /* monotonic ns of the USR2 */
	bool pidfile_moved; /* PIDFILE was renamed PIDFILE.oldbin */
	bool handover_stop; /* this master stops because the new one serves (auto) */
	/* the new master's side */
	pid_t parent; /* the master that started us on USR2, 0: none */
	int notify_fd; /* write end of its readiness pipe, -1: told (or none) */
	unsigned long long systemd_mask; /* passed sockets that are systemd's */
};

/* First thing in main, before anything changes argv or the directory:
 * remember the binary (argv[0] made absolute against the starting
 * directory, or found in PATH; symlinks are not resolved) and the argv. */
void upgrade_save_argv(int argc, char **argv);
/* In every master, before the sockets are opened: if started by a USR2,
 * take (and unset) DROVER_UPGRADE_FD and DROVER_SYSTEMD_FDS. */
void upgrade_child_init(struct upgrade *u);

/* USR2 in the old master: start the new one (refused with a log line if a
 * hand-over is under way).  Never blocks; failures are logged. */
void upgrade_begin(struct arbiter *ar);
/* From the tick in a new master: once all its workers accept, take over the
 * control socket, tell the old master and systemd (MAINPID=). */
void upgrade_tick(struct arbiter *ar);
/* A child exited: true if it was the new master (handled: the old master
 * serves on, alone, and logs why). */
bool upgrade_reaped(struct arbiter *ar, pid_t pid, int status);
/* The pidfile this master removes at exit: PIDFILE, or PIDFILE.oldbin once
 * renamed.  buf holds the result (cap bytes). */
const char *upgrade_pidfile(const struct upgrade *u, const char *pidfile, char *buf, size_t cap);
#endif
