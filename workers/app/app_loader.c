/* stub: to be written */
typedef int stub_app_loader_t;
