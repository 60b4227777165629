# The WebSocket opening handshake (RFC 6455 section 4.2) of a ws_relay
# location, and the HTTP answers to requests that are not a valid upgrade.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;

log_level('info');
run_tests();

__DATA__

=== TEST 1: upgrade with RFC 6455's sample key: 101, the sample accept, a welcome
--- config
    location = /ws {
        ws_relay;
    }
--- raw_request eval
::ws_request('/ws', ::ws_close(1000))
--- raw_request_middle_delay: 0.1
--- error_code: 101
--- response_headers
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
!Content-Length
!Transfer-Encoding
--- raw_response_headers_like chomp
(?ims)\A(?=.*^Upgrade:\s*websocket\r$)(?=.*^Connection:\s*upgrade\r$)
--- response_body_filters eval
\&::ws_frames
--- response_body eval
::welcome_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 2: tokens are case-insensitive and Connection may list several
--- config
    location = /ws {
        ws_relay;
    }
--- raw_request eval
[::ws_handshake('/ws', Upgrade => 'WebSocket',
                Connection => 'keep-alive, Upgrade'),
 ::ws_close(1000)]
--- raw_request_middle_delay: 0.1
--- error_code: 101
--- response_headers
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
--- response_body_filters eval
\&::ws_frames
--- response_body eval
::welcome_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 3: a plain GET is answered 426 Upgrade Required, naming websocket
--- config
    location = /ws {
        ws_relay;
    }
--- request
GET /ws
--- error_code: 426
--- response_headers
Upgrade: websocket
--- no_error_log
[error]
[crit]



=== TEST 4: Upgrade without the Connection token is not an upgrade: 426
--- config
    location = /ws {
        ws_relay;
    }
--- raw_request eval
::ws_handshake('/ws', Connection => 'close')
--- error_code: 426
--- no_error_log
[error]
[crit]



=== TEST 5: Connection: Upgrade with another Upgrade protocol: 426
--- config
    location = /ws {
        ws_relay;
    }
--- raw_request eval
::ws_handshake('/ws', Upgrade => 'h2c', Connection => 'Upgrade, close')
--- error_code: 426
--- no_error_log
[error]
[crit]



=== TEST 6: no Sec-WebSocket-Key: 400
--- config
    location = /ws {
        ws_relay;
    }
--- raw_request eval
::ws_handshake('/ws', 'Sec-WebSocket-Key' => undef,
              Connection => 'Upgrade, close')
--- error_code: 400
--- no_error_log
[error]
[crit]



=== TEST 7: malformed keys (not base64, not 16 bytes, empty): 400 each
--- config
    location = /ws {
        ws_relay;
    }
--- ws_session
for my $key ('not a base64 key!!!!!!!=', 'c2hvcnQ=',
             'AAAAAAAAAAAAAAAAAAAAAAAAAA==', 'dGhlIHNhbXBsZSBub25jZQ', '""')
{
    my $c = ws_connect('/ws', key => $key, expect_status => 400);
    is($c->status, 400, "key \"$key\" refused");
    is($c->header('Sec-WebSocket-Accept'), undef, "no accept for \"$key\"");
}
--- no_error_log
[error]
[crit]



=== TEST 8: Sec-WebSocket-Version 8: 426 with Sec-WebSocket-Version: 13
--- config
    location = /ws {
        ws_relay;
    }
--- raw_request eval
::ws_handshake('/ws', 'Sec-WebSocket-Version' => 8,
              Connection => 'Upgrade, close')
--- error_code: 426
--- response_headers
Sec-WebSocket-Version: 13
!Sec-WebSocket-Accept
--- no_error_log
[error]
[crit]



=== TEST 9: no Sec-WebSocket-Version at all: 426 with Sec-WebSocket-Version: 13
--- config
    location = /ws {
        ws_relay;
    }
--- raw_request eval
::ws_handshake('/ws', 'Sec-WebSocket-Version' => undef,
              Connection => 'Upgrade, close')
--- error_code: 426
--- response_headers
Sec-WebSocket-Version: 13
--- no_error_log
[error]
[crit]



=== TEST 10: other methods: 405
--- config
    location = /ws {
        ws_relay;
    }
--- ws_session
for my $method (qw(POST PUT DELETE)) {
    my $c = ws_connect('/ws', headers => [method => $method],
                       expect_status => 405);
    is($c->status, 405, "$method refused");
    like($c->header('Allow') // '', qr/\bGET\b/, "$method: Allow names GET");
}
--- no_error_log
[error]
[crit]



=== TEST 11: an HTTP/1.0 upgrade request is refused with a 4xx
--- config
    location = /ws {
        ws_relay;
    }
--- raw_request eval
my $req = ::ws_handshake('/ws');
$req =~ s{HTTP/1\.1}{HTTP/1.0};
$req
--- error_code_like: ^4\d\d$
--- no_error_log
[error]
[crit]



=== TEST 12: random keys get the accept value of RFC 6455 (checked by the client)
--- config
    location = /ws {
        ws_relay;
    }
--- ws_session
for my $i (1 .. 5) {
    my $c = ws_open('/ws');
    is($c->header('Upgrade'), 'websocket', "connection $i: Upgrade header");
    $c->close;
}
--- no_error_log
[error]
[crit]



=== TEST 13: ws_relay applies to its location only
--- config
    location = /ws {
        ws_relay;
    }
    location = /plain {
        return 200 "plain\n";
    }
--- raw_request eval
::ws_handshake('/plain', Connection => 'Upgrade, close')
--- response_body
plain
--- no_error_log
[error]
[crit]



=== TEST 14: the handshake split into single bytes still upgrades
--- config
    location = /ws {
        ws_relay;
    }
--- raw_request eval
[(split //, ::ws_handshake('/ws')), ::ws_close(1000)]
--- raw_request_middle_delay: 0.002
--- error_code: 101
--- response_body_filters eval
\&::ws_frames
--- response_body eval
::welcome_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]
