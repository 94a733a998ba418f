<?php

declare(strict_types=1);

namespace AiSidecar\Digits;

/** IEEE-754 single precision for PHP, whose only float is a double. */
final class Float32
{
    /**
     * Each value rounded to the nearest float32 (beyond its range: infinity), as a double again.
     *
     * @param list<float> $values
     * @return list<float>
     */
    public static function round(array $values): array
    {
        if ($values === []) {
            return [];
        }
        // pack('g') converts each double to a little-endian float32 as a C cast does.
        $rounded = unpack('g*', pack('g*', ...$values));
        return $rounded === false ? [] : array_values($rounded);
    }
}
