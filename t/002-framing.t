# RFC 6455 framing on a ws_relay connection: masking, lengths, fragments,
# control frames, UTF-8, the close handshake, and the protocol errors that
# fail a connection (1002, 1007).
#
# ws_defaults(): a ws_relay location /ws, and for raw requests a 101 whose
# frames ws_frames() decodes. Where the server fails the connection, the client sends
# nothing more: the server's close and the end of the connection are what
# the block waits for.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;

ws_defaults();

log_level('info');
run_tests();

__DATA__

=== TEST 1: a JSON ping in one masked text frame gets a pong; close is echoed
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'ping'}), ::ws_close(1000, 'bye'))
--- response_body eval
::welcome_line() . ::pong_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 2: frames fed one byte at a time
--- raw_request eval
[::ws_handshake('/ws'),
 split //, ::ws_json({type => 'ping'}) . ::ws_close(1000)]
--- raw_request_middle_delay: 0.01
--- response_body eval
::welcome_line() . ::pong_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 3: a fragmented message with a ping between its fragments
--- raw_request eval
::ws_request('/ws',
             ::ws_text('{"type":', fin => 0),
             ::ws_ping('mid'),
             ::ws_cont('"pi', fin => 0),
             ::ws_pong('unsolicited'),
             ::ws_cont('ng"}'),
             ::ws_close(1000))
--- response_body eval
::welcome_line() . "pong: mid\n" . ::pong_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 4: fragments arriving in separate packets
--- raw_request eval
[::ws_handshake('/ws'),
 ::ws_text('{"type":"ch', fin => 0),
 ::ws_cont('at","text":"in ', fin => 0),
 ::ws_cont('parts"}'),
 ::ws_close(1000)]
--- raw_request_middle_delay: 0.05
--- response_body eval
::welcome_line() . ::echo_line('in parts') . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 5: a 16-bit payload length
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'chat', text => 'a' x 300}),
             ::ws_close(1000))
--- response_body eval
::welcome_line() . ::echo_line('a' x 300) . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 6: a 64-bit payload length
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'chat', text => 'b' x 70000}),
             ::ws_close(1000))
--- response_body eval
::welcome_line() . ::echo_line('b' x 70000) . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 7: a short message may use a longer length encoding
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'ping'}, len_bits => 16),
             ::ws_json({type => 'ping'}, len_bits => 64),
             ::ws_close(1000))
--- response_body eval
::welcome_line() . ::pong_line() . ::pong_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 8: an all-zero masking key is a valid key
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'ping'}, mask_key => "\0\0\0\0"),
             ::ws_close(1000))
--- response_body eval
::welcome_line() . ::pong_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 9: a binary frame holding JSON is handled like text
--- raw_request eval
::ws_request('/ws', ::ws_binary('{"type":"ping"}'), ::ws_close(1000))
--- response_body eval
::welcome_line() . ::pong_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 10: binary bytes that are not UTF-8: an error reply, no close
--- raw_request eval
::ws_request('/ws', ::ws_binary("\xff\xfe\x00"), ::ws_json({type => 'ping'}),
             ::ws_close(1000))
--- response_body eval
::welcome_line() . ::error_line("Invalid message format")
. ::pong_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 11: pings are answered with their payload, up to 125 bytes
--- raw_request eval
::ws_request('/ws', ::ws_ping(''), ::ws_ping('hello'), ::ws_ping('p' x 125),
             ::ws_close(1000))
--- response_body eval
::welcome_line() . "pong\npong: hello\npong: " . 'p' x 125 . "\n"
. "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 12: an unsolicited pong is ignored
--- raw_request eval
::ws_request('/ws', ::ws_pong('hi'), ::ws_json({type => 'ping'}),
             ::ws_close(1000))
--- response_body eval
::welcome_line() . ::pong_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 13: a close without payload is answered and the connection ends
--- raw_request eval
::ws_request('/ws', ::ws_close())
--- response_body_like eval
qr/\A\Q@{[::welcome_line()]}\Eclose(?:: 1000)?\n\z/
--- no_error_log
[error]
[crit]



=== TEST 14: frames after the client's close are ignored
--- raw_request eval
::ws_request('/ws', ::ws_close(1000), ::ws_json({type => 'ping'}))
--- response_body eval
::welcome_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 15: a close inside a fragmented message ends it
--- raw_request eval
::ws_request('/ws', ::ws_text('{"type":', fin => 0), ::ws_close(1000))
--- response_body eval
::welcome_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 16: a UTF-8 character split across fragments is accepted
--- raw_request eval
::ws_request('/ws',
             ::ws_text(qq|{"type":"chat","text":"caf\xc3|, fin => 0),
             ::ws_cont(qq{\xa9 \xf0\x9f}, fin => 0),
             ::ws_cont(qq{\x98}, fin => 0),
             ::ws_cont(qq|\x80"}|),
             ::ws_close(1000))
--- response_body eval
::welcome_line() . ::echo_line("caf\xc3\xa9 \xf0\x9f\x98\x80") . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 17: an unmasked client frame: 1002
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'ping'}, mask => 0))
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 18: RSV bits without a negotiated extension: 1002 each
--- ws_session
for my $rsv (1, 2, 4) {
    my $c = ws_open('/ws');
    $c->send_json({type => 'ping'}, rsv => $rsv);
    $c->expect_close(1002, "RSV $rsv");
}
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 19: reserved opcodes: 1002 each
--- ws_session
for my $op (3 .. 7, 11 .. 15) {
    my $c = ws_open('/ws');
    $c->send_frame(opcode => $op, payload => 'x');
    $c->expect_close(1002, "opcode $op");
}
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 20: a ping of 126 bytes (control frames stop at 125): 1002
--- raw_request eval
::ws_request('/ws', ::ws_ping('p' x 126))
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 21: a fragmented ping: 1002
--- raw_request eval
::ws_request('/ws', ::ws_ping('a', fin => 0))
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 22: a fragmented close: 1002
--- raw_request eval
::ws_request('/ws', ::ws_close(1000, '', fin => 0))
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 23: a continuation frame without a message to continue: 1002
--- raw_request eval
::ws_request('/ws', ::ws_cont('{"type":"ping"}'))
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 24: a new data frame inside a fragmented message: 1002
--- raw_request eval
::ws_request('/ws', ::ws_text('{"type":', fin => 0),
             ::ws_text('{"type":"ping"}'))
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 25: a binary frame inside a fragmented text message: 1002
--- raw_request eval
::ws_request('/ws', ::ws_text('{"type":', fin => 0),
             ::ws_binary('"ping"}'))
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 26: a 64-bit length with the most significant bit set: 1002
--- raw_request eval
::ws_request('/ws', ::ws_frame(opcode => 'text', len => 2**63,
                               len_bits => 64))
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 27: invalid UTF-8 in a text message: 1007 each
--- ws_session
my %bad = (
    'byte 0xff'             => "\xff",
    'lone continuation'     => "\x80",
    'overlong slash'        => "\xc0\xaf",
    'overlong 3-byte'       => "\xe0\x80\xaf",
    'UTF-16 surrogate'      => "\xed\xa0\x80",
    'over U+10FFFF'         => "\xf4\x90\x80\x80",
    'truncated at the end'  => "\xc3",
);
for my $what (sort keys %bad) {
    my $c = ws_open('/ws');
    $c->send_text(qq{{"type":"chat","text":"$bad{$what}"}});
    $c->expect_close(1007, $what);
}
--- error_log
client error, closing with 1007
--- no_error_log
[error]
[crit]



=== TEST 28: invalid UTF-8 is caught in the first fragment, before the message ends
--- raw_request eval
::ws_request('/ws', ::ws_text(qq|{"type":"chat","text":"\xff|, fin => 0))
--- response_body eval
::welcome_line() . "close: 1007\n"
--- error_log
client error, closing with 1007
--- no_error_log
[error]
[crit]



=== TEST 29: a message ending inside a UTF-8 sequence: 1007
--- raw_request eval
::ws_request('/ws', ::ws_text(qq|{"type":"chat","text":"\xe2\x82|, fin => 0),
             ::ws_cont(''))
--- response_body eval
::welcome_line() . "close: 1007\n"
--- error_log
client error, closing with 1007
--- no_error_log
[error]
[crit]



=== TEST 30: a close frame with a 1-byte payload: 1002
--- raw_request eval
::ws_request('/ws', ::ws_frame(opcode => 'close', payload => "\x03"))
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 31: close codes that must not be sent: 1002 each
--- ws_session
for my $code (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000,
              65535)
{
    my $c = ws_open('/ws');
    $c->send_close($code);
    $c->expect_close(1002, "close code $code");
}
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 32: valid close codes are echoed
--- ws_session
for my $code (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000,
              3999, 4000, 4999)
{
    my $c = ws_open('/ws');
    $c->send_close($code, 'reason');
    my $m = $c->next_message;
    is($m && $m->{type}, 'close', "close $code answered with a close");
    is($m && $m->{code}, $code, "close $code echoed");
    $c->expect_eof("close $code: then the server closes");
}
--- no_error_log
[error]
[crit]



=== TEST 33: a close reason that is not UTF-8: 1007
--- raw_request eval
::ws_request('/ws', ::ws_close(1000, "bad \xff reason"))
--- response_body eval
::welcome_line() . "close: 1007\n"
--- error_log
client error, closing with 1007
--- no_error_log
[error]
[crit]



=== TEST 34: a peer that never answers the server's close is cut after ws_relay_close_timeout
--- http_config
    ws_relay_close_timeout 1s;
--- ws_session
my $c = ws_open('/ws');
$c->send_json({type => 'ping'}, mask => 0);
my $m = $c->next_message;
is($m && $m->{code}, 1002, 'the server fails the connection');
# the client neither answers nor closes: the server gives up after 1 s
sleep 1.5;
--- error_log
client error, closing with 1002
close handshake timed out
--- no_error_log
[error]
[crit]



=== TEST 35: a default-sized close reason of 123 bytes is accepted
--- raw_request eval
::ws_request('/ws', ::ws_close(1000, 'r' x 123))
--- response_body eval
::welcome_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 36: a close frame of 126 bytes is a control frame over 125: 1002
--- raw_request eval
::ws_request('/ws', ::ws_close(1000, 'r' x 124))
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]



=== TEST 37: a client that half-closes after a request still gets the reply
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'ping'}))
--- shutdown
--- response_body_like eval
qr/\A\Q@{[::welcome_line() . ::pong_line()]}\E(?:close(?:: \d+)?\n)?\z/
--- no_error_log
[error]
[crit]



=== TEST 38: a client that half-closes right after a bad frame still gets the 1002
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'ping'}, mask => 0))
--- shutdown
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002
--- no_error_log
[error]
[crit]
