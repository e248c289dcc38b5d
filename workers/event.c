/* The event model: not built yet (see the worker-models issue). */
#include "workers/wlog.h"
#include "workers/worker_priv.h"

const int event_model_ready = 0;

int event_run(struct worker_rt *rt)
{
	(void)rt;
	wlog_error("worker class event is not available yet");
	return WORKER_EXIT_APP_LOAD;
}
