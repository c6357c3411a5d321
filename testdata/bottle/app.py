"""The Bottle app of the Apache + mod_wsgi set-up httpsd replaces, with the
routes the proxy tests need. Run by the tests under gunicorn:

    gunicorn --chdir testdata/bottle -k gthread app:application
"""
import hashlib
import json
import time

from bottle import Bottle, request, response, template

app = Bottle()


@app.route('/hello/<name>')
def index(name):
    return template('<b>Hello {{name}}</b>!', name=name)


@app.route('/healthz')
def healthz():
    return 'ok\n'


@app.post('/echo')
def echo():
    response.content_type = request.content_type or 'application/octet-stream'
    return request.body.read()


@app.post('/upload')
def upload():
    """Reads the body as it streams in and answers its size and SHA-256."""
    body = request.environ['wsgi.input']
    left = request.content_length
    h, n = hashlib.sha256(), 0
    while left != 0:
        chunk = body.read(65536 if left < 0 else min(65536, left))
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
        left -= len(chunk)
    return '%d %s\n' % (n, h.hexdigest())


@app.route('/slow')
def slow():
    time.sleep(float(request.query.get('s', '1')))
    return 'slow done\n'


@app.route('/stream')
def stream():
    """n lines, one every delay seconds."""
    n, delay = int(request.query.get('n', '5')), float(request.query.get('delay', '0.2'))
    response.content_type = 'text/plain'

    def lines():
        for i in range(n):
            yield 'line %d\n' % i
            time.sleep(delay)
    return lines()


@app.route('/events')
def events():
    """Server-sent events: n events, one every delay seconds."""
    n, delay = int(request.query.get('n', '5')), float(request.query.get('delay', '0.2'))
    response.content_type = 'text/event-stream'
    response.set_header('Cache-Control', 'no-cache')

    def stream():
        for i in range(n):
            yield 'data: %d %.3f\n\n' % (i, time.time())
            time.sleep(delay)
    return stream()


@app.route('/headers')
def headers():
    """The request as the app sees it: headers, peer, Host."""
    response.content_type = 'application/json'
    return json.dumps({
        'headers': {k: v for k, v in request.headers.items()},
        'remote_addr': request.environ.get('REMOTE_ADDR', ''),
        'host': request.environ.get('HTTP_HOST', ''),
    })


@app.route('/status/<code:int>')
def status(code):
    response.status = code
    return 'status %d from the app\n' % code


application = app
