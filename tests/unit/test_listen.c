/* listen.c's inherited sockets: LISTEN_FDS matched to bind entries by
 * address and by fd:NAME, an unmatched socket refused, and what may be done
 * to a socket another process shares (never shut down, never unlinked). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "supervisor/listen.h"

static char dir[] = "/tmp/drover-listen-XXXXXX";

static int tcp_listener(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) < 0)
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static int unix_listener(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0)
		return -1;
	return fd;
}

/* Put fds at 3.. as systemd does, and say so in the environment. */
static void pass(const int *fds, int n, const char *names)
{
	int high[8];
	for (int i = 0; i < n; i++)
		high[i] = fcntl(fds[i], F_DUPFD, 100);
	for (int i = 0; i < n; i++) {
		dup2(high[i], 3 + i);
		close(high[i]);
	}
	char v[32];
	snprintf(v, sizeof(v), "%d", n);
	setenv("LISTEN_FDS", v, 1);
	snprintf(v, sizeof(v), "%d", (int)getpid());
	setenv("LISTEN_PID", v, 1);
	setenv("LISTEN_FDNAMES", names, 1);
}

static void test_match_by_address_and_name(void)
{
	char path[100], tcp[64];
	int port;
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	int fds[2] = {tcp_listener(&port), unix_listener(path)};
	CHECK(fds[0] >= 0 && fds[1] >= 0);
	pass(fds, 2, "web:api");
	CHECK(listen_inherit(LISTEN_SYSTEMD, 0) == 2);
	CHECK(getenv("LISTEN_FDS") == NULL); /* unset: not for the workers */
	snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", port);
	char *items[] = {"fd:api", tcp};
	struct conf_list binds = {.items = items, .n = 2};
	struct listeners ls;
	char err[512] = "";
	CHECK(listen_open(&binds, 16, NULL, &ls, err, sizeof(err)) == 0);
	CHECK_STR(err, "");
	CHECK(listen_inherit_check(err, sizeof(err)) == 0);
	CHECK(ls.n == 2 && ls.l[0].fd == 4 && ls.l[1].fd == 3);
	CHECK(ls.l[0].family == AF_UNIX && ls.l[1].family == AF_INET && ls.l[1].port == port);
	CHECK(ls.file[0].origin == LISTEN_SYSTEMD && ls.file[0].ino == 0);
	CHECK(listen_shared(&ls, 0) && listen_shared(&ls, 1));
	CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC);
	CHECK(fcntl(3, F_GETFL) & O_NONBLOCK);
	CHECK_STR(listen_pass_name(&ls, 0), "api");
	CHECK_STR(listen_pass_name(&ls, 1), "bind");
	listen_close(&ls);
	struct stat st;
	CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)); /* systemd's file stays */
	unlink(path);
}

static void test_unmatched_is_an_error(void)
{
	int port, other;
	int fds[2] = {tcp_listener(&port), tcp_listener(&other)};
	pass(fds, 2, "web:extra");
	CHECK(listen_inherit(LISTEN_UPGRADE, 1) == 2); /* socket 0 is systemd's anyway */
	char tcp[64], err[512] = "", want[128];
	snprintf(tcp, sizeof(tcp), "127.0.0.1:%d", port);
	char *items[] = {tcp};
	struct conf_list binds = {.items = items, .n = 1};
	struct listeners ls;
	CHECK(listen_open(&binds, 16, NULL, &ls, err, sizeof(err)) == 0);
	CHECK(ls.file[0].origin == LISTEN_SYSTEMD);
	CHECK(listen_inherit_check(err, sizeof(err)) == -1);
	snprintf(want, sizeof(want), "passed socket 4 (name extra, 127.0.0.1:%d) matches no bind", other);
	CHECK(strstr(err, want) != NULL);
	listen_inherit_close_unused();
	listen_close(&ls);
}

static void test_shared_while_a_sharer_lives(void)
{
	char *items[] = {"127.0.0.1:0"};
	struct conf_list binds = {.items = items, .n = 1};
	struct listeners ls;
	char err[256];
	CHECK(listen_open(&binds, 16, NULL, &ls, err, sizeof(err)) == 0);
	CHECK(ls.file[0].origin == LISTEN_BOUND && !listen_shared(&ls, 0));
	ls.sharer = getppid(); /* we are the new master: the old one is our parent */
	CHECK(listen_shared(&ls, 0));
	/* we are the old master: the new one is our child, shared while it
	 * runs, and no more once it exited, reaped or not (a zombie's pid
	 * still answers kill 0) */
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	ls.sharer = child;
	CHECK(child > 0 && listen_shared(&ls, 0));
	kill(child, SIGKILL);
	siginfo_t si;
	CHECK(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT) == 0); /* a zombie now */
	CHECK(!listen_shared(&ls, 0));
	waitpid(child, NULL, 0);
	CHECK(!listen_shared(&ls, 0));
	ls.sharer = 0;
	listen_close(&ls);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(test_match_by_address_and_name);
	RUN(test_unmatched_is_an_error);
	RUN(test_shared_while_a_sharer_lives);
	rmdir(dir);
	return check_summary();
}
