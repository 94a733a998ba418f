<?php

/**
 * Load a weights file once, as the server would, and say what is wrong with it (exit 1), or
 * nothing (exit 0). serve.sh and the Docker image run it before serving, so a bad file stops the
 * start instead of failing every request.
 *
 *   php examples/php/check-weights.php [PATH]   # default: examples/digits/weights.json
 */

declare(strict_types=1);

namespace AiSidecar\Digits;

require_once __DIR__ . '/src/autoload.php';

try {
    DigitsModel::load($argv[1] ?? dirname(__DIR__) . '/digits/weights.json');
} catch (BadWeights $error) {
    fwrite(STDERR, $error->getMessage() . PHP_EOL);
    exit(1);
}
