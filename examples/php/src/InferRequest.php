<?php

declare(strict_types=1);

namespace AiSidecar\Digits;

use JsonException;
use stdClass;

/**
 * An OIP v2 REST inference request body for the digits model, parsed and validated: the pixels of
 * INPUT0, the outputs asked for and the id. Knows nothing about HTTP servers or the model's math.
 *
 * The JSON tensor format is OIP's (KServe docs/predict-api/v2/required_api.md): a tensor is
 * {"name", "shape", "datatype", "data"}, "data" row-major, flat or nested to the shape. Checks run
 * in three passes, each naming the field: the JSON shape of every tensor, then the model's own
 * checks in examples/python/digits_server.py's order and wording, then the data values.
 */
final class InferRequest
{
    private const MAX_DEPTH = 64;

    /**
     * @param list<float> $pixels [rows * FEATURES], each already rounded to float32
     * @param list<string> $outputs the outputs to answer, in the order asked for
     */
    private function __construct(
        public readonly ?string $id,
        public readonly array $pixels,
        public readonly int $rows,
        public readonly array $outputs,
    ) {
    }

    /** @throws OipError 400 naming what is wrong */
    public static function fromJson(string $body): self
    {
        try {
            $request = json_decode($body, false, self::MAX_DEPTH, JSON_THROW_ON_ERROR);
        } catch (JsonException $error) {
            throw OipError::badRequest('request body is not valid JSON: ' . $error->getMessage());
        }
        if (!$request instanceof stdClass) {
            throw OipError::badRequest('request body must be a JSON object, got ' . self::show($request));
        }
        $id = null;
        if (property_exists($request, 'id')) {
            if (!is_string($request->id)) {
                throw OipError::badRequest('id must be a string, got ' . self::show($request->id));
            }
            $id = $request->id;
        }
        if (property_exists($request, 'parameters') && !$request->parameters instanceof stdClass) {
            throw OipError::badRequest(
                'parameters must be an object, got ' . self::show($request->parameters)
            );
        }
        if (!property_exists($request, 'inputs')) {
            throw OipError::badRequest('missing required field "inputs"');
        }
        if (!is_array($request->inputs)) {
            throw OipError::badRequest('inputs must be a list, got ' . self::show($request->inputs));
        }
        $inputs = [];
        foreach ($request->inputs as $i => $item) {
            $inputs[] = self::tensor($item, "inputs[$i]");
        }

        [$shape, $data] = self::checkAgainstModel($inputs);
        $rows = $shape[0];
        $pixels = self::pixels($data, $shape);
        $outputs = self::outputs($request);
        return new self($id, $pixels, $rows, $outputs);
    }

    /** One input's header fields checked for JSON type. */
    private static function tensor(mixed $item, string $where): stdClass
    {
        if (!$item instanceof stdClass) {
            throw OipError::badRequest("$where must be an object, got " . self::show($item));
        }
        foreach (['name', 'shape', 'datatype', 'data'] as $field) {
            if (!property_exists($item, $field)) {
                throw OipError::badRequest("$where: missing required field \"$field\"");
            }
        }
        if (!is_string($item->name)) {
            throw OipError::badRequest("$where.name must be a string, got " . self::show($item->name));
        }
        $shape = $item->shape;
        if (!is_array($shape) || array_filter($shape, fn ($d) => !is_int($d) || $d < 0) !== []) {
            throw OipError::badRequest(
                "$where.shape must be a list of non-negative integers, got " . self::show($shape)
            );
        }
        if (!is_string($item->datatype)) {
            throw OipError::badRequest(
                "$where.datatype must be a string, got " . self::show($item->datatype)
            );
        }
        if (!is_array($item->data)) {
            throw OipError::badRequest("$where.data must be a list, got " . self::show($item->data));
        }
        return $item;
    }

    /**
     * The model's checks, in the Python server's order and words: names, count, datatype, shape.
     *
     * @param list<stdClass> $inputs
     * @return array{array{int, int}, array<mixed>} the shape [rows, 64] and the data of INPUT0
     */
    private static function checkAgainstModel(array $inputs): array
    {
        $model = Contract::MODEL;
        $input = Contract::INPUT;
        foreach ($inputs as $tensor) {
            if ($tensor->name !== $input) {
                throw OipError::badRequest(
                    "model \"$model\" has no input \"$tensor->name\"; its input is \"$input\""
                );
            }
        }
        if ($inputs === []) {
            throw OipError::badRequest("request has no inputs; model \"$model\" expects input \"$input\"");
        }
        if (count($inputs) > 1) {
            throw OipError::badRequest("input \"$input\" appears " . count($inputs) . ' times');
        }
        $tensor = $inputs[0];
        if ($tensor->datatype !== 'FP32') {
            throw OipError::badRequest(
                "input \"$input\" has datatype \"$tensor->datatype\", model \"$model\" expects \"FP32\""
            );
        }
        $shape = $tensor->shape;
        if (count($shape) !== 2 || $shape[1] !== DigitsModel::FEATURES || $shape[0] < 1) {
            throw OipError::badRequest(
                "input \"$input\" has shape " . Contract::shape($shape) . ", model \"$model\" expects "
                . Contract::shape([-1, DigitsModel::FEATURES]) . ' with at least one row'
            );
        }
        return [[$shape[0], $shape[1]], $tensor->data];
    }

    /**
     * The pixels of data, flat or nested [rows][64], each a number rounded to float32 and finite.
     *
     * @param array<mixed> $data
     * @param array{int, int} $shape
     * @return list<float>
     */
    private static function pixels(array $data, array $shape): array
    {
        $input = Contract::INPUT;
        [$rows, $columns] = $shape;
        $nested = $data !== [] && is_array($data[0]);
        if ($nested) {
            $where = 'inputs[0].data';
            $dims = Contract::shape($shape);
            if (count($data) !== $rows) {
                throw OipError::badRequest(
                    "$where must be a list of " . self::items($rows) . " to match shape $dims, got a list of "
                    . count($data)
                );
            }
            foreach ($data as $r => $row) {
                if (!is_array($row) || count($row) !== $columns) {
                    $got = is_array($row) ? 'a list of ' . count($row) : self::show($row);
                    throw OipError::badRequest(
                        "{$where}[$r] must be a list of " . self::items($columns)
                        . " to match shape $dims, got $got"
                    );
                }
            }
            $flat = array_merge(...$data);
        } else {
            // $rows * $columns may pass PHP_INT_MAX and turn float; print it whole either way.
            $count = $rows * $columns;
            if (count($data) !== $count) {
                throw OipError::badRequest(sprintf(
                    'input "%s" has shape %s (%.0f elements) but %d values in data',
                    $input,
                    Contract::shape($shape),
                    $count,
                    count($data),
                ));
            }
            $flat = $data;
        }
        foreach ($flat as $k => $value) {
            if (!is_int($value) && !is_float($value)) {
                $index = $nested ? '[' . intdiv($k, $columns) . '][' . $k % $columns . ']' : "[$k]";
                throw OipError::badRequest("inputs[0].data$index is not a number, got " . self::show($value));
            }
        }
        // The wire type is FP32: a JSON number becomes the float32 a client library would send.
        $pixels = Float32::round(array_map('floatval', $flat));
        foreach ($pixels as $pixel) {
            if (!is_finite($pixel)) {
                throw OipError::badRequest("input \"$input\" holds NaN or infinite values; pixels are 0..16");
            }
        }
        return $pixels;
    }

    /** @return list<string> output names in the order asked for; none asked for means every output */
    private static function outputs(stdClass $request): array
    {
        $names = [];
        $requested = $request->outputs ?? [];
        if (!is_array($requested)) {
            throw OipError::badRequest('outputs must be a list, got ' . self::show($requested));
        }
        foreach ($requested as $i => $item) {
            if (!$item instanceof stdClass) {
                throw OipError::badRequest("outputs[$i] must be an object, got " . self::show($item));
            }
            if (!property_exists($item, 'name')) {
                throw OipError::badRequest("outputs[$i]: missing required field \"name\"");
            }
            if (!is_string($item->name)) {
                throw OipError::badRequest(
                    "outputs[$i].name must be a string, got " . self::show($item->name)
                );
            }
            $names[] = $item->name;
        }
        foreach ($names as $name) {
            if (!in_array($name, Contract::OUTPUTS, true)) {
                throw OipError::badRequest(sprintf(
                    'model "%s" has no output "%s"; its outputs are "%s", "%s"',
                    Contract::MODEL,
                    $name,
                    Contract::LABEL,
                    Contract::PROBABILITIES,
                ));
            }
            $times = count(array_keys($names, $name, true));
            if ($times > 1) {
                throw OipError::badRequest("output \"$name\" is requested $times times");
            }
        }
        return $names === [] ? Contract::OUTPUTS : $names;
    }

    /** A short JSON rendering of a value for an error message; never dumps a whole tensor. */
    private static function show(mixed $value): string
    {
        if ($value instanceof stdClass) {
            return 'an object';
        }
        if (is_array($value)) {
            $nested = array_filter($value, fn ($v) => is_array($v) || $v instanceof stdClass) !== [];
            if (count($value) > 8 || $nested) {
                return 'a list of ' . self::items(count($value));
            }
        }
        // Spaced as Python's json.dumps, so these messages read like the sidecar's REST binding's.
        $text = is_array($value)
            ? '[' . implode(', ', array_map(self::scalar(...), $value)) . ']'
            : self::scalar($value);
        return strlen($text) <= 60 ? $text : substr($text, 0, 57) . '...';
    }

    private static function scalar(mixed $value): string
    {
        $flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION;
        return json_encode($value, $flags) ?: gettype($value);
    }

    private static function items(int $n): string
    {
        return $n === 1 ? '1 item' : "$n items";
    }
}
