#!/usr/bin/env bash
# Make sure the services the tests talk to answer: MariaDB on 127.0.0.1:3306, Redis on
# 127.0.0.1:6379 and RabbitMQ on 127.0.0.1:5672 (guest/guest). Start them when they are installed but stopped; fail with how to fix otherwise.
set -u

MYSQL_HOST=${PELBIOT_TEST_MYSQL_HOST:-127.0.0.1}
MYSQL_PORT=${PELBIOT_TEST_MYSQL_PORT:-3306}
REDIS_PORT=${PELBIOT_TEST_REDIS_PORT:-6379}

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() {  # name host port seconds
    for _ in $(seq 1 "$(( $4 * 5 ))"); do
        tcp_open "$2" "$3" && return 0
        sleep 0.2
    done
    echo "ensure-services: $1 did not answer on $2:$3 within $4 s" >&2
    return 1
}

if ! tcp_open "$MYSQL_HOST" "$MYSQL_PORT"; then
    if [ -x /usr/sbin/mariadbd ]; then
        echo "ensure-services: starting MariaDB"
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
        wait_for MariaDB "$MYSQL_HOST" "$MYSQL_PORT" 60 || exit 1
    else
        echo "ensure-services: MariaDB does not answer on $MYSQL_HOST:$MYSQL_PORT and is not installed;" \
             "install it (apt-get install mariadb-server) or point PELBIOT_TEST_MYSQL_HOST/PORT at one" >&2
        exit 1
    fi
fi

if ! tcp_open 127.0.0.1 "$REDIS_PORT"; then
    if command -v redis-server >/dev/null; then
        echo "ensure-services: starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
        wait_for Redis 127.0.0.1 "$REDIS_PORT" 30 || exit 1
    else
        echo "ensure-services: Redis does not answer on 127.0.0.1:$REDIS_PORT and is not installed;" \
             "install it (apt-get install redis-server)" >&2
        exit 1
    fi
fi
# RabbitMQ: the fault suite runs the broker tests on it too (a virtual host per test).
if ! tcp_open 127.0.0.1 5672; then
    if command -v rabbitmq-server >/dev/null; then
        echo "ensure-services: starting RabbitMQ"
        rabbitmq-server -detached >/dev/null 2>&1
        wait_for RabbitMQ 127.0.0.1 5672 90 || exit 1
        rabbitmqctl -q await_startup >/dev/null 2>&1 || true
    else
        echo "ensure-services: RabbitMQ does not answer on 127.0.0.1:5672 and is not installed;" \
             "install it (apt-get install rabbitmq-server)" >&2
        exit 1
    fi
fi
# Tools some tests use: installed with apt-get when missing and running as root; otherwise say which.
install_tool() {  # command package why
    command -v "$1" >/dev/null && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "ensure-services: installing $2 ($3)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2") >/dev/null \
            || echo "ensure-services: could not install $2; the tests of $3 will fail" >&2
    else
        echo "ensure-services: $1 is missing; install $2 for the tests of $3" >&2
    fi
}
install_tool pt-query-digest percona-toolkit "the slow-log digest (pt-query-digest is their oracle)"
# Chromium renders the HTML reports in the browser tests.
if ! command -v chromium-browser >/dev/null; then
    install_tool chromium chromium "the reports' and web view's rendering in a browser"
fi
# Debian's docker-compose 1.29 checks the compose files against the Compose specification's JSON
# schema offline (`config -q` needs no Docker engine).
install_tool mysqltuner mysqltuner "the server checks (MySQLTuner is their oracle)"
install_tool docker-compose docker-compose "the compose files' schema"
echo "ensure-services: MariaDB and Redis answer"
