<?php

declare(strict_types=1);

namespace AiSidecar\Digits;

use RuntimeException;

/** A request this server refuses: the HTTP status and a message naming what is wrong. */
final class OipError extends RuntimeException
{
    /** @param array<string, string> $headers sent with the error, e.g. Allow with a 405 */
    public function __construct(
        public readonly int $status,
        string $message,
        public readonly array $headers = [],
    ) {
        parent::__construct($message);
    }

    /** OIP's INVALID_ARGUMENT. */
    public static function badRequest(string $message): self
    {
        return new self(400, $message);
    }

    /** OIP's NOT_FOUND. */
    public static function notFound(string $message): self
    {
        return new self(404, $message);
    }
}
