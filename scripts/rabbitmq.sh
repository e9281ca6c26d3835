#!/usr/bin/env bash
# A RabbitMQ on 127.0.0.1 for `make run`, `make test` and `make bench`.
#
# Nothing to do (and quick) when a broker answers on the port, or when the caller passes
# the URL of its own broker as $1. Otherwise installs Debian's rabbitmq-server if none is
# installed — without letting the package start its system service (policy-rc.d), as
# scripts/system-deps.sh does for Dovecot — then starts a node with
# `rabbitmq-server -detached` and waits for the port. It never stops a running broker.
# The port is RABBITMQ_NODE_PORT (the server's own variable), 5672 unless set.
#
# The bus needs the consistent-hash exchange plugin (rabbitmq_consistent_hash_exchange,
# shipped with the server, off by default): it is enabled on the local node, running
# (which does not restart it) or before it starts; a no-op when it already is. A broker of
# the caller's ($1) must have it enabled by its operator.
set -euo pipefail

if [ -n "${1:-}" ]; then
  exit 0  # the caller's broker (DESK_AMQP_URL / DESK_TEST_AMQP_URL)
fi
PORT="${RABBITMQ_NODE_PORT:-5672}"
PLUGIN=rabbitmq_consistent_hash_exchange

answers() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null
}

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

plugins() {
  command -v rabbitmq-plugins 2>/dev/null && return 0
  [ -x /usr/sbin/rabbitmq-plugins ] && echo /usr/sbin/rabbitmq-plugins
}

# $1: "--offline" before the node starts, nothing for a running node
enable_plugin() {
  local bin file="${RABBITMQ_ENABLED_PLUGINS_FILE:-/etc/rabbitmq/enabled_plugins}"
  # quick path: the node's plugins file already lists it (rabbitmq-plugins itself takes
  # seconds, as it asks the running node)
  if [ -r "$file" ] && grep -q "$PLUGIN" "$file"; then
    return 0
  fi
  if ! bin="$(plugins)"; then
    # a broker in a container or elsewhere: its operator enables the plugin
    echo "rabbitmq-plugins not found here: make sure $PLUGIN is enabled on the broker" >&2
    return 0
  fi
  if $SUDO "$bin" list -e -m 2>/dev/null | grep -qx "$PLUGIN"; then
    return 0
  fi
  echo "Enabling the RabbitMQ plugin $PLUGIN"
  $SUDO "$bin" enable "$@" "$PLUGIN" >/dev/null
}

if answers; then
  enable_plugin
  exit 0
fi

server() {
  command -v rabbitmq-server 2>/dev/null && return 0
  [ -x /usr/sbin/rabbitmq-server ] && echo /usr/sbin/rabbitmq-server
}

if ! server >/dev/null; then
  if ! command -v apt-get >/dev/null; then
    echo "No RabbitMQ answers on 127.0.0.1:$PORT and none is installed; install one" \
         "(or set DESK_AMQP_URL / DESK_TEST_AMQP_URL)." >&2
    exit 1
  fi
  echo "Installing RabbitMQ (Debian's rabbitmq-server) ..."
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  trap '[ -n "$created_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rabbitmq-server
fi

enable_plugin --offline
# The node counts a few file handles per quorum queue against its open-files limit and
# stops accepting connections at that limit; the bus has several queues per partition
# and tests run several namespaces at once, so give it the hard limit, not 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bin="$(server)"
echo "RabbitMQ is not running on 127.0.0.1:$PORT; starting it ($bin -detached)"
# Debian's wrapper only lets root (or the rabbitmq user) start the node.
case "$bin" in
  /usr/sbin/*) $SUDO "$bin" -detached ;;
  *) "$bin" -detached ;;
esac
for _ in $(seq 1 240); do
  if answers; then
    enable_plugin  # a no-op unless the offline enable could not write the plugins file
    exit 0
  fi
  sleep 0.5
done
echo "RabbitMQ did not come up on 127.0.0.1:$PORT within 120 s (see /var/log/rabbitmq/)" >&2
exit 1
