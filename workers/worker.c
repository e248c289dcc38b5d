/* stub: to be written */
typedef int stub_worker_t;
