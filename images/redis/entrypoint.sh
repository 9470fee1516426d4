#!/bin/sh
# Writes redis.conf from the environment so the password never appears in argv (ps, logs),
# then runs redis-server in the foreground. Extra arguments are passed through.
set -eu
conf=/run/redis.conf
umask 077
{
  echo "port ${REDIS_PORT}"
  echo "bind ${REDIS_BIND}"
  echo "dir /data"
  echo "appendonly ${REDIS_APPENDONLY:-yes}"
  echo "appendfsync everysec"
  echo "save 900 1 300 10 60 10000"
  echo "dbfilename dump.rdb"
  echo "protected-mode no"
  echo "daemonize no"
  echo "loglevel ${REDIS_LOGLEVEL:-notice}"
  [ -n "${REDIS_MAXMEMORY:-}" ] && echo "maxmemory ${REDIS_MAXMEMORY}"
  [ -n "${REDIS_PASSWORD:-}" ] && echo "requirepass ${REDIS_PASSWORD}"
  true
} > "$conf"
chown redis:redis "$conf" /data
exec setpriv --reuid=redis --regid=redis --init-groups redis-server "$conf" "$@"
