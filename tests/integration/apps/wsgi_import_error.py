"""An app module that cannot be imported: drover must say so once and exit."""
import drover_no_such_module_for_tests  # noqa: F401


def application(environ, start_response):
    start_response("200 OK", [])
    return [b"unreachable"]
