/* stub: to be written */
typedef int stub_sample_parse_t;
