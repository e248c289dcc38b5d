/* Unit tests for the pure protocol parts of the control socket (line
 * framing, command parsing) and of the metrics listener (request head),
 * which tests/fuzz also drives. */
#include <string.h>

#include "check.h"
#include "supervisor/control.h"
#include "supervisor/metrics_http.h"

static void control_lines(void)
{
	char line[64];
	size_t used = 0;
	CHECK(control_take_line("ping\r\nstatus\n", 13, 16, false, line, &used) == 1);
	CHECK_STR(line, "ping");
	CHECK(used == 6);
	CHECK(control_take_line("stat", 4, 16, false, line, &used) == 0); /* more to come */
	CHECK(control_take_line("stat", 4, 16, true, line, &used) == 1); /* last, at EOF */
	CHECK_STR(line, "stat");
	CHECK(used == 4);
	CHECK(control_take_line("0123456789abcdef", 16, 16, false, line, &used) == -1);
	CHECK(control_take_line("", 0, 16, true, line, &used) == 0);
}

static void control_commands(void)
{
	char line[64], err[600];
	const char *arg;
	const struct control_cmd *k;
	strcpy(line, "workers 3");
	k = control_parse(line, &arg, err, sizeof(err));
	CHECK(k && strcmp(k->name, "workers") == 0 && arg && strcmp(arg, "3") == 0);
	strcpy(line, "stop fast");
	k = control_parse(line, &arg, err, sizeof(err));
	CHECK(k && strcmp(k->name, "stop") == 0);
	strcpy(line, "stop now");
	CHECK(control_parse(line, &arg, err, sizeof(err)) == NULL && strstr(err, "unknown command"));
	strcpy(line, "ping x");
	CHECK(control_parse(line, &arg, err, sizeof(err)) == NULL && err[0]);
	strcpy(line, "status a b");
	CHECK(control_parse(line, &arg, err, sizeof(err)) == NULL && strstr(err, "too many"));
	strcpy(line, " \t ");
	CHECK(control_parse(line, &arg, err, sizeof(err)) == NULL && err[0] == '\0');
}

static void metrics_requests(void)
{
	struct metrics_req r;
	const char *get = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
	metrics_http_parse(get, strlen(get), 4096, false, &r);
	CHECK(r.route == MR_METRICS && !r.head);
	metrics_http_parse("HEAD /status.json HTTP/1.0\n\n", 28, 4096, false, &r);
	CHECK(r.route == MR_STATUS && r.head);
	metrics_http_parse("GET /metrics HTTP/1.1\r\n", 23, 4096, false, &r);
	CHECK(r.route == MR_MORE);
	metrics_http_parse("GET /metrics HTTP/1.1\r\n", 23, 4096, true, &r);
	CHECK(r.route == MR_CLOSE);
	metrics_http_parse("POST /metrics HTTP/1.1\r\n\r\n", 26, 4096, false, &r);
	CHECK(r.route == MR_TEXT && r.status == 405);
	metrics_http_parse("GET /x HTTP/1.1\r\n\r\n", 19, 4096, false, &r);
	CHECK(r.route == MR_TEXT && r.status == 404);
	metrics_http_parse("GET / SPDY\r\n\r\n", 14, 4096, false, &r);
	CHECK(r.route == MR_TEXT && r.status == 400);
	metrics_http_parse("GET /aaaa", 9, 9, false, &r);
	CHECK(r.route == MR_TEXT && r.status == 431);
	char longline[300];
	memset(longline, 'a', sizeof(longline));
	memcpy(longline + sizeof(longline) - 4, "\r\n\r\n", 4);
	metrics_http_parse(longline, sizeof(longline), 4096, false, &r);
	CHECK(r.route == MR_TEXT && r.status == 414);
}

int main(void)
{
	RUN(control_lines);
	RUN(control_commands);
	RUN(metrics_requests);
	return check_summary();
}
