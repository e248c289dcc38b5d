/* A C app that fragments its heap on purpose, to show drover's memory
 * verdict (README "Memory verdicts").  GET /grow?mb=N allocates N MB (default
 * 8) of small objects, as a request building a big response from little
 * pieces would, and keeps one object per 4 KB page in a bounded cache (the
 * cache's newest FRAG_CACHE_MB worth of pages, 64 by default); everything
 * else is freed.  The heap in use stays small and flat, yet every page keeps
 * a live object, so neither free() nor malloc_trim() can give it back: RSS
 * climbs to the cache's reach and stays.  GET /grow?mb=N&sparse=1 keeps one
 * object per 64 KB instead: then malloc_trim() gives most pages back.
 * Any other path: a small "ok".  Thread-safe (one lock around the cache).
 *   drover --rss-growth-limit 32M so:./fragment.so */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

#define OBJ 240 /* + malloc's 16-byte header: 16 objects a page */
#define PER_PAGE (4096 / (OBJ + 16))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void **cache;
static size_t cache_cap, cache_pos;

static int frag_init(void **app_data)
{
	(void)app_data;
	const char *e = getenv("FRAG_CACHE_MB");
	size_t mb = e && atoi(e) > 0 ? (size_t)atoi(e) : 64;
	cache_cap = mb * 256; /* one object per 4 KB page of mb MB */
	cache = calloc(cache_cap, sizeof(void *));
	return cache ? 0 : -1;
}

static long query_num(const struct drover_request *req, const char *key, long dflt)
{
	size_t kl = strlen(key);
	const char *q = req->query.ptr, *end = q + req->query.len;
	for (const char *p = q; p && p + kl < end; p = memchr(p, '&', (size_t)(end - p)), p = p ? p + 1 : p)
		if (memcmp(p, key, kl) == 0 && p[kl] == '=')
			return strtol(p + kl + 1, NULL, 10);
	return dflt;
}

static void keep(void *p)
{
	free(cache[cache_pos]); /* the oldest leaves the cache */
	cache[cache_pos] = p;
	cache_pos = (cache_pos + 1) % cache_cap;
}

static void grow(size_t mb, size_t stride)
{
	size_t n = mb * 1048576 / (OBJ + 16);
	void **tmp = malloc(n * sizeof(void *));
	if (!tmp)
		return;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n; i++) {
		tmp[i] = malloc(OBJ);
		if (tmp[i])
			memset(tmp[i], (int)i, OBJ);
	}
	for (size_t i = 0; i < n; i++) {
		if (i % stride == 0 && tmp[i])
			keep(tmp[i]);
		else
			free(tmp[i]);
	}
	pthread_mutex_unlock(&lock);
	free(tmp);
}

static int frag_handle(struct drover_request *req, struct drover_response *resp)
{
	if (req->path.len == 5 && memcmp(req->path.ptr, "/grow", 5) == 0) {
		long mb = query_num(req, "mb", 8);
		size_t stride = query_num(req, "sparse", 0) ? PER_PAGE * 16 : PER_PAGE;
		grow(mb > 0 && mb < 4096 ? (size_t)mb : 8, stride);
	}
	drover_header(resp, "Content-Type", "text/plain");
	drover_header(resp, "Content-Length", "3");
	return drover_write(resp, "ok\n", 3);
}

const struct drover_app drover_app = {
	.abi_version = DROVER_APP_ABI_VERSION,
	.name = "fragment",
	.init = frag_init,
	.handle = frag_handle,
};
