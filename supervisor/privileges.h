/* Process setup for running unprivileged (issue 13 item 3): the master binds
 * as root, then becomes `user`/`group` before it loads the app or forks a
 * worker, so no worker ever runs as root; `umask` for master and workers.
 * Library code: returns -errno / -1 with a message, the caller logs. */
#ifndef DROVER_PRIVILEGES_H
#define DROVER_PRIVILEGES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct drover_conf;

struct priv_target {
	bool set_uid, set_gid; /* user / group (or the user's group) given */
	uid_t uid;
	gid_t gid;
	char name[64]; /* passwd name for initgroups; "" for a uid without entry */
};

/* user and group of c into t (nothing set: t->set_uid = t->set_gid = false).
 * 0, or -1 with "user X: why" in err. */
int priv_resolve(const struct drover_conf *c, struct priv_target *t, char *err, size_t n);
/* Give path to the target user and group, so the unprivileged master can
 * still rewrite, reopen or remove it.  Regular files and sockets only (a log
 * on /dev/stderr stays as it is).  Empty path or nothing to drop: 0; -errno
 * of stat or chown otherwise. */
int priv_chown(const struct priv_target *t, const char *path);
/* Become t: supplementary groups, gid, uid, in that order, then check that
 * they took and that root cannot be regained.  Already t (systemd User=, a
 * re-executed master): 0 without changes.  -1 with the failing step and
 * its errno in err. */
int priv_drop(const struct priv_target *t, char *err, size_t n);
/* The umask option applied to this process (inherited by workers): 0, or
 * -EINVAL (conf validation makes that unreachable). */
int priv_umask(const struct drover_conf *c);

#endif
