"""gunicorn's settings for the API (read from the working folder: `make serve`, the tests, the story).

Worker class gevent: each connection is a greenlet, so a client that connects and stalls (or sends
half a request) costs one idle greenlet instead of a whole worker; with sync workers two such
clients froze the API for 30 s. Keep-alive off: a kept-alive connection stays with one worker, and
with few clients one worker queued requests while the other idled (p99 of 70 ms against 5 ms).
A worker silent for `timeout` seconds is restarted. Beyond loopback, serve it behind a reverse proxy
that buffers requests (README): then no slow client reaches gunicorn at all. Only that proxy, on this
machine, may say the request came over HTTPS (X-Forwarded-Proto, which marks the session cookie Secure)
and who the client is (X-Forwarded-For, which the wrong-token throttle counts by): forwarded_allow_ips is
set here so that the environment's FORWARDED_ALLOW_IPS cannot widen it.
"""

import os
import sys

from risk.config import PipelineError, load_config  # gunicorn runs this file from the project folder
from risk.web.auth import Access

workers = 2
worker_class = "gevent"
worker_connections = 1000  # stalled connections a worker holds before new ones wait
keepalive = 0
timeout = 30
graceful_timeout = 20
limit_request_line = 4094
limit_request_fields = 50
forwarded_allow_ips = "127.0.0.1,::1"  # risk.access.TRUSTED_PROXIES: the same two addresses
control_socket_disable = True  # gunicorn 27's control socket is one per user: two servers would share it


def on_starting(server):
    """A bad or missing config, or a session key that cannot be kept, stops gunicorn here, in the master, in
    one line and before any worker starts (a worker that fails to boot makes gunicorn stop with its own
    traceback when two fail at once). With API_TOKEN set, the session key is made here, once."""
    try:
        Access(os.environ.get("API_TOKEN"), load_config())
    except PipelineError as error:
        sys.stderr.write(f"gunicorn: {error}\n")
        raise SystemExit(3) from None
