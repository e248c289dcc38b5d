/* stub: to be written */
typedef int stub_access_log_t;
