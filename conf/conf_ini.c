/* stub: to be written */
typedef int stub_conf_ini_t;
