/* Command-line parsing with getopt_long.  The long options are generated from
 * the option table, so a new option needs no change here; a few short flags
 * (-c -b -w -k) and the actions (--check-config, --help, --version, --set)
 * are added by hand. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover_config.h"
#include "workers/worker.h"

enum { OPT_BASE = 1000, OPT_NO_BASE = 3000, OPT_SET = 5000, OPT_CHECK, OPT_HELP, OPT_VERSION,
       OPT_PRINT_INI,
       OPT_GUNICORN = 6000 };

void cli_usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [OPTIONS] APP\n"
		"\n"
		"APP is so:PATH[:SYMBOL] for a C app (a shared object exporting struct drover_app),\n"
		"or MODULE:CALLABLE for a Python WSGI app.\n"
		"\n"
		"  -c, --config FILE        read options from an INI file (see contrib/drover.ini)\n"
		"  -b, --bind ADDR          HOST:PORT, [IPv6]:PORT or unix:PATH (repeatable)\n"
		"  -w, --workers N          number of worker processes\n"
		"  -k, --worker-class K     sync, thread or event\n"
		"      --set SECTION.KEY=VALUE  set any option of the INI file\n"
		"      --check-config       validate, print the effective configuration, exit\n"
		"      --print-ini          the same as an INI file to move to (e.g. from -c gunicorn.conf.py)\n"
		"GUNICORN_CMD_ARGS and DROVER_CMD_ARGS are read as flags before the command line.\n"
		"      --help, --version\n"
		"\n"
		"Every option (defaults < file < flags):\n",
		prog);
	conf_help(f);
	fprintf(f, "\n"
		   "Signals to the master: TTIN +1 worker, TTOU -1 worker, HUP reload config and\n"
		   "replace workers gracefully, TERM graceful stop, INT/QUIT fast stop, USR1 reopen\n"
		   "logs, WINCH stop all workers (the master stays). SIGUSR2 to a worker logs its stack.\n");
}

static char *dash_name(const char *key, const char *prefix)
{
	size_t n = strlen(prefix) + strlen(key) + 1;
	char *s = malloc(n);
	if (!s)
		return NULL;
	snprintf(s, n, "%s%s", prefix, key);
	for (char *p = s; *p; p++)
		if (*p == '_')
			*p = '-';
	return s;
}

static struct option *build_longopts(void)
{
	size_t n = 0, cap = conf_noptions * 2 + conf_gunicorn_nflags + 8;
	struct option *o = calloc(cap, sizeof(*o));
	if (!o)
		return NULL;
	for (size_t i = 0; i < conf_noptions; i++) {
		const struct conf_option *c = &conf_options[i];
		bool is_bool = c->type == CONF_BOOL;
		o[n++] = (struct option){dash_name(c->key, ""), is_bool ? no_argument : required_argument,
					 NULL, OPT_BASE + (int)i};
		if (is_bool)
			o[n++] = (struct option){dash_name(c->key, "no-"), no_argument, NULL,
						 OPT_NO_BASE + (int)i};
	}
	for (size_t j = 0; j < conf_gunicorn_nflags; j++) {
		const struct conf_gunicorn_flag *g = &conf_gunicorn_flags[j];
		bool taken = false;
		for (size_t k = 0; k < n; k++)
			taken |= strcmp(o[k].name, g->flag) == 0; /* e.g. --timeout is drover's too */
		if (!taken)
			o[n++] = (struct option){g->flag, g->arg ? required_argument : no_argument,
						 NULL, OPT_GUNICORN + (int)j};
	}
	o[n++] = (struct option){"config", required_argument, NULL, 'c'};
	o[n++] = (struct option){"set", required_argument, NULL, OPT_SET};
	o[n++] = (struct option){"check-config", no_argument, NULL, OPT_CHECK};
	o[n++] = (struct option){"print-ini", no_argument, NULL, OPT_PRINT_INI};
	o[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
	o[n++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
	return o;
}

static void free_longopts(struct option *o)
{
	for (struct option *p = o; p && p->name; p++)
		if (p->val >= OPT_BASE && p->val < OPT_SET)
			free((char *)p->name);
	free(o);
}

static int add_override(struct cli *cli, const char *key, const char *value)
{
	struct cli_override *n = realloc(cli->ov, (cli->nov + 1) * sizeof(*n));
	if (!n)
		return -1;
	cli->ov = n;
	bool replace = true;
	for (size_t i = cli->phase; i < cli->nov; i++)
		if (strcmp(cli->ov[i].key, key) == 0)
			replace = false; /* the second -b appends to the first */
	cli->ov[cli->nov++] = (struct cli_override){key, strdup(value), replace};
	return 0;
}

static const char *short_key(int c)
{
	switch (c) {
	case 'b': return "bind";
	case 'w': return "workers";
	case 'k': return "worker_class";
	default: return NULL;
	}
}

static int handle_set(struct cli *cli, const char *arg, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	char name[128];
	if (!eq || (size_t)(eq - arg) >= sizeof(name)) {
		snprintf(err, errlen, "--set %s: expected SECTION.KEY=VALUE", arg);
		return -1;
	}
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = 0;
	const struct conf_option *o = conf_find(name);
	if (!o) {
		snprintf(err, errlen, "--set %s: unknown option '%s'", arg, name);
		return -1;
	}
	return add_override(cli, o->key, eq + 1);
}

/* A gunicorn flag: an alias sets drover's option; the others are accepted
 * with a note at start, or refused saying what to do instead. */
static int handle_gunicorn(struct cli *cli, const struct conf_gunicorn_flag *g, char *err,
			   size_t errlen)
{
	if (!strcmp(g->key, "!")) {
		snprintf(err, errlen, "--%s: not supported by drover: %s", g->flag, g->note);
		return -1;
	}
	if (!g->key[0]) {
		bool seen = false;
		for (size_t i = 0; i < cli->nignored; i++)
			seen |= cli->ignored[i] == g;
		if (!seen && cli->nignored < sizeof(cli->ignored) / sizeof(cli->ignored[0]))
			cli->ignored[cli->nignored++] = g;
		return 0;
	}
	return add_override(cli, g->key, g->arg ? optarg : "true");
}

static int handle_opt(struct cli *cli, int c, char *err, size_t errlen)
{
	if (c >= OPT_GUNICORN && c < OPT_GUNICORN + (int)conf_gunicorn_nflags)
		return handle_gunicorn(cli, &conf_gunicorn_flags[c - OPT_GUNICORN], err, errlen);
	for (size_t j = 0; c > 0 && c < 128 && j < conf_gunicorn_nflags; j++)
		if (conf_gunicorn_flags[j].short_ == c)
			return handle_gunicorn(cli, &conf_gunicorn_flags[j], err, errlen);
	if (c == 'c') {
		cli->config_path = optarg;
		return 0;
	}
	if (short_key(c))
		return add_override(cli, short_key(c), optarg);
	if (c == OPT_SET)
		return handle_set(cli, optarg, err, errlen);
	if (c == OPT_PRINT_INI) {
		cli->check_config = cli->print_ini = true;
		return 0;
	}
	if (c == OPT_CHECK || c == OPT_HELP || c == OPT_VERSION) {
		*(c == OPT_CHECK ? &cli->check_config : c == OPT_HELP ? &cli->help : &cli->version) = true;
		return 0;
	}
	if (c >= OPT_NO_BASE && c < OPT_NO_BASE + (int)conf_noptions)
		return add_override(cli, conf_options[c - OPT_NO_BASE].key, "false");
	if (c >= OPT_BASE && c < OPT_BASE + (int)conf_noptions) {
		const struct conf_option *o = &conf_options[c - OPT_BASE];
		return add_override(cli, o->key, o->type == CONF_BOOL ? "true" : optarg);
	}
	snprintf(err, errlen, "unknown or incomplete option (see --help)");
	return -1;
}

/* getopt's short options: drover's, then gunicorn's letters (-t -e -n ...). */
static void short_opts(char *buf, size_t n)
{
	size_t k = (size_t)snprintf(buf, n, ":c:b:w:k:hV");
	for (size_t j = 0; j < conf_gunicorn_nflags && k + 3 < n; j++) {
		if (!conf_gunicorn_flags[j].short_)
			continue;
		buf[k++] = (char)conf_gunicorn_flags[j].short_;
		if (conf_gunicorn_flags[j].arg)
			buf[k++] = ':';
	}
	buf[k] = '\0';
}

/* One argv through getopt.  'what' prefixes errors (the variable's name).
 * argv[0] is a placeholder; positional words are the APP. */
static int parse_argv(struct cli *cli, int argc, char **argv, const struct option *lo,
		      const char *what, char *err, size_t errlen)
{
	char so[64], why[1024] = "";
	int rc = 0, c;
	short_opts(so, sizeof(so));
	cli->phase = cli->nov;
	optind = 0; /* 0, not 1: glibc re-initialises for the second argv */
	opterr = 0; /* our own message, with the offending word */
	while (rc == 0 && (c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		if (c == 'h')
			c = OPT_HELP;
		else if (c == 'V')
			c = OPT_VERSION;
		if (c == '?' || c == ':') {
			snprintf(why, sizeof(why), "%s: %s (see --help)", argv[optind - 1],
				 c == '?' ? "unknown option" : "needs a value");
			rc = -1;
		} else {
			rc = handle_opt(cli, c, why, sizeof(why));
		}
	}
	if (rc == 0 && optind < argc) {
		if (argc - optind > 1) {
			snprintf(why, sizeof(why), "%s: only one APP can be given", argv[optind + 1]);
			rc = -1;
		} else {
			rc = add_override(cli, "app", argv[optind]);
		}
	}
	if (rc < 0)
		snprintf(err, errlen, "%s%s%s", what ? what : "", what ? ": " : "", why);
	return rc;
}

/* Split a variable's value into words the way a shell would for plain
 * quoting ('..', "..", backslash), as gunicorn does with shlex.split. */
static char **split_words(const char *s, int *argc)
{
	/* The vector and the words' bytes in one block: getopt_long permutes
	 * the vector, so no entry of it can be trusted to point at the start
	 * of a separate buffer when it is freed (found by tests/fuzz/fuzz_cli). */
	size_t cap = strlen(s) + 2;
	char **v = calloc(1, (cap + 1) * sizeof(*v) + strlen(s) + 1);
	int n = 1;
	if (!v)
		return NULL;
	char *buf = (char *)(v + cap + 1);
	v[0] = "drover";
	char *w = buf;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (!*s)
			break;
		v[n++] = w;
		char q = 0;
		for (; *s && (q || (*s != ' ' && *s != '\t' && *s != '\n')); s++) {
			if (!q && (*s == '\'' || *s == '"'))
				q = *s;
			else if (q && *s == q)
				q = 0;
			else if (*s == '\\' && q != '\'' && s[1])
				*w++ = *++s;
			else
				*w++ = *s;
		}
		*w++ = '\0';
	}
	*argc = n;
	return v;
}

static void free_words(char **v)
{
	free(v);
}

static int parse_env(struct cli *cli, const char *name, const struct option *lo, char *err,
		     size_t errlen)
{
	const char *val = getenv(name);
	int argc = 0;
	if (!val || !*val)
		return 0;
	char **v = split_words(val, &argc);
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int slot = cli->words[0] ? 1 : 0;
	cli->words[slot] = v;
	cli->nwords[slot] = argc;
	return parse_argv(cli, argc, v, lo, name, err, errlen);
}

int cli_parse(int argc, char **argv, struct cli *cli, char *err, size_t errlen)
{
	memset(cli, 0, sizeof(*cli));
	struct option *lo = build_longopts();
	if (!lo) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = parse_env(cli, "GUNICORN_CMD_ARGS", lo, err, errlen);
	if (rc == 0)
		rc = parse_env(cli, "DROVER_CMD_ARGS", lo, err, errlen);
	if (rc == 0)
		rc = parse_argv(cli, argc, argv, lo, NULL, err, errlen);
	free_longopts(lo);
	return rc;
}

void cli_free(struct cli *cli)
{
	for (size_t i = 0; i < cli->nov; i++)
		free(cli->ov[i].value);
	free(cli->ov);
	for (int i = 0; i < 2; i++) {
		free_words(cli->words[i]);
		cli->words[i] = NULL;
	}
	cli->ov = NULL;
	cli->nov = 0;
}

static int apply_overrides(const struct cli *cli, struct drover_conf *c, char *err,
			   size_t errlen)
{
	for (size_t i = 0; i < cli->nov; i++) {
		const struct cli_override *ov = &cli->ov[i];
		const struct conf_option *o = conf_find(ov->key);
		char why[CONF_ERR_MAX];
		if (!o || conf_set(c, o->section, o->key, ov->value, ov->replace, why) < 0) {
			char *flag = dash_name(ov->key, "--");
			snprintf(err, errlen, "%s %s: %s", flag ? flag : ov->key, ov->value,
				 o ? why : "unknown option");
			free(flag);
			return -1;
		}
	}
	return 0;
}

static bool is_python_file(const char *path)
{
	size_t n = strlen(path);
	return n > 3 && strcmp(path + n - 3, ".py") == 0;
}

/* -c FILE: an INI file, or (ending in .py) a gunicorn.conf.py executed in a
 * child's embedded interpreter and mapped onto the option table.  Names
 * drover does not support are said in one warning on stderr. */
static int load_config(struct drover_conf *c, const char *path, char *err, size_t errlen)
{
	char why[CONF_ERR_MAX];
	if (!is_python_file(path)) {
		if (conf_load_file(c, path, why) == 0)
			return 0;
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	size_t cap = 64 * 1024;
	char *text = malloc(cap), warn[CONF_ERR_MAX * 2];
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = worker_python_config(path, text, cap, err, errlen);
	if (rc == 0)
		rc = conf_apply_gunicorn_py(c, path, text, err, errlen, warn, sizeof(warn));
	if (rc == 0 && warn[0])
		fprintf(stderr, "drover: warning: %s\n", warn);
	if (rc == 0)
		rc = conf_set(c, "python", "gunicorn_config", path, true, why);
	free(text);
	return rc;
}

int cli_build_conf(const struct cli *cli, struct drover_conf *out, char *err, size_t errlen)
{
	struct drover_conf c;
	memset(&c, 0, sizeof(c));
	conf_defaults(&c);
	char why[CONF_ERR_MAX];
	if (cli->config_path && load_config(&c, cli->config_path, err, errlen) < 0)
		goto fail;
	if (apply_overrides(cli, &c, err, errlen) < 0)
		goto fail;
	if (conf_validate(&c, why) < 0) {
		snprintf(err, errlen, "%s%s%s", cli->config_path ? cli->config_path : "",
			 cli->config_path ? ": " : "", why);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	conf_free(&c);
	return -1;
}
