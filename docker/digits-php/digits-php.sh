#!/usr/bin/env bash
# The digits-php image's entrypoint: php-fpm and nginx under one process; either one dying stops the
# container (exit 1). SIGTERM or SIGINT stops both gracefully and exits 0.
set -u
# Load the weights once before serving: a bad file stops the start with the model's own message.
php /srv/digits-php/check-weights.php /srv/digits/weights.json || exit 1
php-fpm8.2 --nodaemonize --fpm-config /etc/php/8.2/fpm/php-fpm-digits.conf & fpm=$!
nginx -g 'daemon off;' & web=$!
stop() {
    # SIGQUIT is the graceful stop of both: nginx first, so no request reaches a stopped php-fpm.
    kill -QUIT "$web" 2>/dev/null; wait "$web"
    kill -QUIT "$fpm" 2>/dev/null; wait "$fpm"
    exit 0
}
trap stop TERM INT
wait -n "$fpm" "$web"
echo "digits-php: $( kill -0 "$fpm" 2>/dev/null && echo nginx || echo php-fpm ) exited; stopping" >&2
kill -TERM "$fpm" "$web" 2>/dev/null
exit 1
