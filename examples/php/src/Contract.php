<?php

declare(strict_types=1);

namespace AiSidecar\Digits;

/**
 * The model's OIP v2 identity: its name, version, tensors, and which model a call addresses.
 * Knows nothing about HTTP or JSON. Messages follow examples/python/digits_server.py word for word,
 * so a client sees the same text whichever language serves the model.
 */
final class Contract
{
    public const MODEL = 'digits';
    public const VERSION = '1';
    public const SERVER_NAME = 'digits-php';
    public const SERVER_VERSION = '0.1.0';
    public const PLATFORM = 'php';
    public const INPUT = 'INPUT0';
    public const LABEL = 'LABEL';
    public const PROBABILITIES = 'PROBABILITIES';
    public const OUTPUTS = [self::LABEL, self::PROBABILITIES];

    /** Throw NOT_FOUND unless name/version address this model; an empty version means latest. */
    public static function checkModel(string $name, string $version): void
    {
        if ($name !== self::MODEL) {
            throw OipError::notFound(
                sprintf('model "%s" is not served here; this server serves "%s"', $name, self::MODEL)
            );
        }
        if ($version !== '' && $version !== self::VERSION) {
            throw OipError::notFound(sprintf(
                'model "%s" has no version "%s"; its only version is "%s"',
                self::MODEL,
                $version,
                self::VERSION,
            ));
        }
    }

    /** @return array<string, mixed> the OIP model metadata object */
    public static function modelMetadata(): array
    {
        return [
            'name' => self::MODEL,
            'versions' => [self::VERSION],
            'platform' => self::PLATFORM,
            'inputs' => [
                ['name' => self::INPUT, 'datatype' => 'FP32', 'shape' => [-1, DigitsModel::FEATURES]],
            ],
            'outputs' => [
                ['name' => self::LABEL, 'datatype' => 'INT64', 'shape' => [-1]],
                ['name' => self::PROBABILITIES, 'datatype' => 'FP32', 'shape' => [-1, DigitsModel::CLASSES]],
            ],
        ];
    }

    /** @param list<int> $dims */
    public static function shape(array $dims): string
    {
        return '[' . implode(', ', $dims) . ']';
    }
}
