/* stub: to be written */
typedef int stub_http_parse_t;
