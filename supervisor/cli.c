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

enum { OPT_BASE = 1000, OPT_NO_BASE = 3000, OPT_SET = 5000, OPT_CHECK, OPT_HELP, OPT_VERSION };

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
	size_t n = 0, cap = conf_noptions * 2 + 8;
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
	o[n++] = (struct option){"config", required_argument, NULL, 'c'};
	o[n++] = (struct option){"set", required_argument, NULL, OPT_SET};
	o[n++] = (struct option){"check-config", no_argument, NULL, OPT_CHECK};
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
	for (size_t i = 0; i < cli->nov; i++)
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

static int handle_opt(struct cli *cli, int c, char *err, size_t errlen)
{
	if (c == 'c') {
		cli->config_path = optarg;
		return 0;
	}
	if (short_key(c))
		return add_override(cli, short_key(c), optarg);
	if (c == OPT_SET)
		return handle_set(cli, optarg, err, errlen);
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

int cli_parse(int argc, char **argv, struct cli *cli, char *err, size_t errlen)
{
	memset(cli, 0, sizeof(*cli));
	struct option *lo = build_longopts();
	if (!lo) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = 0, c;
	optind = 1;
	opterr = 0; /* our own message, with the offending word */
	while (rc == 0 && (c = getopt_long(argc, argv, ":c:b:w:k:hV", lo, NULL)) != -1) {
		if (c == 'h')
			c = OPT_HELP;
		else if (c == 'V')
			c = OPT_VERSION;
		if (c == '?' || c == ':') {
			snprintf(err, errlen, "%s: %s (see --help)", argv[optind - 1],
				 c == '?' ? "unknown option" : "needs a value");
			rc = -1;
		} else {
			rc = handle_opt(cli, c, err, errlen);
		}
	}
	if (rc == 0 && optind < argc) {
		if (argc - optind > 1) {
			snprintf(err, errlen, "%s: only one APP can be given", argv[optind + 1]);
			rc = -1;
		} else {
			rc = add_override(cli, "app", argv[optind]);
		}
	}
	free_longopts(lo);
	return rc;
}

void cli_free(struct cli *cli)
{
	for (size_t i = 0; i < cli->nov; i++)
		free(cli->ov[i].value);
	free(cli->ov);
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

int cli_build_conf(const struct cli *cli, struct drover_conf *out, char *err, size_t errlen)
{
	struct drover_conf c;
	memset(&c, 0, sizeof(c));
	conf_defaults(&c);
	char why[CONF_ERR_MAX];
	if (cli->config_path && conf_load_file(&c, cli->config_path, why) < 0) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
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
