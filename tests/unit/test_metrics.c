/* Unit tests of supervisor/metrics.c over a synthetic sampler: the
 * Prometheus exposition is parsed back line by line and its grammar checked
 * (names, labels, escapes, TYPE before samples, histogram buckets), the
 * status JSON is checked for balance and nulls, and mbuf's limit holds. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "supervisor/control.h"
#include "supervisor/mbuf.h"
#include "supervisor/metrics.h"
#include "supervisor/status.h"
#include "supervisor/sample.h"

static struct sampler *fake_sampler(void)
{
	struct sampler *s = calloc(1, sizeof(*s));
	s->clk_tck = 100;
	s->master = (struct master_view){.pid = 100, .state = "running", .target = 2, .live = 2,
					 .booted = 2, .started_ns = 1, .now_ns = 5000000001ull};
	s->nl = 1;
	s->l[0] = (struct listener_view){.tcp = true, .ok = true, .queued = 3, .limit = 128};
	snprintf(s->l[0].name, sizeof(s->l[0].name), "weird\"name\\x\n");
	s->host.has_load = true;
	s->host.online_cpus = 2;
	s->host.effective_cpus = 1.5;
	s->host.psi[0] = (struct psi){.present = true, .some = {.avg10 = 12.5, .total_us = 5}};
	for (int i = 0; i < 2; i++) {
		struct worker_view *v = &s->w[i * 7];
		v->no = (unsigned)i + 1;
		v->p.pid = 200 + i;
		v->p.valid = true;
		v->p.proc.stat.state = 'S';
		v->p.proc.stat.num_threads = 1;
		v->p.proc.stat.utime = 150;
		v->p.vcsw_total = 1000;
		v->requests = 30;
		v->hist.b[0] = 10;
		v->hist.b[3] = 20;
		v->hist.sum_ns = 12345678;
		v->has_figures = i == 0; /* the second has no rates yet */
		v->fig.rps = 3;
		v->fig.p99 = 0.0004;
	}
	return s;
}

static bool name_ok(const char *p, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)p[0]) || p[0] == '_' || p[0] == ':'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == ':'))
			return false;
	return true;
}

/* {k="v",...}: returns the position after '}', or NULL. */
static const char *labels_ok(const char *p)
{
	if (*p != '{')
		return p;
	p++;
	while (*p != '}') {
		const char *k = p;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		if (p == k || *p++ != '=' || *p++ != '"')
			return NULL;
		while (*p != '"') {
			if (*p == '\n' || !*p)
				return NULL;
			if (*p == '\\' && !(p[1] == '\\' || p[1] == '"' || p[1] == 'n'))
				return NULL;
			p += *p == '\\' ? 2 : 1;
		}
		p++;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return NULL;
	}
	return p + 1;
}

/* Checks every line; returns the number of samples, -1 on a bad line. */
static int parse_exposition(const char *text)
{
	char typed[64][96];
	int ntyped = 0, samples = 0;
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		if (!end)
			return -1; /* every line ends with \n */
		if (strncmp(line, "# TYPE ", 7) == 0) {
			const char *n = line + 7, *sp = strchr(n, ' ');
			if (!sp || sp > end || !name_ok(n, (size_t)(sp - n)) || ntyped == 64)
				return -1;
			snprintf(typed[ntyped++], 96, "%.*s", (int)(sp - n), n);
		} else if (strncmp(line, "# HELP ", 7) != 0) {
			const char *p = line;
			while (p < end && *p != '{' && *p != ' ')
				p++;
			if (!name_ok(line, (size_t)(p - line)))
				return -1;
			bool known = false;
			for (int i = 0; i < ntyped && !known; i++) {
				size_t tl = strlen(typed[i]);
				known = strncmp(line, typed[i], tl) == 0 &&
					(line + tl == p || !strncmp(line + tl, "_bucket", 7) ||
					 !strncmp(line + tl, "_sum", 4) || !strncmp(line + tl, "_count", 6));
			}
			if (!known || !(p = labels_ok(p)) || *p++ != ' ')
				return -1;
			char *num_end;
			strtod(p, &num_end);
			if (num_end != end)
				return -1;
			samples++;
		}
		line = end + 1;
	}
	return samples;
}

static void exposition_grammar(void)
{
	struct sampler *s = fake_sampler();
	struct mbuf b;
	mbuf_init(&b, 1 << 22);
	metrics_prometheus(s, &b);
	CHECK(!b.failed && b.p);
	int n = parse_exposition(b.p);
	CHECK(n > 50);
	CHECK(strstr(b.p, "drover_requests_total{worker=\"1\",pid=\"200\"} 30\n"));
	CHECK(strstr(b.p, "drover_worker_context_switches_total{worker=\"2\",pid=\"201\","
			  "kind=\"voluntary\"} 1000\n"));
	CHECK(strstr(b.p, "drover_worker_cpu_seconds_total{worker=\"1\",pid=\"200\",mode=\"user\"} 1.5\n"));
	CHECK(strstr(b.p, "listener=\"weird\\\"name\\\\x\\n\"} 3\n"));
	CHECK(strstr(b.p, "drover_host_pressure_avg10_ratio{resource=\"cpu\",kind=\"some\"} 0.125\n"));
	mbuf_free(&b);
	/* issue 13: the pool's utilization and demand in workers, for an HPA */
	s->pool.workers = 4;
	s->pool.util_mean = 0.75;
	mbuf_init(&b, 1 << 22);
	metrics_prometheus(s, &b);
	CHECK(strstr(b.p, "\ndrover_pool_utilization 0.75\n"));
	CHECK(strstr(b.p, "\ndrover_pool_demand_workers 3\n"));
	mbuf_free(&b);
	free(s);
}

static void histogram_buckets_cumulative(void)
{
	struct sampler *s = fake_sampler();
	struct mbuf b;
	mbuf_init(&b, 1 << 22);
	metrics_prometheus(s, &b);
	const char *p = b.p;
	double last = -1;
	int buckets = 0;
	const char *key = "drover_request_duration_seconds_bucket{worker=\"1\",";
	while ((p = strstr(p, key))) {
		double v = strtod(strchr(p, '}') + 2, NULL);
		CHECK(v >= last);
		last = v;
		buckets++;
		p++;
	}
	CHECK(buckets == SB_HIST_BUCKETS);
	CHECK(last == 30);
	CHECK(strstr(b.p, "le=\"+Inf\"} 30\n"));
	CHECK(strstr(b.p, "drover_request_duration_seconds_count{worker=\"1\",pid=\"200\"} 30\n"));
	CHECK(strstr(b.p, "drover_request_duration_seconds_sum{worker=\"1\",pid=\"200\"} 0.012345678\n"));
	mbuf_free(&b);
	free(s);
}

static void status_json_shape(void)
{
	struct sampler *s = fake_sampler();
	struct mbuf b;
	mbuf_init(&b, 1 << 22);
	status_json(s, &b);
	CHECK(!b.failed);
	int depth = 0, min = 0;
	bool in_str = false;
	for (const char *p = b.p; *p; p++) {
		if (in_str) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_str = false;
			continue;
		}
		in_str = *p == '"';
		depth += (*p == '{' || *p == '[') - (*p == '}' || *p == ']');
		min = depth < min ? depth : min;
		CHECK(*p != '\n');
	}
	CHECK(depth == 0 && min == 0 && !in_str);
	CHECK(strstr(b.p, "\"workers\":[{\"no\":1,\"pid\":200"));
	CHECK(strstr(b.p, "\"p99_ms\":0.4"));
	CHECK(strstr(b.p, "\"rps\":null")); /* worker 2 has no rates yet */
	CHECK(!strstr(b.p, ":nan") && !strstr(b.p, ":inf") && !strstr(b.p, ":-nan"));
	mbuf_free(&b);
	mbuf_init(&b, 1 << 20);
	status_table(s, &b);
	CHECK(strstr(b.p, "master 100 (running)"));
	CHECK(strstr(b.p, "req/s"));
	mbuf_free(&b);
	free(s);
}

static void mbuf_limit_and_escapes(void)
{
	struct mbuf b;
	mbuf_init(&b, 16);
	mbuf_printf(&b, "%s", "0123456789");
	CHECK(!b.failed && b.len == 10);
	mbuf_printf(&b, "%s", "0123456789");
	CHECK(b.failed && b.len == 10);
	mbuf_free(&b);
	mbuf_init(&b, 256);
	mbuf_json_str(&b, "a\"b\\c\n\x01");
	CHECK_STR(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\"");
	mbuf_free(&b);
	mbuf_init(&b, 256);
	mbuf_json_num(&b, NAN);
	mbuf_json_num(&b, 1.5);
	CHECK_STR(b.p, "null1.5");
	mbuf_free(&b);
}

static void control_path_defaults(void)
{
	char buf[256];
	control_path("/x/c.sock", "/run/d.pid", buf, sizeof(buf));
	CHECK_STR(buf, "/x/c.sock");
	control_path("", "/run/d.pid", buf, sizeof(buf));
	CHECK_STR(buf, "/run/d.ctl");
	control_path("", "/run/pidfile", buf, sizeof(buf));
	CHECK_STR(buf, "/run/pidfile.ctl");
	control_path("", "", buf, sizeof(buf));
	CHECK_STR(buf, "");
}

int main(void)
{
	RUN(exposition_grammar);
	RUN(histogram_buckets_cumulative);
	RUN(status_json_shape);
	RUN(mbuf_limit_and_escapes);
	RUN(control_path_defaults);
	return check_summary();
}
