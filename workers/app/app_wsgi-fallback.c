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
