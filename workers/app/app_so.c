/* stub: to be written */
typedef int stub_app_so_t;
