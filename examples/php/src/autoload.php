<?php

/** Loads the example's classes; the example has no Composer, so no autoloader to configure. */

declare(strict_types=1);

$classes = ['BadWeights', 'Float32', 'DigitsModel', 'HttpResponse', 'OipError', 'Contract', 'InferRequest',
    'EchoModel', 'DigitsApp', 'Sapi'];
foreach ($classes as $class) {
    require_once __DIR__ . "/$class.php";
}
