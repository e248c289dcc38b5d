/* Privilege drop of the master.  Order matters (setuid(2), initgroups(3)):
 * supplementary groups and the gid can only be changed while still root, so
 * initgroups/setgroups, then setresgid, then setresuid last.  The saved ids
 * are set too (setres*id), so the process cannot switch back; that it cannot
 * is checked, not assumed (CERT POS37-C). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "supervisor/privileges.h"

static bool numeric(const char *v, unsigned long *out)
{
	char *end;
	if (!*v || strspn(v, "0123456789") != strlen(v))
		return false;
	errno = 0;
	*out = strtoul(v, &end, 10);
	return errno == 0 && *out < (unsigned long)(uid_t)-1;
}

static int resolve_user(const char *v, struct priv_target *t, char *err, size_t n)
{
	unsigned long id;
	struct passwd *pw = getpwnam(v);
	if (!pw && numeric(v, &id))
		pw = getpwuid((uid_t)id);
	if (pw) {
		t->uid = pw->pw_uid;
		t->gid = pw->pw_gid; /* the user's primary group unless group is set */
		t->set_gid = true;
		snprintf(t->name, sizeof(t->name), "%s", pw->pw_name);
	} else if (numeric(v, &id)) {
		t->uid = (uid_t)id; /* no passwd entry: no group to derive */
	} else {
		snprintf(err, n, "user %s: no such user on this host", v);
		return -1;
	}
	t->set_uid = true;
	return 0;
}

static int resolve_group(const char *v, struct priv_target *t, char *err, size_t n)
{
	unsigned long id;
	struct group *gr = getgrnam(v);
	if (gr)
		t->gid = gr->gr_gid;
	else if (numeric(v, &id))
		t->gid = (gid_t)id;
	else {
		snprintf(err, n, "group %s: no such group on this host", v);
		return -1;
	}
	t->set_gid = true;
	return 0;
}

int priv_resolve(const struct drover_conf *c, struct priv_target *t, char *err, size_t n)
{
	*t = (struct priv_target){ 0 };
	if (c->user && c->user[0] && resolve_user(c->user, t, err, n) < 0)
		return -1;
	if (c->group && c->group[0] && resolve_group(c->group, t, err, n) < 0)
		return -1;
	if (t->set_uid && !t->set_gid) {
		snprintf(err, n, "user %s: uid without a passwd entry; set group too", c->user);
		return -1;
	}
	return 0;
}

int priv_chown(const struct priv_target *t, const char *path)
{
	struct stat st;
	if (!path || !path[0] || (!t->set_uid && !t->set_gid) || geteuid() != 0)
		return 0;
	if (stat(path, &st) < 0)
		return -errno;
	/* only files drover made: never a device (error_log = /dev/stderr) */
	if (!S_ISREG(st.st_mode) && !S_ISSOCK(st.st_mode))
		return 0;
	if (chown(path, t->set_uid ? t->uid : (uid_t)-1, t->set_gid ? t->gid : (gid_t)-1) < 0)
		return -errno;
	return 0;
}

static bool already(const struct priv_target *t)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;
	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return false;
	return (!t->set_uid || (r == t->uid && e == t->uid && s == t->uid)) &&
	       (!t->set_gid || (rg == t->gid && eg == t->gid && sg == t->gid));
}

/* Supplementary groups: the user's from the group database (initgroups), or
 * only the target gid, never root's own list. */
static int set_groups(const struct priv_target *t, char *err, size_t n)
{
	int r = t->name[0] ? initgroups(t->name, t->gid) : setgroups(1, &t->gid);
	if (r < 0)
		snprintf(err, n, "%s: %s", t->name[0] ? "initgroups" : "setgroups", strerror(errno));
	return r;
}

static int verify(const struct priv_target *t, char *err, size_t n)
{
	if (!already(t)) {
		snprintf(err, n, "ids did not change as asked (getresuid/getresgid)");
		return -1;
	}
	if (t->set_uid && t->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, n, "could switch back to root after setresuid(%u)", (unsigned)t->uid);
		return -1;
	}
	return 0;
}

int priv_drop(const struct priv_target *t, char *err, size_t n)
{
	if ((!t->set_uid && !t->set_gid) || already(t))
		return 0;
	if (geteuid() != 0) {
		snprintf(err, n, "switching to uid %u gid %u needs root (running as uid %u)",
			 (unsigned)t->uid, (unsigned)t->gid, (unsigned)geteuid());
		return -1;
	}
	if (t->set_gid && set_groups(t, err, n) < 0)
		return -1;
	if (t->set_gid && setresgid(t->gid, t->gid, t->gid) < 0) {
		snprintf(err, n, "setresgid(%u): %s", (unsigned)t->gid, strerror(errno));
		return -1;
	}
	if (t->set_uid && setresuid(t->uid, t->uid, t->uid) < 0) {
		snprintf(err, n, "setresuid(%u): %s", (unsigned)t->uid, strerror(errno));
		return -1;
	}
	if (verify(t, err, n) < 0)
		return -1;
	/* Changing ids made the master non-dumpable, and its workers inherit
	 * that: /proc/PID/smaps_rollup, io, ... of a non-dumpable process are
	 * readable by root only (ptrace access mode), so the now unprivileged
	 * master could no longer sample its own workers.  Every id is the
	 * target's now; nginx sets it after setuid as well (for core dumps).
	 * The cost: a process of the same user may ptrace the master. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) {
		snprintf(err, n, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
		return -1;
	}
	return 0;
}

int priv_umask(const struct drover_conf *c)
{
	if (!c->umask || !c->umask[0])
		return 0;
	int m = conf_umask(c->umask);
	if (m < 0)
		return m;
	umask((mode_t)m);
	return 0;
}
