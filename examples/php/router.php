<?php

/**
 * Front controller: every request of the built-in server (`php -S HOST:PORT router.php`) or of
 * php-fpm behind nginx comes here.
 *
 * DIGITS_WEIGHTS (environment, or a FastCGI parameter) names the weights file; the default is
 * examples/digits/weights.json beside this directory.
 */

declare(strict_types=1);

require_once __DIR__ . '/src/autoload.php';

// Errors go to the log (stderr under php -S), never into a JSON body.
ini_set('display_errors', '0');
AiSidecar\Digits\Sapi::serve();
