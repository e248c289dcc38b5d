/* stub: to be written */
typedef int stub_http_conn_t;
