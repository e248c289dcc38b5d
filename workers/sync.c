/* stub: to be written */
typedef int stub_sync_t;
