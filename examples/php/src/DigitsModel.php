<?php

declare(strict_types=1);

namespace AiSidecar\Digits;

use JsonException;
use RuntimeException;

/**
 * The digits model as a pure function of its weights file. Knows nothing about HTTP or OIP.
 *
 * A transcription of the function examples/digits/README.md defines (the Python reference is
 * examples/python/digits_model.py): pixels divided by input_scale, an affine map and a softmax, all
 * in doubles (PHP's float); the label is the first index of the largest logit; probabilities are
 * rounded to float32 last.
 */
final class DigitsModel
{
    public const FORMAT = 'ai-sidecar-digits/1';
    public const FEATURES = 64;
    public const CLASSES = 10;

    /**
     * @param list<list<float>> $weights [FEATURES][CLASSES]: row i holds feature i's weight per class
     * @param list<float> $bias [CLASSES]
     * @param list<int> $classes [CLASSES]: the label each column stands for
     */
    private function __construct(
        private readonly array $weights,
        private readonly array $bias,
        private readonly float $inputScale,
        private readonly array $classes,
    ) {
    }

    /** Read a weights.json; a malformed file throws BadWeights naming the file and the field. */
    public static function load(string $path): self
    {
        $text = @file_get_contents($path);
        if ($text === false) {
            throw new BadWeights($path, 'cannot read JSON: ' . (error_get_last()['message'] ?? 'unreadable'));
        }
        try {
            $document = json_decode($text, true, 16, JSON_THROW_ON_ERROR);
        } catch (JsonException $error) {
            throw new BadWeights($path, 'cannot read JSON: ' . $error->getMessage());
        }
        if (!is_array($document) || array_is_list($document)) {
            throw new BadWeights($path, 'expected a JSON object at the top');
        }
        if (($document['format'] ?? null) !== self::FORMAT) {
            $format = json_encode($document['format'] ?? null);
            throw new BadWeights($path, "format is $format, expected '" . self::FORMAT . "'");
        }
        $inputScale = self::numbers($path, $document, 'input_scale', [])[0];
        if (!($inputScale > 0.0)) {
            throw new BadWeights($path, "'input_scale' is $inputScale, must be > 0");
        }
        $weights = self::numbers($path, $document, 'weights', [self::FEATURES, self::CLASSES]);
        return new self(
            array_chunk($weights, self::CLASSES),
            self::numbers($path, $document, 'bias', [self::CLASSES]),
            $inputScale,
            array_map('intval', self::numbers($path, $document, 'classes', [self::CLASSES])),
        );
    }

    /**
     * Labels and probabilities for $rows images held row-major in $pixels (values 0..16).
     *
     * @param list<float> $pixels [rows * FEATURES]
     * @return array{list<int>, list<float>} labels [rows] and probabilities [rows * CLASSES], row-major
     */
    public function predict(array $pixels, int $rows): array
    {
        if (count($pixels) !== $rows * self::FEATURES) {
            throw new RuntimeException(
                'digits model expects ' . $rows . ' x ' . self::FEATURES . ' pixels, got ' . count($pixels)
            );
        }
        $labels = [];
        $probabilities = [];
        for ($r = 0; $r < $rows; $r++) {
            $logits = array_fill(0, self::CLASSES, 0.0);
            $base = $r * self::FEATURES;
            for ($i = 0; $i < self::FEATURES; $i++) {
                // Divide rather than multiply by a reciprocal: README.md fixes the rounding.
                $scaled = $pixels[$base + $i] / $this->inputScale;
                $row = $this->weights[$i];
                for ($j = 0; $j < self::CLASSES; $j++) {
                    $logits[$j] += $scaled * $row[$j];
                }
            }
            $best = 0;
            for ($j = 0; $j < self::CLASSES; $j++) {
                $logits[$j] += $this->bias[$j];
                // Strictly greater: ties go to the lowest index, as numpy's argmax does.
                if ($logits[$j] > $logits[$best]) {
                    $best = $j;
                }
            }
            $max = $logits[$best];
            $exps = [];
            $sum = 0.0;
            for ($j = 0; $j < self::CLASSES; $j++) {
                $exps[$j] = exp($logits[$j] - $max);
                $sum += $exps[$j];
            }
            for ($j = 0; $j < self::CLASSES; $j++) {
                $probabilities[] = $exps[$j] / $sum;
            }
            $labels[] = $this->classes[$best];
        }
        return [$labels, Float32::round($probabilities)];
    }

    /**
     * The numbers of $document[$key], checked to have exactly $shape, flattened row-major.
     *
     * @param array<string, mixed> $document
     * @param list<int> $shape
     * @return list<float>
     */
    private static function numbers(string $path, array $document, string $key, array $shape): array
    {
        if (!array_key_exists($key, $document)) {
            throw new BadWeights($path, "missing '$key'");
        }
        $value = $document[$key];
        $actual = [];
        for ($probe = $value; is_array($probe); $probe = $probe[0] ?? null) {
            $actual[] = count($probe);
        }
        if ($actual !== $shape) {
            throw new BadWeights(
                $path,
                "'$key' has shape [" . implode(', ', $actual) . '], expected [' . implode(', ', $shape) . ']'
            );
        }
        $flat = [];
        if (!self::flatten($value, $shape, $flat)) {
            throw new BadWeights($path, "'$key' is not a rectangular array of numbers");
        }
        foreach ($flat as $number) {
            if (!is_finite($number)) {
                throw new BadWeights($path, "'$key' holds NaN or infinity");
            }
        }
        return $flat;
    }

    /**
     * @param list<int> $shape
     * @param list<float> $out
     */
    private static function flatten(mixed $value, array $shape, array &$out): bool
    {
        if ($shape === []) {
            if (!is_int($value) && !is_float($value)) {
                return false;
            }
            $out[] = (float) $value;
            return true;
        }
        if (!is_array($value) || !array_is_list($value) || count($value) !== $shape[0]) {
            return false;
        }
        $inner = array_slice($shape, 1);
        foreach ($value as $item) {
            if (!self::flatten($item, $inner, $out)) {
                return false;
            }
        }
        return true;
    }
}
