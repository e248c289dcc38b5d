/* stub: to be written */
typedef int stub_proctitle_t;
