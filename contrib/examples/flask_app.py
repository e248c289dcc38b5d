"""A small Flask app served by drover (Debian: apt install python3-flask):
    drover -w 2 -k thread flask_app:app     (from contrib/examples)
Routes: / text, /json, /stream (a streamed generator), /upload (multipart
form: answers the file's size and a field), /echo (POST body echoed)."""
import time

from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello from Flask on drover!\n", 200, {"Content-Type": "text/plain"}


@app.route("/json")
def json_route():
    return jsonify(server="drover", path=request.path, args=request.args.to_dict())


@app.route("/stream")
def stream():
    n = request.args.get("n", 5, type=int)
    delay = request.args.get("delay", 0.0, type=float)

    def generate():
        for i in range(n):
            yield f"line {i}\n"
            if delay:
                time.sleep(delay)
    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.route("/upload", methods=["POST"])
def upload():
    f = request.files.get("file")
    if f is None:
        return jsonify(error="no file field"), 400
    size = len(f.read())
    return jsonify(filename=f.filename, size=size, field=request.form.get("field"))


@app.route("/echo", methods=["POST"])
def echo():
    return Response(request.get_data(), mimetype=request.mimetype or "application/octet-stream")


application = app
