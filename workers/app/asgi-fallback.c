/* The asgi worker model without Python (built without python3-embed): not
 * available, as worker_model_available() tells the master. */
#include "workers/worker_priv.h"

const int asgi_model_ready = 0;

int asgi_run(struct worker_rt *rt)
{
	(void)rt;
	return WORKER_EXIT_BOOT;
}
