<?php

declare(strict_types=1);

namespace AiSidecar\Digits;

/** What DigitsApp answers: a status, a JSON body and any extra headers. */
final class HttpResponse
{
    /** @param array<string, string> $headers */
    public function __construct(
        public readonly int $status,
        public readonly string $body,
        public readonly array $headers = [],
    ) {
    }
}
