/* C apps: a shared object exporting a struct drover_app (see app.h), loaded
 * with dlopen.  APP is so:PATH[:SYMBOL]; the symbol defaults to drover_app. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_loader.h"

static void so_unload(struct app *a)
{
	/* Keep the object mapped: a worker is about to exit, and unmapping
	 * code that atexit handlers or threads may still reference buys nothing. */
	(void)a;
}

static int split_spec(const char *spec, char *path, size_t pcap, char *sym, size_t scap)
{
	if (strncmp(spec, "so:", 3) == 0)
		spec += 3;
	const char *colon = strrchr(spec, ':');
	size_t plen = colon ? (size_t)(colon - spec) : strlen(spec);
	if (plen == 0 || plen >= pcap)
		return -1;
	memcpy(path, spec, plen);
	path[plen] = 0;
	snprintf(sym, scap, "%s", colon && colon[1] ? colon + 1 : "drover_app");
	return 0;
}

struct app *app_so_load(const struct drover_conf *conf, const char *spec, char *err,
			size_t errlen)
{
	(void)conf;
	char path[4096], sym[256];
	if (split_spec(spec, path, sizeof(path), sym, sizeof(sym)) < 0) {
		snprintf(err, errlen, "%s: expected so:PATH[:SYMBOL]", spec);
		return NULL;
	}
	/* A bare name would be searched in the library path; "./" keeps a
	 * relative path relative, as the user meant. */
	char full[4112];
	snprintf(full, sizeof(full), "%s%s", strchr(path, '/') ? "" : "./", path);
	void *h = dlopen(full, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
		return NULL;
	}
	const struct drover_app *da = dlsym(h, sym);
	if (!da) {
		snprintf(err, errlen, "%s: no symbol %s: %s", path, sym, dlerror());
		goto fail;
	}
	if (da->abi_version != DROVER_APP_ABI_VERSION) {
		snprintf(err, errlen, "%s: %s has ABI version %u, drover expects %u", path, sym,
			 da->abi_version, DROVER_APP_ABI_VERSION);
		goto fail;
	}
	if (!da->handle) {
		snprintf(err, errlen, "%s: %s has no handle function", path, sym);
		goto fail;
	}
	struct app *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	a->kind = "so";
	snprintf(a->spec, sizeof(a->spec), "%s", spec);
	a->handler = da;
	a->impl = h;
	a->unload = so_unload;
	return a;
fail:
	dlclose(h);
	return NULL;
}
