<?php

declare(strict_types=1);

namespace AiSidecar\Digits;

use Closure;

/**
 * The OIP v2 REST binding for the digits model (and the "echo" model beside it, EchoModel.php):
 * a method and a path in, a status and a JSON body out. Knows nothing about the SAPI (built-in
 * server or php-fpm); router.php connects the two.
 *
 * Health endpoints answer with their status code, 200 for true and 400 for false, as OIP REST
 * fixes; every error is {"error": "<message>"} with 400 (INVALID_ARGUMENT) or 404 (NOT_FOUND).
 */
final class DigitsApp
{
    private const JSON_FLAGS = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION
        | JSON_THROW_ON_ERROR;
    private const MODEL_ROUTE = '#^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$#';

    private ?DigitsModel $model = null;

    /** @param Closure(): DigitsModel $loadModel called once, on the first call that needs the model */
    public function __construct(private readonly Closure $loadModel)
    {
    }

    public function handle(string $method, string $path, string $body): HttpResponse
    {
        try {
            return $this->route($method, $path, $body);
        } catch (OipError $error) {
            return self::json($error->status, ['error' => $error->getMessage()], $error->headers);
        } catch (BadWeights $error) {
            // The server is misconfigured, not the request wrong.
            return self::json(500, ['error' => $error->getMessage()]);
        }
    }

    private function route(string $method, string $path, string $body): HttpResponse
    {
        if ($path === '/v2/health/live') {
            self::allow($method, $path, 'GET');
            return self::json(200, ['live' => true]);
        }
        if ($path === '/v2/health/ready') {
            self::allow($method, $path, 'GET');
            return $this->ready(['ready' => true], 'server is not ready');
        }
        if ($path === '/v2') {
            self::allow($method, $path, 'GET');
            return self::json(200, [
                'name' => Contract::SERVER_NAME,
                'version' => Contract::SERVER_VERSION,
                'extensions' => [],
            ]);
        }
        if (preg_match(self::MODEL_ROUTE, $path, $match) === 1) {
            $name = rawurldecode($match[1]);
            $version = rawurldecode($match[2] ?? '');
            $action = $match[3] ?? '';
            self::allow($method, $path, $action === '/infer' ? 'POST' : 'GET');
            if ($name === EchoModel::MODEL) {
                EchoModel::checkVersion($version);
                return match ($action) {
                    '/ready' => self::json(200, ['name' => EchoModel::MODEL, 'ready' => true]),
                    '/infer' => self::json(200, EchoModel::infer($body)),
                    default => self::json(200, EchoModel::metadata()),
                };
            }
            Contract::checkModel($name, $version);
            return match ($action) {
                '/ready' => $this->ready(
                    ['name' => Contract::MODEL, 'ready' => true],
                    "model \"$name\" is not ready",
                ),
                '/infer' => $this->infer($body),
                default => self::json(200, Contract::modelMetadata()),
            };
        }
        throw new OipError(404, "$method $path: Not Found");
    }

    private function infer(string $body): HttpResponse
    {
        $request = InferRequest::fromJson($body);
        [$labels, $probabilities] = $this->model()->predict($request->pixels, $request->rows);
        $rows = $request->rows;
        $response = ['model_name' => Contract::MODEL, 'model_version' => Contract::VERSION];
        if ($request->id !== null) {
            $response['id'] = $request->id;
        }
        $response['outputs'] = array_map(
            fn (string $name) => $name === Contract::LABEL
                ? ['name' => $name, 'shape' => [$rows], 'datatype' => 'INT64', 'data' => $labels]
                : ['name' => $name, 'shape' => [$rows, DigitsModel::CLASSES], 'datatype' => 'FP32',
                    'data' => $probabilities],
            $request->outputs,
        );
        return self::json(200, $response);
    }

    /**
     * Ready while the weights load; a server that cannot load them answers false with the reason.
     *
     * @param array<string, mixed> $answer
     */
    private function ready(array $answer, string $whyNot): HttpResponse
    {
        try {
            $this->model();
        } catch (BadWeights $error) {
            return self::json(400, ['error' => "$whyNot: " . $error->getMessage()]);
        }
        return self::json(200, $answer);
    }

    private function model(): DigitsModel
    {
        return $this->model ??= ($this->loadModel)();
    }

    private static function allow(string $method, string $path, string $allowed): void
    {
        if ($method !== $allowed) {
            throw new OipError(405, "$method $path: Method Not Allowed", ['Allow' => $allowed]);
        }
    }

    /**
     * @param array<string, mixed> $payload
     * @param array<string, string> $headers
     */
    private static function json(int $status, array $payload, array $headers = []): HttpResponse
    {
        return new HttpResponse($status, json_encode($payload, self::JSON_FLAGS), $headers);
    }
}
