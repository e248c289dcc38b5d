/* stub: to be written */
typedef int stub_conf_t;
