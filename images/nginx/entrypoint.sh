#!/bin/sh
# The operator renders /etc/kongmasker/nginx.conf and copies it in before start (and again
# before `nginx -s reload`); this default only serves the image's own smoke test.
set -eu
conf=/etc/kongmasker/nginx.conf
nginx -t -c "$conf" -q
exec nginx -c "$conf" -g 'daemon off;'
