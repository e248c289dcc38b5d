/* stub: to be written */
typedef int stub_http_response_t;
