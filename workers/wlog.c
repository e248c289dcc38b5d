/* stub: to be written */
typedef int stub_wlog_t;
