/* stub: to be written */
typedef int stub_app_wsgi_fallback_t;
