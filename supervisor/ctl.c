/* `drover ctl`: the control socket's command-line client.  It finds the
 * socket (-s/--control PATH, or from a config file's control/pidfile, or from
 * a pidfile), sends one command line, and prints the one-line JSON answer,
 * with `status` shown as a table and text answers unwrapped. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor/ctl.h"

#include "conf/conf.h"
#include "supervisor/control.h"
#include "supervisor/ctlsrv.h"

#define ANSWER_TIMEOUT_MS 30000

static void usage(FILE *f)
{
	fprintf(f, "usage: drover ctl [-s|--control PATH | -c CONFIG | --pidfile FILE] [--json] "
		   "COMMAND [ARG]\n\ncommands:\n");
	for (size_t i = 0; i < control_ncmds; i++) {
		const struct control_cmd *k = &control_cmds[i];
		char name[32];
		snprintf(name, sizeof(name), "%s%s%s", k->name, k->args ? " " : "",
			 k->args ? k->args : "");
		fprintf(f, "  %-16s %s\n", name, k->help);
	}
}

/* Decode the JSON string starting at s (just after its opening quote) into
 * out, in place safe.  Only what the master emits: simple escapes, \u00XX. */
static void json_unescape(const char *s, char *out)
{
	for (; *s && *s != '"'; s++) {
		if (*s != '\\') {
			*out++ = *s;
			continue;
		}
		switch (*++s) {
		case 'n': *out++ = '\n'; break;
		case 't': *out++ = '\t'; break;
		case 'r': *out++ = '\r'; break;
		case 'b': *out++ = '\b'; break;
		case 'f': *out++ = '\f'; break;
		case 'u': {
			unsigned v = 0;
			if (sscanf(s + 1, "%4x", &v) == 1 && v < 0x80)
				*out++ = (char)v;
			s += strlen(s) >= 5 ? 4 : strlen(s) - 1;
			break;
		}
		case '\0': s--; break;
		default: *out++ = *s; break;
		}
	}
	*out = '\0';
}

static int resolve_path(const char *sock, const char *config, const char *pidfile, char *buf,
			size_t cap)
{
	if (sock) {
		snprintf(buf, cap, "%s", sock);
		return 0;
	}
	if (pidfile) {
		control_path(NULL, pidfile, buf, cap);
		return 0;
	}
	if (!config) {
		fprintf(stderr, "drover ctl: say where the master is: -s PATH, -c CONFIG or --pidfile FILE\n");
		return -1;
	}
	struct drover_conf c = {0};
	char err[CONF_ERR_MAX];
	conf_defaults(&c);
	if (conf_load_file(&c, config, err) < 0) {
		fprintf(stderr, "drover ctl: %s\n", err);
		conf_free(&c);
		return -1;
	}
	control_path(c.control, c.pidfile, buf, cap);
	conf_free(&c);
	if (!buf[0]) {
		fprintf(stderr, "drover ctl: %s sets neither control nor pidfile\n", config);
		return -1;
	}
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "drover ctl: %s: path too long\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "drover ctl: cannot connect to %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Send one line, read one line back (into a growing buffer). */
static char *exchange(int fd, const char *line)
{
	size_t len = strlen(line), off = 0, cap = 65536, n = 0;
	while (off < len) {
		ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno != EINTR)
			return NULL;
		off += w > 0 ? (size_t)w : 0;
	}
	char *buf = malloc(cap);
	while (buf) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, ANSWER_TIMEOUT_MS) <= 0)
			break;
		if (n + 1 == cap) {
			char *nb = cap < CTL_OUT_MAX * 2 ? realloc(buf, cap * 2) : NULL;
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (memchr(buf + n - (size_t)r, '\n', (size_t)r))
			return buf;
	}
	free(buf);
	return NULL;
}

static int print_answer(char *ans, bool json)
{
	static const char ok_text[] = "{\"ok\":true,\"text\":\"";
	static const char err_text[] = "{\"ok\":false,\"error\":\"";
	if (!json && strncmp(ans, ok_text, sizeof(ok_text) - 1) == 0) {
		json_unescape(ans + sizeof(ok_text) - 1, ans);
		fputs(ans, stdout);
		return 0;
	}
	if (strncmp(ans, err_text, sizeof(err_text) - 1) == 0) {
		if (json) {
			fputs(ans, stdout);
		} else {
			json_unescape(ans + sizeof(err_text) - 1, ans);
			fprintf(stderr, "drover ctl: %s\n", ans);
		}
		return 1;
	}
	fputs(ans, stdout);
	return 0;
}

int ctl_main(int argc, char **argv)
{
	const char *sock = NULL, *config = NULL, *pidfile = NULL;
	bool json = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if ((!strcmp(a, "-s") || !strcmp(a, "--control")) && has_val)
			sock = argv[++i];
		else if (!strcmp(a, "-c") && has_val)
			config = argv[++i];
		else if (!strcmp(a, "--pidfile") && has_val)
			pidfile = argv[++i];
		else if (!strcmp(a, "--json"))
			json = true;
		else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc || i + 2 < argc) {
		usage(stderr);
		return 2;
	}
	char path[512], line[256];
	if (resolve_path(sock, config, pidfile, path, sizeof(path)) < 0)
		return 2;
	bool table = !json && strcmp(argv[i], "status") == 0 && i + 1 == argc;
	snprintf(line, sizeof(line), "%s%s%s\n", argv[i], i + 1 < argc ? " " : "",
		 table ? "table" : (i + 1 < argc ? argv[i + 1] : ""));
	if (table)
		snprintf(line, sizeof(line), "status table\n");
	if (json && strcmp(argv[i], "doctor") == 0 && i + 1 == argc)
		snprintf(line, sizeof(line), "doctor json\n");
	int fd = connect_to(path);
	if (fd < 0)
		return 1;
	char *ans = exchange(fd, line);
	close(fd);
	if (!ans) {
		fprintf(stderr, "drover ctl: no answer from %s\n", path);
		return 1;
	}
	int rc = print_answer(ans, json);
	free(ans);
	return rc;
}
