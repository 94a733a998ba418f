<?php

declare(strict_types=1);

namespace AiSidecar\Digits;

use JsonException;

/**
 * The "echo" model beside digits, as examples/python/echo_model.py serves it: BYTES in, the same
 * BYTES and their lengths out, so BYTES tensors can be checked end to end. Input TEXT BYTES [-1];
 * outputs ECHO BYTES [-1] (each element as it came) and LENGTH INT64 [-1] (its length in bytes).
 * Over JSON a BYTES element is a string, so UTF-8 text; this server has no binary extension.
 */
final class EchoModel
{
    public const MODEL = 'echo';
    public const VERSION = '1';
    public const INPUT = 'TEXT';
    public const OUTPUTS = ['ECHO', 'LENGTH'];

    public static function checkVersion(string $version): void
    {
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
    public static function metadata(): array
    {
        return [
            'name' => self::MODEL,
            'versions' => [self::VERSION],
            'platform' => Contract::PLATFORM,
            'inputs' => [['name' => self::INPUT, 'datatype' => 'BYTES', 'shape' => [-1]]],
            'outputs' => [
                ['name' => 'ECHO', 'datatype' => 'BYTES', 'shape' => [-1]],
                ['name' => 'LENGTH', 'datatype' => 'INT64', 'shape' => [-1]],
            ],
        ];
    }

    /**
     * @return array<string, mixed> the OIP inference response object
     * @throws OipError 400 naming what is wrong
     */
    public static function infer(string $body): array
    {
        try {
            $request = json_decode($body, true, 64, JSON_THROW_ON_ERROR);
        } catch (JsonException $error) {
            throw OipError::badRequest('request body is not valid JSON: ' . $error->getMessage());
        }
        if (!is_array($request) || array_is_list($request)) {
            throw OipError::badRequest('request body must be a JSON object');
        }
        $inputs = $request['inputs'] ?? null;
        if (!is_array($inputs) || !array_is_list($inputs) || count($inputs) !== 1 || !is_array($inputs[0])
            || ($inputs[0]['name'] ?? null) !== self::INPUT) {
            throw self::invalid(sprintf('expects one input "%s"', self::INPUT));
        }
        $tensor = $inputs[0];
        if (($tensor['datatype'] ?? null) !== 'BYTES') {
            throw self::invalid(sprintf('input "%s" is BYTES', self::INPUT));
        }
        $shape = $tensor['shape'] ?? null;
        if (!is_array($shape) || count($shape) !== 1 || !is_int($shape[0] ?? null) || $shape[0] < 0) {
            $shown = json_encode($shape);
            throw self::invalid(sprintf('input "%s" has shape %s, model expects [-1]', self::INPUT, $shown));
        }
        $data = $tensor['data'] ?? null;
        if (!is_array($data) || !array_is_list($data) || count($data) !== $shape[0]) {
            throw self::invalid(sprintf('input "%s" needs %d strings in "data"', self::INPUT, $shape[0]));
        }
        foreach ($data as $k => $item) {
            if (!is_string($item)) {
                throw self::invalid(sprintf('input "%s" data[%d] is not a string', self::INPUT, $k));
            }
        }
        $names = [];
        foreach ($request['outputs'] ?? [] as $output) {
            $name = is_array($output) ? ($output['name'] ?? null) : null;
            if (!in_array($name, self::OUTPUTS, true) || in_array($name, $names, true)) {
                $shown = json_encode($name);
                throw self::invalid(sprintf('output %s is unknown or asked twice: "ECHO", "LENGTH"', $shown));
            }
            $names[] = $name;
        }
        $response = ['model_name' => self::MODEL, 'model_version' => self::VERSION];
        if (isset($request['id'])) {
            if (!is_string($request['id'])) {
                throw OipError::badRequest('id must be a string');
            }
            $response['id'] = $request['id'];
        }
        $response['outputs'] = array_map(
            fn (string $name) => $name === 'ECHO'
                ? ['name' => $name, 'shape' => [count($data)], 'datatype' => 'BYTES', 'data' => $data]
                : ['name' => $name, 'shape' => [count($data)], 'datatype' => 'INT64',
                    'data' => array_map('strlen', $data)],
            $names ?: self::OUTPUTS,
        );
        return $response;
    }

    private static function invalid(string $message): OipError
    {
        return OipError::badRequest(sprintf('model "%s": %s', self::MODEL, $message));
    }
}
