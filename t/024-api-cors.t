# CORS on the API, with nginx.conf.example's own "location /api/": every
# reply (errors too) carries Access-Control-Allow-Origin: *, and a
# preflight (OPTIONS) is answered 204 with the methods and the request
# headers the browser asked for, as the old server's cors() answered.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Api;

my ($map, $api) = example_api_config();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('http_config', $map) unless defined $block->http_config;
    $block->set_value('config', "    location = /ws {\n        ws_relay;\n"
                                . "    }\n$api")
        unless defined $block->config;
});

log_level('info');
run_tests();

__DATA__

=== TEST 1: a preflight for send-to-user: 204, the methods, the requested headers
--- request
OPTIONS /api/send-to-user
--- more_headers
Origin: https://admin.example
Access-Control-Request-Method: POST
Access-Control-Request-Headers: content-type,x-api-key
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: *
Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE
Access-Control-Allow-Headers: content-type,x-api-key
Vary: Access-Control-Request-Headers
--- response_body
--- no_error_log
[error]
[crit]



=== TEST 2: a preflight without requested headers: no Allow-Headers, no Vary
--- request
OPTIONS /api/health
--- more_headers
Origin: https://admin.example
Access-Control-Request-Method: GET
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: *
Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE
!Access-Control-Allow-Headers
!Vary
--- response_body
--- no_error_log
[error]
[crit]



=== TEST 3: the replies of every route carry Access-Control-Allow-Origin
--- request eval
["GET /api/health", "GET /api/connections", "GET /api/redis-info",
 "GET /api/metrics"]
--- more_headers
Origin: https://admin.example
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["Access-Control-Allow-Origin: *", "Access-Control-Allow-Origin: *",
 "Access-Control-Allow-Origin: *", "Access-Control-Allow-Origin: *"]
--- no_error_log
[error]
[crit]



=== TEST 4: errors too: 400, 405, and nginx's own 404 in JSON
--- request eval
["POST /api/send-to-user\n{\"userId\":\"\"}", "PUT /api/health\n{}",
 "GET /api/nothing-here"]
--- more_headers
Origin: https://admin.example
Content-Type: application/json
--- error_code eval
[400, 405, 404]
--- response_headers eval
["Access-Control-Allow-Origin: *", "Access-Control-Allow-Origin: *",
 "Access-Control-Allow-Origin: *"]
--- response_body eval
[qq|{"error":"Missing userId"}\n|, qq|{"error":"Method not allowed"}\n|,
 qq|{"error":"Not found"}\n|]
--- no_error_log
[error]
[crit]



=== TEST 5: a send-to-user that is not sent as JSON is refused (no CSRF by text/plain)
--- request eval
["POST /api/send-to-user\n{\"userId\":\"u1\",\"message\":\"x\"}",
 "POST /api/send-to-user\n{\"userId\":\"u1\",\"message\":\"x\"}",
 "POST /api/send-to-user\n{\"userId\":\"u1\",\"message\":\"x\"}",
 "POST /api/send-to-user\n{\"userId\":\"u1\",\"message\":\"x\"}"]
--- more_headers eval
["Content-Type: text/plain",
 "Content-Type: application/x-www-form-urlencoded",
 "Content-Type: application/vnd.api+json",
 "X-Nothing: 1"]
--- error_code eval
[400, 400, 400, 400]
--- response_body eval
[(qq|{"error":"Request body must be JSON (Content-Type: application/json)"}\n|) x 4]
--- error_log
send-to-user body is not sent as application/json
--- no_error_log
[error]
[crit]



=== TEST 6: application/json in any case and with parameters is JSON; success is false for nobody
--- request eval
["POST /api/send-to-user\n{\"userId\":\"u1\",\"message\":\"x\"}",
 "POST /api/send-to-user\n{\"userId\":\"u1\",\"message\":\"x\"}"]
--- more_headers eval
["Content-Type: application/json; charset=utf-8",
 "Content-Type: Application/JSON"]
--- error_code eval
[200, 200]
--- response_body eval
[qq|{"success":false,"delivered":0,"userId":"u1"}\n|,
 qq|{"success":false,"delivered":0,"userId":"u1"}\n|]
--- no_error_log
[error]
[crit]
