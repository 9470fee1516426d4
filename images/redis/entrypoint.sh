#!/bin/sh
# Writes redis.conf from the environment so the password never appears in argv (ps, logs),
# then runs redis-server in the foreground. Extra arguments are passed through.
#
# No value can add a directive (issue 11): every variable is checked against what its
# directive accepts, a line break anywhere is refused, and the password is written as a
# double-quoted Redis string (\ and " escaped), so spaces and quotes in it work. A value
# that cannot be represented stops the container with a message naming the variable (the
# operator refuses such values before they get here; this is the second line).
set -eu
conf=/run/redis.conf
umask 077
fail() { echo "kongmasker-redis: $*; redis.conf not written" >&2; exit 64; }
nl='
'
cr=$(printf '\r')
for var in REDIS_PORT REDIS_BIND REDIS_APPENDONLY REDIS_LOGLEVEL REDIS_MAXMEMORY REDIS_PASSWORD; do
  eval "val=\${$var:-}"
  case "$val" in *"$nl"* | *"$cr"*) fail "$var contains a line break";; esac
done
case "${REDIS_PORT:-}" in '' | *[!0-9]*) fail "REDIS_PORT must be a port number";; esac
case "${REDIS_BIND:-}" in '' | *[!0-9a-fA-F.:\ ]*) fail "REDIS_BIND must be IP addresses";; esac
appendonly=${REDIS_APPENDONLY:-yes}
case "$appendonly" in yes | no) ;; *) fail "REDIS_APPENDONLY must be yes or no";; esac
loglevel=${REDIS_LOGLEVEL:-notice}
case "$loglevel" in
  debug | verbose | notice | warning | nothing) ;;
  *) fail "REDIS_LOGLEVEL must be one of debug, verbose, notice, warning, nothing";;
esac
maxmemory=${REDIS_MAXMEMORY:-}
case "$maxmemory" in
  '') ;;
  [0-9]* ) case "$maxmemory" in *[!0-9kmgbKMGB]*) fail "REDIS_MAXMEMORY must look like 256mb";; esac;;
  *) fail "REDIS_MAXMEMORY must look like 256mb";;
esac
quoted() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }
{
  echo "port ${REDIS_PORT}"
  echo "bind ${REDIS_BIND}"
  echo "dir /data"
  echo "appendonly ${appendonly}"
  echo "appendfsync everysec"
  echo "save 900 1 300 10 60 10000"
  echo "dbfilename dump.rdb"
  echo "protected-mode no"
  echo "daemonize no"
  echo "loglevel ${loglevel}"
  [ -n "$maxmemory" ] && echo "maxmemory ${maxmemory}"
  # printf, not echo: dash's echo would undo the backslash escapes.
  [ -n "${REDIS_PASSWORD:-}" ] && printf 'requirepass %s\n' "$(quoted "$REDIS_PASSWORD")"
  true
} > "$conf"
chown redis:redis "$conf" /data
exec setpriv --reuid=redis --regid=redis --init-groups redis-server "$conf" "$@"
