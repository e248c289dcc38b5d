/* Picks the app backend from the APP spec and runs the per-worker start and
 * stop of whatever was loaded. */
#include "app_loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void (*app_heap_extra)(uint64_t *arena_bytes, uint64_t *blocks);

bool app_is_python(const char *spec)
{
	if (strncmp(spec, "so:", 3) == 0)
		return false;
	if (strncmp(spec, "python:", 7) == 0)
		return true;
	/* A path to a shared object given without the prefix is still C. */
	size_t n = strlen(spec);
	if (strchr(spec, '/') || (n > 3 && strcmp(spec + n - 3, ".so") == 0))
		return false;
	return true;
}

struct app *app_load(const struct drover_conf *conf, char *err, size_t errlen)
{
	const char *spec = conf->app;
	if (!spec || !*spec) {
		snprintf(err, errlen, "no application given (APP argument or [server] app)");
		return NULL;
	}
	if (app_is_python(spec))
		return app_wsgi_load(conf, spec, err, errlen);
	return app_so_load(conf, spec, err, errlen);
}

int app_worker_start(struct app *a, char *err, size_t errlen)
{
	if (a->after_fork && a->after_fork(a, err, errlen) < 0)
		return -1;
	if (a->handler->init && a->handler->init(&a->app_data) != 0) {
		snprintf(err, errlen, "%s: the app's init() failed", a->spec);
		return -1;
	}
	return 0;
}

void app_worker_stop(struct app *a)
{
	if (a->handler->shutdown)
		a->handler->shutdown(a->app_data);
	if (a->unload)
		a->unload(a);
	free(a); /* the worker's own copy, even of a preloaded app */
}
