<?php

declare(strict_types=1);

namespace AiSidecar\Digits;

use Throwable;

/**
 * The request and response of the running SAPI (the built-in server or php-fpm) handed to and from
 * DigitsApp. The only class that reads $_SERVER, php://input or sends headers.
 */
final class Sapi
{
    public static function serve(): void
    {
        $method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
        $path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
        $path = is_string($path) ? $path : '/';
        // A FastCGI parameter (nginx: fastcgi_param) or the environment (serve.sh).
        $weights = $_SERVER['DIGITS_WEIGHTS'] ?? getenv('DIGITS_WEIGHTS');
        if (!is_string($weights) || $weights === '') {
            $weights = dirname(__DIR__, 2) . '/digits/weights.json';
        }
        try {
            $limit = self::iniBytes('post_max_size');
            if ($limit > 0 && (int) ($_SERVER['CONTENT_LENGTH'] ?? 0) > $limit) {
                // PHP has dropped a body this large already; say so rather than call it empty.
                self::respond(self::error(413, "request body too large: over post_max_size ($limit bytes)"));
                return;
            }
            $body = $method === 'POST' ? (string) file_get_contents('php://input') : '';
            $app = new DigitsApp(fn (): DigitsModel => DigitsModel::load($weights));
            self::respond($app->handle($method, $path, $body));
        } catch (Throwable $error) {
            error_log("digits model: unexpected error serving $method $path: $error");
            self::respond(self::error(500, "internal error serving $method $path; see the server log"));
        }
    }

    private static function respond(HttpResponse $response): void
    {
        http_response_code($response->status);
        header('Content-Type: application/json');
        foreach ($response->headers as $name => $value) {
            header("$name: $value");
        }
        echo $response->body;
    }

    private static function error(int $status, string $message): HttpResponse
    {
        $body = json_encode(['error' => $message], JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR);
        return new HttpResponse($status, $body);
    }

    /** An ini size such as 8M or 64M, in bytes. */
    private static function iniBytes(string $key): int
    {
        $value = trim((string) ini_get($key));
        $scale = ['k' => 1 << 10, 'm' => 1 << 20, 'g' => 1 << 30][strtolower(substr($value, -1))] ?? 1;
        return (int) $value * $scale;
    }
}
