/* The control socket's protocol: line commands with one-line JSON answers,
 * from a table that also gives `drover ctl --help` its list.  The socket is
 * bound by listen.c and served by ctlsrv.c. */
#ifndef DROVER_CONTROL_H
#define DROVER_CONTROL_H

#include <stddef.h>

struct arbiter;
struct ctl_client;
struct control;

struct control_cmd {
	const char *name;
	const char *args; /* NULL: none; "[word]": optional; else required */
	const char *help;
	void (*run)(struct ctl_client *c, struct arbiter *ar, const char *arg);
};
extern const struct control_cmd control_cmds[];
extern const size_t control_ncmds;
/* "status [table], metrics, workers N, ..." into buf. */
void control_cmd_list(char *buf, size_t cap);

/* The control socket's path: the control option, else beside the pidfile
 * (X.pid -> X.ctl, other names get ".ctl" appended), else "" (none). */
void control_path(const char *control, const char *pidfile, char *buf, size_t cap);

/* Bind and serve the control socket on ar's loop; NULL if none is
 * configured or it cannot be bound (logged: the master runs without it). */
struct control *control_start(struct arbiter *ar);
/* The same for a master started by USR2: bound beside the old master's
 * socket and renamed over its path, so that a client always finds one of
 * the two.  The old master leaves the path alone (the file is not its own). */
struct control *control_take_over(struct arbiter *ar);
/* Close it and remove its socket file if that is still ours. */
void control_stop(struct control *ctl);
#endif
