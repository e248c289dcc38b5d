/* The control socket's protocol: line commands with one-line JSON answers,
 * from a table that also gives `drover ctl --help` its list.  The socket is
 * bound by listen.c and served by ctlsrv.c. */
#ifndef DROVER_CONTROL_H
#define DROVER_CONTROL_H

#include <stdbool.h>
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

/* The protocol, pure (tests/fuzz/fuzz_control.c drives these two).
 * Take the next line from in[0..inlen) (not NUL-terminated; cap: the input
 * buffer's size; eof: the peer shut its side, so a last line needs no
 * newline).  1: line (room for inlen + 1 bytes) holds it without its "\n" or
 * "\r\n" and *used the bytes to consume; 0: more bytes needed; -1: a full
 * buffer without a newline (the caller answers an error and closes). */
int control_take_line(const char *in, size_t inlen, size_t cap, bool eof, char *line, size_t *used);
/* Split line in place: the command of the table, with its argument in *arg
 * (NULL: none), or NULL with why in err ("" for an empty line: no answer). */
const struct control_cmd *control_parse(char *line, const char **arg, char *err, size_t errlen);

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
