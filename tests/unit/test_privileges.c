/* Unit tests of supervisor/privileges.c and conf_umask: resolving user and
 * group (names, numbers, unknown), the umask syntax, and a drop to the ids
 * the process already has (a no-op, as under systemd User=).  The real drop
 * from root is tested end to end in tests/integration/test_privileges.py. */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "conf/conf.h"
#include "supervisor/privileges.h"

static int resolve(const char *user, const char *group, struct priv_target *t, char *err)
{
	struct drover_conf c;
	conf_defaults(&c);
	free(c.user);
	free(c.group);
	c.user = strdup(user);
	c.group = strdup(group);
	int r = priv_resolve(&c, t, err, 256);
	conf_free(&c);
	return r;
}

static void resolve_names_and_numbers(void)
{
	struct priv_target t;
	char err[256];
	struct passwd *pw = getpwnam("nobody");
	CHECK(resolve("", "", &t, err) == 0 && !t.set_uid && !t.set_gid);
	if (pw) {
		/* copies: getpw* reuse one static buffer, which resolve overwrites */
		uid_t uid = pw->pw_uid;
		gid_t gid = pw->pw_gid;
		CHECK(resolve("nobody", "", &t, err) == 0 && t.set_uid && t.set_gid);
		CHECK(t.uid == uid && t.gid == gid && !strcmp(t.name, "nobody"));
		char num[32];
		snprintf(num, sizeof(num), "%u", (unsigned)uid);
		CHECK(resolve(num, "", &t, err) == 0 && t.uid == uid && !strcmp(t.name, "nobody"));
		CHECK(resolve("nobody", "0", &t, err) == 0 && t.gid == 0); /* group wins */
	}
	/* a uid with no passwd entry: no primary group to take */
	CHECK(resolve("4000000000", "", &t, err) == -1 && strstr(err, "set group too"));
	CHECK(resolve("4000000000", "123", &t, err) == 0 && t.uid == 4000000000u && t.gid == 123 &&
	      !t.name[0]);
	CHECK(resolve("", "123", &t, err) == 0 && !t.set_uid && t.set_gid && t.gid == 123);
	CHECK(resolve("no-such-user-x", "", &t, err) == -1);
	CHECK_STR(err, "user no-such-user-x: no such user on this host");
	CHECK(resolve("", "no-such-group-x", &t, err) == -1);
	CHECK_STR(err, "group no-such-group-x: no such group on this host");
}

static void umask_syntax(void)
{
	CHECK(conf_umask("027") == 027 && conf_umask("0o27") == 027 && conf_umask("0") == 0);
	CHECK(conf_umask("0777") == 0777 && conf_umask("7") == 7 && conf_umask("0o0") == 0);
	/* "22": octal to a shell user, decimal to gunicorn: refused, not guessed */
	CHECK(conf_umask("22") == -EINVAL && conf_umask("777") == -EINVAL);
	CHECK(conf_umask("1000") == -EINVAL && conf_umask("8") == -EINVAL);
	CHECK(conf_umask("") == -EINVAL && conf_umask("0o") == -EINVAL && conf_umask("-1") == -EINVAL);
}

static void drop_to_self_is_a_no_op(void)
{
	struct priv_target t = {.set_uid = true, .set_gid = true, .uid = getuid(), .gid = getgid()};
	char err[256] = "";
	CHECK(priv_drop(&t, err, sizeof(err)) == 0 && !err[0]);
	CHECK(getuid() == t.uid && getgid() == t.gid);
	struct priv_target none = {0};
	CHECK(priv_drop(&none, err, sizeof(err)) == 0);
	CHECK(priv_chown(&none, "/nonexistent/x") == 0); /* nothing to give: not even looked at */
	if (geteuid() == 0) { /* a device is never given away */
		struct stat before, after;
		struct priv_target nob = {.set_uid = true, .set_gid = true, .uid = 65534, .gid = 65534};
		CHECK(stat("/dev/null", &before) == 0 && priv_chown(&nob, "/dev/null") == 0);
		CHECK(stat("/dev/null", &after) == 0 && after.st_uid == before.st_uid);
		CHECK(priv_chown(&nob, "/nonexistent/x") == -ENOENT);
	}
}

int main(void)
{
	RUN(resolve_names_and_numbers);
	RUN(umask_syntax);
	RUN(drop_to_self_is_a_no_op);
	return check_summary();
}
