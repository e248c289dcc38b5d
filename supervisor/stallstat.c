/* Stall statistics (see stallstat.h). */
#include "supervisor/stallstat.h"

#include <string.h>

/* The stall in progress: since_ns is stored last (release), so the site
 * read after it belongs to it or to a later one, never to an older. */
static void read_ongoing(struct stall_view *v, const struct sb_slot *sl, uint64_t now)
{
	v->since_ns = sb_load(&sl->stall_since_ns);
	unsigned site = atomic_load_explicit(&sl->stall_now_site, memory_order_relaxed);
	v->ongoing = v->since_ns ? atomic_load_explicit(&sl->stall_now_n, memory_order_relaxed) : 0;
	v->ongoing = v->since_ns && !v->ongoing ? 1 : v->ongoing;
	v->ongoing_ns = v->since_ns && now > v->since_ns ? now - v->since_ns : 0;
	if (!v->ongoing_ns || !site)
		return;
	const char *name = sl->sites[site - 1 > SB_STALL_SITES ? SB_STALL_SITES : site - 1].name;
	for (unsigned i = 0; i < v->nsites; i++)
		if (strncmp(v->sites[i].name, name, SB_SITE_LEN) == 0) {
			v->sites[i].ongoing_ns = v->ongoing_ns;
			return;
		}
}

void stallstat_end_ongoing(struct stall_view *v)
{
	v->since_ns = v->ongoing_ns = 0;
	v->ongoing = 0;
	for (unsigned i = 0; i < v->nsites; i++)
		v->sites[i].ongoing_ns = 0;
}

void stallstat_read(struct stall_view *v, const struct sb_slot *sl, uint64_t now)
{
	v->stalls = sb_load(&sl->stalls);
	v->stall_ns = sb_load(&sl->stall_ns);
	for (unsigned i = 0; i < SB_STALL_BUCKETS; i++)
		v->hist[i] = sb_load(&sl->stall_hist[i]);
	v->recent = atomic_load_explicit(&sl->stall_recent, memory_order_acquire);
	unsigned n = atomic_load_explicit(&sl->stall_nsites, memory_order_acquire);
	n = n > SB_STALL_SITES ? SB_STALL_SITES : n;
	v->nsites = 0;
	for (unsigned i = 0; i <= n; i++) {
		unsigned k = i < n ? i : SB_STALL_SITES; /* then the "other" row */
		uint64_t c = sb_load(&sl->sites[k].count);
		if (!c)
			continue;
		struct stall_site_view *o = &v->sites[v->nsites++];
		memcpy(o->name, sl->sites[k].name, SB_SITE_LEN);
		o->name[SB_SITE_LEN - 1] = '\0';
		o->count = c;
		o->total_ns = sb_load(&sl->sites[k].total_ns);
		o->ongoing_ns = 0;
	}
	read_ongoing(v, sl, now);
}

static struct stall_site_view *lookup(struct stall_view *acc, const char *name)
{
	for (unsigned i = 0; i < acc->nsites; i++)
		if (strcmp(acc->sites[i].name, name) == 0)
			return &acc->sites[i];
	return NULL;
}

/* The row of name, added if new; past the table's last row but one, every
 * new name goes to "other", which then has room. */
static struct stall_site_view *find_or_add(struct stall_view *acc, const char *name)
{
	struct stall_site_view *s = lookup(acc, name);
	if (s)
		return s;
	if (acc->nsites >= STALL_POOL_SITES - 1 && strcmp(name, "other") != 0)
		return find_or_add(acc, "other");
	s = &acc->sites[acc->nsites++];
	memset(s, 0, sizeof(*s));
	strncpy(s->name, name, SB_SITE_LEN - 1);
	return s;
}

void stallstat_add(struct stall_view *acc, const struct stall_view *x)
{
	acc->stalls += x->stalls;
	acc->stall_ns += x->stall_ns;
	for (unsigned i = 0; i < SB_STALL_BUCKETS; i++)
		acc->hist[i] += x->hist[i];
	if (x->since_ns && (!acc->since_ns || x->since_ns < acc->since_ns))
		acc->since_ns = x->since_ns;
	acc->recent += x->recent;
	acc->ongoing += x->ongoing;
	acc->ongoing_ns += x->ongoing_ns;
	for (unsigned i = 0; i < x->nsites; i++) {
		struct stall_site_view *s = find_or_add(acc, x->sites[i].name);
		s->count += x->sites[i].count;
		s->total_ns += x->sites[i].total_ns;
		s->ongoing_ns += x->sites[i].ongoing_ns;
	}
}

static int before(const struct stall_site_view *a, const struct stall_site_view *b)
{
	uint64_t ta = a->total_ns + a->ongoing_ns, tb = b->total_ns + b->ongoing_ns;
	return ta != tb ? ta > tb : a->count > b->count;
}

unsigned stallstat_sorted(const struct stall_view *v, const struct stall_site_view **out,
			  unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < v->nsites; i++) {
		/* insertion sort: a few dozen rows at most */
		const struct stall_site_view *s = &v->sites[i];
		unsigned j = n < max ? n++ : max;
		if (j == max && (max == 0 || !before(s, out[max - 1])))
			continue;
		if (j == max)
			j = max - 1;
		while (j > 0 && before(s, out[j - 1])) {
			out[j] = out[j - 1];
			j--;
		}
		out[j] = s;
	}
	return n;
}

const struct stall_site_view *stallstat_top(const struct stall_view *v)
{
	const struct stall_site_view *top = NULL;
	return stallstat_sorted(v, &top, 1) ? top : NULL;
}
