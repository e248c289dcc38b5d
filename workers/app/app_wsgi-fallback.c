/* Built instead of the WSGI adapter when drover is configured without Python
 * (-Dpython=disabled or no python3-embed): a Python APP is then a clear error. */
#include <stdio.h>

#include "app_loader.h"

struct app *app_wsgi_load(const struct drover_conf *conf, const char *spec, char *err,
			  size_t errlen)
{
	(void)conf;
	snprintf(err, errlen, "%s: drover was built without Python support (-Dpython=disabled)",
		 spec);
	return NULL;
}

int app_python_config(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	(void)out;
	(void)outlen;
	snprintf(err, errlen, "%s: drover was built without Python support (-Dpython=disabled)",
		 path);
	return -1;
}

int app_python_master_hook(const char *path, const char *name, double limit_s)
{
	(void)path;
	(void)name;
	(void)limit_s;
	return -1;
}

int app_python_warm(char *err, size_t errlen)
{
	snprintf(err, errlen, "built without Python support");
	return -1;
}

void app_python_warm_before_fork(void)
{
}

void app_python_warm_after_fork_parent(void)
{
}

int app_python_helper(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "drover: built without Python support\n");
	return 2;
}
