/* stub: to be written */
typedef int stub_listen_t;
