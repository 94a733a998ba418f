<?php

declare(strict_types=1);

namespace AiSidecar\Digits;

use RuntimeException;

/** A weights file the model refuses; the message names the file and the field. */
final class BadWeights extends RuntimeException
{
    public function __construct(string $path, string $problem)
    {
        parent::__construct("digits weights $path: $problem");
    }
}
