# permessage-deflate (RFC 7692): the negotiation (each parameter, offers
# that are declined, several offers and headers, ws_relay_deflate off),
# compressed messages from clients (whole, fragmented, binary), compressed
# replies above ws_relay_deflate_min_length and plain ones below, messages
# that decompress on their own (no context takeover either way), the
# server window a client asked for, fan-out to connections with different
# windows, and the failures: the decompression bomb (1009), invalid
# compressed data (1007), RSV1 where it may not be (1002).
#
# The server always answers
#   permessage-deflate; server_no_context_takeover; client_no_context_takeover
# plus server_max_window_bits=N when the offer had it (N >= 9: zlib cannot
# compress with a 256-byte window, so an offer of 8 is declined) and
# client_max_window_bits=N when the offer gave it a value.
#
# WsRelay::Deflate's client inflates every compressed server message on its
# own, with the negotiated window and one byte at a time: a message that
# needs an earlier one, or a longer window, fails the test.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Deflate;
use Digest::SHA ();
use Time::HiRes ();

our $BASE = 'permessage-deflate; server_no_context_takeover; '
            . 'client_no_context_takeover';

# the answer to an accepted offer: $BASE and these parameters
sub answer { join '; ', $BASE, @_ }

# $n bytes of text without repeats: deflate finds nothing to refer to
sub noise {
    my ($n, $seed) = @_;

    my $s = '';
    my $i = 0;
    $s .= Digest::SHA::sha256_hex(($seed // 'n') . $i++) while length $s < $n;
    return substr $s, 0, $n;
}

# text whose only repeat is 600 bytes, about 2700 bytes back: a compressor
# with a window of 2^11 bytes or less cannot use it
sub far_repeat {
    my $x = noise(600, 'x');
    return $x . noise(2000, 'f') . $x;
}

# $json padded with a "pad" field to exactly $size bytes
sub json_of_size {
    my ($size, %msg) = @_;

    my $json = JSON::PP->new->canonical;
    my $empty = $json->encode({ %msg, pad => '' });
    die "json_of_size: $size is too small\n" if $size < length $empty;
    return $json->encode({ %msg, pad => 'p' x ($size - length $empty) });
}

# Offers $offer and checks the answer ($want; undef: no extension). An
# accepted extension must then work both ways: a compressed ping (with the
# client window the answer set) gets its pong, a long chat comes back
# compressed and inflates with the server window the answer set. A
# declined one: RSV1 is a protocol error.
sub negotiates {
    my ($offer, $want, $desc) = @_;

    my $c = ws_connect_deflate('/ws', offer => $offer);
    is($c->{extensions}, $want, "$WsRelay::Test::BlockName - $desc: answer");

    my ($welcome) = $c->recv_json_m;
    is($welcome->{type}, 'welcome', "$desc: welcome");

    if (!defined $want) {
        $c->send_compressed('{"type":"ping"}');
        $c->expect_close(1002, "$desc: declined, RSV1 is 1002");
        return;
    }

    my $bits = $c->{pmd}{client_max_window_bits} // 15;
    # zlib cannot compress with 2^8: a client that was granted 8 bits sends
    # what fits 2^9 (the server inflates with 2^15 whatever it granted)
    $bits = 9 if $bits < 9;
    $c->send_compressed('{"type":"ping"}', window_bits => $bits);
    my ($pong) = $c->recv_json_m;
    is($pong->{type}, 'pong', "$desc: compressed ping answered");

    my $text = far_repeat();
    $c->send_compressed(qq|{"type":"chat","text":"$text"}|,
                        window_bits => $bits);
    my ($echo, $m) = $c->recv_json_m;
    ok($m->{compressed} && $echo->{text} eq $text,
       "$desc: the echo comes back compressed, with a window of 2^"
       . ($c->{pmd}{server_max_window_bits} // 15));
    $c->close;
}

ws_defaults();

log_level('info');
run_tests();

__DATA__

=== TEST 1: a plain offer: the fixed answer, a compressed ping, its pong
--- raw_request eval
[::ws_handshake('/ws', 'Sec-WebSocket-Extensions' => 'permessage-deflate'),
 ::ws_frame(opcode => 'text', rsv => 4,
            payload => ::pmd_compress('{"type":"ping"}'))
 . ::ws_close(1000)]
--- response_headers eval
"Sec-WebSocket-Extensions: $::BASE"
--- response_body eval
::welcome_line() . ::pong_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]
[alert]



=== TEST 2: each parameter of an offer, and the answer to it
--- ws_session
my @cases = (
    ['permessage-deflate; server_no_context_takeover', ::answer()],
    ['permessage-deflate; client_no_context_takeover', ::answer()],
    ['permessage-deflate; server_no_context_takeover; '
     . 'client_no_context_takeover', ::answer()],
    ['permessage-deflate; client_max_window_bits', ::answer()],
    ['permessage-deflate; client_max_window_bits=8',
     ::answer('client_max_window_bits=8')],
    ['permessage-deflate; client_max_window_bits=10',
     ::answer('client_max_window_bits=10')],
    ['permessage-deflate; client_max_window_bits=15',
     ::answer('client_max_window_bits=15')],
    ['permessage-deflate; server_max_window_bits=9',
     ::answer('server_max_window_bits=9')],
    ['permessage-deflate; server_max_window_bits=11',
     ::answer('server_max_window_bits=11')],
    ['permessage-deflate; server_max_window_bits=15',
     ::answer('server_max_window_bits=15')],
    ['permessage-deflate; server_max_window_bits="10"',
     ::answer('server_max_window_bits=10')],
    ['permessage-deflate; client_max_window_bits=12; '
     . 'server_max_window_bits=10; server_no_context_takeover; '
     . 'client_no_context_takeover',
     ::answer('server_max_window_bits=10', 'client_max_window_bits=12')],
    ['  permessage-deflate ;server_max_window_bits=11 ;  '
     . 'client_max_window_bits = 9  ',
     ::answer('server_max_window_bits=11', 'client_max_window_bits=9')],
);
::negotiates(@$_, "offer \"$_->[0]\"") for @cases;
--- no_error_log
[error]
[crit]
[alert]



=== TEST 3: server_max_window_bits=8 is declined (zlib has no 256-byte window): the next offer is taken
--- ws_session
::negotiates('permessage-deflate; server_max_window_bits=8', undef,
             'server_max_window_bits=8 alone');
::negotiates('permessage-deflate; server_max_window_bits=8, '
             . 'permessage-deflate; server_max_window_bits=9',
             ::answer('server_max_window_bits=9'), '8, then 9');
::negotiates('permessage-deflate; server_max_window_bits=8; '
             . 'client_max_window_bits=10, permessage-deflate',
             ::answer(), '8, then a plain offer');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 4: bad offers are declined, never fatal: alone no extension, before a good offer the good one
--- ws_session
my @bad = (
    'permessage-deflate; foo',                           # unknown
    'permessage-deflate; foo=1',
    'permessage-deflate; foo="a,b"',
    'permessage-deflate; server_no_context_takeover; '   # duplicates
    . 'server_no_context_takeover',
    'permessage-deflate; client_no_context_takeover; '
    . 'client_no_context_takeover',
    'permessage-deflate; server_max_window_bits=10; server_max_window_bits=10',
    'permessage-deflate; client_max_window_bits; client_max_window_bits=10',
    'permessage-deflate; server_no_context_takeover=1',  # value, no-value
    'permessage-deflate; client_no_context_takeover="x"',
    'permessage-deflate; server_max_window_bits',        # needs a value
    'permessage-deflate; server_max_window_bits=',
    'permessage-deflate; client_max_window_bits=',
    'permessage-deflate; server_max_window_bits=7',      # out of range
    'permessage-deflate; server_max_window_bits=16',
    'permessage-deflate; server_max_window_bits=0',
    'permessage-deflate; server_max_window_bits=010',
    'permessage-deflate; server_max_window_bits=-9',
    'permessage-deflate; server_max_window_bits=999',
    'permessage-deflate; client_max_window_bits=7',
    'permessage-deflate; client_max_window_bits=16',
    'permessage-deflate; client_max_window_bits=1a',
    'permessage-deflate; client_max_window_bits=abc',
    'permessage-deflate x',                              # garbage
    'permessage-deflate; server_max_window_bits=10 11',
    'permessage-deflate;',
    'permessage-deflate; ;',
    'permessage-deflate;;client_no_context_takeover',
    'permessage-deflate; =10',
    "permessage-deflate; \x01\x7f",
    'x-webkit-deflate-frame',
    'permessage-deflat',
    'permessage-deflate-x',
    ';',
);
for my $offer (@bad) {
    ::negotiates($offer, undef, "bad offer \"$offer\" alone");
    ::negotiates("$offer, permessage-deflate; client_max_window_bits=11",
                 ::answer('client_max_window_bits=11'),
                 "bad offer \"$offer\", then a good one");
}
--- timeout: 60
--- no_error_log
[error]
[crit]
[alert]



=== TEST 5: several offers in one header and in several headers: the first acceptable one wins
--- ws_session
::negotiates('permessage-deflate; server_max_window_bits=10, '
             . 'permessage-deflate; server_max_window_bits=12',
             ::answer('server_max_window_bits=10'), 'two good offers');
::negotiates('x-webkit-deflate-frame, permessage-deflate; '
             . 'client_max_window_bits',
             ::answer(), 'another extension first');
::negotiates(['x-webkit-deflate-frame',
              'permessage-deflate; server_max_window_bits=12'],
             ::answer('server_max_window_bits=12'),
             'two headers, the second one has the offer');
::negotiates(['permessage-deflate; foo',
              'permessage-deflate; server_max_window_bits=11'],
             ::answer('server_max_window_bits=11'),
             'two headers, the first offer is bad');
::negotiates(['permessage-deflate; server_max_window_bits=9',
              'permessage-deflate; server_max_window_bits=11'],
             ::answer('server_max_window_bits=9'),
             'two headers with good offers: the first header');
::negotiates(['permessage-deflate; server_max_window_bits=8',
              'permessage-deflate; foo',
              'permessage-deflate; client_max_window_bits=13'],
             ::answer('client_max_window_bits=13'),
             'three headers, two declined');
::negotiates(['permessage-deflate; foo', 'permessage-deflate; bar'], undef,
             'two headers, both bad');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 6: ws_relay_deflate off: an offer gets no extension, and RSV1 is 1002
--- config
    location = /ws {
        ws_relay;
        ws_relay_deflate off;
    }
--- ws_session
::negotiates('permessage-deflate', undef, 'off: plain offer');
::negotiates('permessage-deflate; server_max_window_bits=10, '
             . 'permessage-deflate', undef, 'off: two offers');
my $c = ws_open_deflate('/ws', negotiated => 0);
my $text = 'y' x 2000;
my $echo = $c->call({type => 'chat', text => $text});
my $m = $c->{received}[-1];
ok(!$m->{compressed} && $echo->{text} eq $text,
   'off: a long reply goes out plain');
--- error_log
client error, closing with 1002: reserved bits set
--- no_error_log
[error]
[crit]
[alert]



=== TEST 7: no offer: no extension; RSV1 is 1002, long replies are plain
--- ws_session
my $c = ws_open_deflate('/ws', offer => undef, negotiated => 0);
is($c->{extensions}, undef, 'no Sec-WebSocket-Extensions in the 101');
my $echo = $c->call({type => 'chat', text => 'z' x 3000});
ok(!$c->{received}[-1]{compressed} && $echo->{text} eq 'z' x 3000,
   'a 3000-byte echo goes out plain');
$c->send_compressed('{"type":"ping"}');
$c->expect_close(1002, 'RSV1 without the extension');
--- error_log
client error, closing with 1002: reserved bits set
--- no_error_log
[error]
[crit]
[alert]



=== TEST 8: compressed messages in: text, binary, mixed with plain ones, a final block, a kept tail, an empty one
--- ws_session
my $c = ws_open_deflate('/ws');

$c->send_compressed('{"type":"ping"}');
json_is($c->recv_json, {type => 'pong', timestamp => NOW}, 'text');

$c->send_compressed('{"type":"ping"}', opcode => 'binary');
json_is($c->recv_json, {type => 'pong', timestamp => NOW}, 'binary');

$c->send_compressed("\xff\xfe\x00 not JSON", opcode => 'binary');
json_is($c->recv_json, {type => 'error', message => 'Invalid message format'},
        'binary, not UTF-8: an error reply');

$c->send_json({type => 'ping'});
json_is($c->recv_json, {type => 'pong', timestamp => NOW},
        'a plain message between compressed ones');

$c->send_compressed('{"type":"chat","text":"caf' . "\xc3\xa9" . '"}');
json_is($c->recv_json, {type => 'chat', text => "caf\x{e9}",
                        sender => $c->{id}, timestamp => NOW},
        'compressed UTF-8 text, echoed');

$c->send_compressed('{"type":"ping"}', final => 1);
json_is($c->recv_json, {type => 'pong', timestamp => NOW},
        'ended by a final block (RFC 7692 7.2.3.2)');

$c->send_compressed('{"type":"ping"}', keep_tail => 1);
json_is($c->recv_json, {type => 'pong', timestamp => NOW},
        'with the 00 00 ff ff left on');

$c->send_compressed('{"type":"ping"}', level => 0);
json_is($c->recv_json, {type => 'pong', timestamp => NOW},
        'stored (uncompressed) deflate blocks');

$c->send_compressed('', payload => "\x00");
json_is($c->recv_json, {type => 'error', message => 'Invalid message format'},
        'an empty message as one empty stored block (7.2.3.6)');

$c->send_compressed('', payload => '');
json_is($c->recv_json, {type => 'error', message => 'Invalid message format'},
        'an empty payload with RSV1');

my $text = ::noise(130_000);
my $payload = ::pmd_compress(qq|{"type":"chat","text":"$text"}|);
cmp_ok(length $payload, '>', 65535, 'the compressed frame needs a 64-bit length');
$c->send_compressed('', payload => $payload);
my ($echo, $m) = $c->recv_json_m;
ok($echo->{text} eq $text && $m->{compressed},
   '130 kB of text in a 64-bit frame, echoed compressed');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 9: a fragmented compressed message: RSV1 on the first frame only, pings between, any split
--- ws_session
my $c = ws_open_deflate('/ws');
my $text = ::far_repeat();
my $json = qq|{"type":"chat","text":"$text"}|;
my $payload = ::pmd_compress($json);

$c->send_compressed('', payload => $payload, fragments => [10, 500],
                    between => ws_ping('mid'));
my ($echo, $m) = $c->recv_json_m;
is($c->{pongs}[-1], 'mid', 'pings between fragments are answered');
ok($echo->{text} eq $text && $m->{compressed}, 'three fragments, echoed');

$c->send_compressed('', payload => $payload,
                    fragments => [(1) x 40]);
($echo) = $c->recv_json_m;
is($echo->{text}, $text, '41 fragments, the first 40 of one byte');

$c->send_compressed('', payload => $payload, fragments => [0, 0]);
($echo) = $c->recv_json_m;
is($echo->{text}, $text, 'empty first fragments');

$c->send_compressed('', payload => $payload,
                    fragments => [length $payload]);
($echo) = $c->recv_json_m;
is($echo->{text}, $text, 'an empty last fragment');

$c->send_compressed('', payload => ::pmd_compress('{"type":"ping"}'),
                    opcode => 'binary', fragments => [3]);
json_is($c->recv_json, {type => 'pong', timestamp => NOW},
        'a fragmented compressed binary message');

$c->send_raw(ws_text('{"type":', fin => 0) . ws_cont('"ping"}'));
json_is($c->recv_json, {type => 'pong', timestamp => NOW},
        'a fragmented plain message after them');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 10: replies of ws_relay_deflate_min_length (256) bytes and more are compressed, shorter ones plain
--- ws_session
my $c = ws_open_deflate('/ws');

# an echo is as long as the text plus a fixed part for this connection
my $probe = $c->call({type => 'chat', text => 'x'});
my $fixed = length($c->{received}[-1]{data}) - 1;

for my $len (255, 256, 257, 5000) {
    my $text = 'x' x ($len - $fixed);
    my $echo = $c->call({type => 'chat', text => $text});
    my $m = $c->{received}[-1];
    is(length $m->{data}, $len, "an echo of $len bytes");
    is($m->{compressed}, $len >= 256 ? 1 : 0,
       "an echo of $len bytes is " . ($len >= 256 ? 'compressed' : 'plain'));
    is($echo->{text}, $text, "an echo of $len bytes: the text");
}

cmp_ok(length $c->{received}[-1]{wire}, '<', 200,
       '5000 bytes of x compress to less than 200');

json_is($c->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'pong');
is($c->{received}[-1]{compressed}, 0, 'a pong is short: plain');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 11: ws_relay_deflate_min_length 0 compresses everything, 1k nothing under 1024 bytes
--- config
    location = /ws {
        ws_relay;
        ws_relay_deflate_min_length 0;
    }
    location = /ws1k {
        ws_relay;
        ws_relay_deflate_min_length 1k;
    }
--- ws_session
my $c = ws_open_deflate('/ws');
is($c->{received}[0]{compressed}, 1, 'min_length 0: the welcome is compressed');
json_is($c->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'min_length 0: pong');
is($c->{received}[-1]{compressed}, 1, 'min_length 0: the pong is compressed');

my $k = ws_open_deflate('/ws1k');
is($k->{received}[0]{compressed}, 0, 'min_length 1k: the welcome is plain');
$k->call({type => 'chat', text => 'x'});
my $fixed = length($k->{received}[-1]{data}) - 1;
for my $len (1023, 1024) {
    $k->call({type => 'chat', text => 'x' x ($len - $fixed)});
    is($k->{received}[-1]{compressed}, $len >= 1024 ? 1 : 0,
       "min_length 1k: an echo of $len bytes is "
       . ($len >= 1024 ? 'compressed' : 'plain'));
}
--- no_error_log
[error]
[crit]
[alert]



=== TEST 12: no context takeover: every server message inflates on its own, even a repeat
--- ws_session
my $c = ws_open_deflate('/ws');
my $text = ::noise(3000);

my @m;
for (1 .. 3) {
    my $echo = $c->call({type => 'chat', text => $text});
    is($echo->{text}, $text, "echo $_: inflated on its own");
    push @m, $c->{received}[-1];
}

ok((grep { $_->{compressed} } @m) == 3, 'three compressed echoes');

# with context takeover the repeats would take a few bytes each
for my $i (1, 2) {
    cmp_ok(length $m[$i]{wire}, '>', length($m[0]{wire}) - 10,
           "echo " . ($i + 1) . " is compressed as if it were the first");
}
--- no_error_log
[error]
[crit]
[alert]



=== TEST 13: a client that keeps its context despite client_no_context_takeover: 1007
--- ws_session
my $c = ws_open_deflate('/ws');
my $d = ::pmd_deflater();
my $json = qq|{"type":"ping","pad":"@{[::noise(2000)]}"}|;

my $first = $d->compress($json);
$c->send_compressed('', payload => $first);
json_is($c->recv_json, {type => 'pong', timestamp => NOW},
        'the first message is fine');

my $second = $d->compress($json);
cmp_ok(length $second, '<', length($first) / 4,
       'the second one refers to the first');
$c->send_compressed('', payload => $second);
$c->expect_close(1007, 'the server inflates each message alone');
--- error_log
client error, closing with 1007: invalid compressed data
--- no_error_log
[error]
[crit]
[alert]



=== TEST 14: server_max_window_bits: replies never refer further back than the window
--- ws_session
my $text = ::far_repeat();

my $wide = ws_open_deflate('/ws');
$wide->call({type => 'chat', text => $text});
my $w = $wide->{received}[-1];
ok($w->{compressed}, 'default window: compressed');
is(::pmd_inflate($w->{wire}, window_bits => 9), undef,
   'default window: the reply needs more than 2^9 bytes of history');
like($@, qr/./, "default window: inflate with 2^9 fails ($@)");
cmp_ok(length $w->{wire}, '<', length($w->{data}) - 400,
       'default window: the 600-byte repeat was found');

for my $bits (9, 10, 11) {
    my $c = ws_open_deflate('/ws',
                            offer => "permessage-deflate; "
                                     . "server_max_window_bits=$bits");
    is($c->{pmd}{server_max_window_bits}, $bits, "$bits bits: accepted");
    my $echo = $c->call({type => 'chat', text => $text});
    my $m = $c->{received}[-1];
    ok($m->{compressed} && $echo->{text} eq $text,
       "$bits bits: the reply inflates with a 2^$bits window");
    cmp_ok(length $m->{wire}, '>', length($m->{data}) / 2 - 100,
           "$bits bits: the repeat out of the window was not used");
}
--- no_error_log
[error]
[crit]
[alert]



=== TEST 15: fan-out to one user's connections: each gets its window, or plain text
--- ws_session
my $b15 = ws_open_deflate('/ws');
my $b10 = ws_open_deflate('/ws', offer => 'permessage-deflate; '
                                          . 'server_max_window_bits=10');
my $plain = ws_open_deflate('/ws', offer => undef, negotiated => 0);
my $b15b = ws_open_deflate('/ws', offer => 'permessage-deflate; '
                                           . 'client_max_window_bits');
my @bob = ($b15, $b10, $plain, $b15b);
$_->call({type => 'register', userId => 'bob'}) for @bob;

my $alice = ws_open_deflate('/ws');
$alice->call({type => 'register', userId => 'alice'});

my $data = {text => ::far_repeat(), n => [1 .. 50]};
$alice->send_compressed_json({type => 'notification', targetUserId => 'bob',
                              action => 'big', data => $data});
json_is($alice->recv_json, {type => 'notification_result',
                            targetUserId => 'bob', delivered => TRUE,
                            connections => 4, timestamp => NOW},
        'alice: 4 connections');

my @got = map { [$_->recv_json_m] } @bob;
for my $i (0 .. $#bob) {
    json_is($got[$i][0], {type => 'notification', action => 'big',
                          data => $data, sender => 'alice',
                          timestamp => NOW},
            "bob connection $i: the notification");
}
is_deeply([map { $_->[1]{compressed} } @got], [1, 1, 0, 1],
          'compressed for the three that negotiated it');
is($got[0][1]{wire}, $got[3][1]{wire},
   'the two 15-bit connections get the same bytes');
isnt($got[0][1]{wire}, $got[1][1]{wire},
     'the 10-bit connection gets its own compression');
is(::pmd_inflate($got[0][1]{wire}, window_bits => 10), undef,
   'the 15-bit bytes would not do for the 10-bit connection');

# chat goes the same way
$alice->call({type => 'chat', targetUserId => 'bob', text => ::far_repeat()});
for my $c (@bob) {
    my ($chat) = $c->recv_json_m;
    is($chat->{text}, ::far_repeat(), 'a long chat reaches each connection');
}
--- no_error_log
[error]
[crit]
[alert]



=== TEST 16: compressed messages up to ws_relay_max_message_size once inflated: exactly the limit passes, one byte more is 1009
--- config
    location = /ws {
        ws_relay;
        ws_relay_max_message_size 64k;
    }
--- ws_session
my $c = ws_open_deflate('/ws');
$c->send_compressed(::json_of_size(65536, type => 'ping'));
json_is($c->recv_json, {type => 'pong', timestamp => NOW},
        '64 KiB inflated: accepted');

$c->send_compressed(::json_of_size(65536, type => 'ping'),
                    fragments => [20, 20]);
json_is($c->recv_json, {type => 'pong', timestamp => NOW},
        '64 KiB inflated, fragmented: accepted');

$c->send_compressed(::json_of_size(65537, type => 'ping'));
$c->expect_close(1009, '64 KiB + 1 inflated');
--- error_log
client error, closing with 1009: message too big once inflated
--- no_error_log
[error]
[crit]
[alert]



=== TEST 17: the decompression bomb: 64 kB that inflate to 64 MiB get 1009 at once, without the memory
--- ws_session
my $c = ws_open_deflate('/ws');
my $pid = $c->{pid};
my $bomb = ::pmd_bomb(64 * 1024 * 1024);
cmp_ok(length $bomb, '<', 100_000, 'the bomb is under 100 kB');

my $before = worker_rss_kib($pid);
my $t0 = Time::HiRes::time();
$c->send_compressed('', payload => $bomb);
$c->expect_close(1009, 'the bomb');
my $took = Time::HiRes::time() - $t0;
my $after = worker_rss_kib($pid);
cmp_ok($took, '<', 2, 'refused within 2 s');
cmp_ok($after - $before, '<', 16 * 1024,
       "the worker grew by less than 16 MiB ($before -> $after KiB)");

# a bomb in fragments, on a second connection
my $d = ws_open_deflate('/ws');
$d->send_compressed('', payload => $bomb, fragments => [1000, 30000]);
$d->expect_close(1009, 'the bomb in fragments');

# the worker still serves
my $e = ws_open_deflate('/ws');
$e->send_compressed('{"type":"ping"}');
json_is($e->recv_json, {type => 'pong', timestamp => NOW},
        'a new connection is served');
cmp_ok(worker_rss_kib($pid) - $before, '<', 16 * 1024,
       'and the worker stayed small');
--- error_log
client error, closing with 1009: message too big once inflated
--- no_error_log
[error]
[crit]
[alert]



=== TEST 18: invalid compressed data: 1007
--- ws_session
my %bad = (
    'a reserved block type'   => "\xff\xff\xff\xff",
    'a bad stored length'     => "\x00\x05\x00\x00\x00hello",
    'a bad Huffman table'     => "\x04\xff\xff\xff\xff\xff\xff",
    # what a compressor that kept its context sends for a repeat
    'a distance before the start' => do {
        my $d = ::pmd_deflater();
        $d->compress('abcdefgh' x 4);
        $d->compress('abcdefgh' x 4);
    },
);
for my $what (sort keys %bad) {
    my $c = ws_open_deflate('/ws');
    is(::pmd_inflate($bad{$what}), undef, "$what: not valid deflate data");
    $c->send_compressed('', payload => $bad{$what});
    $c->expect_close(1007, $what);
}

my $c = ws_open_deflate('/ws');
$c->send_compressed('', payload => "\xff\xff", fragments => [1]);
$c->expect_close(1007, 'a reserved block type, fragmented');
--- error_log
client error, closing with 1007: invalid compressed data
--- no_error_log
[error]
[crit]
[alert]



=== TEST 19: a compressed text message that inflates to invalid UTF-8: 1007
--- ws_session
for my $bad ("\xff", "\xc3", "\xed\xa0\x80") {
    my $c = ws_open_deflate('/ws');
    $c->send_compressed(qq|{"type":"chat","text":"$bad"}|);
    $c->expect_close(1007, 'invalid UTF-8 hex ' . unpack('H*', $bad));
}
--- error_log
client error, closing with 1007: invalid UTF-8 in a text message
--- no_error_log
[error]
[crit]
[alert]



=== TEST 20: RSV1 on a control frame: 1002, with the extension negotiated
--- ws_session
for my $op (qw(ping pong close)) {
    my $c = ws_open_deflate('/ws');
    $c->send_frame(opcode => $op, rsv => 4,
                   payload => $op eq 'close' ? pack('n', 1000) : '');
    $c->expect_close(1002, "RSV1 on a $op");
}
--- error_log
client error, closing with 1002: RSV1 on a control frame
--- no_error_log
[error]
[crit]
[alert]



=== TEST 21: RSV1 on a continuation frame: 1002, whether the message is compressed or not
--- ws_session
my $payload = ::pmd_compress('{"type":"ping"}');

my $c = ws_open_deflate('/ws');
$c->send_compressed('', payload => $payload, fragments => [5], cont_rsv => 4);
$c->expect_close(1002, 'compressed message, RSV1 on its continuation');

$c = ws_open_deflate('/ws');
$c->send_raw(ws_text('{"type":', fin => 0)
             . ws_cont('"ping"}', rsv => 4));
$c->expect_close(1002, 'plain message, RSV1 on its continuation');
--- error_log
client error, closing with 1002: RSV1 on a continuation frame
--- no_error_log
[error]
[crit]
[alert]



=== TEST 22: RSV2 and RSV3 stay reserved with the extension negotiated: 1002
--- ws_session
for my $rsv (1, 2, 5, 6) {
    my $c = ws_open_deflate('/ws');
    $c->send_compressed('{"type":"ping"}', rsv => $rsv);
    $c->expect_close(1002, "RSV bits $rsv");
}
--- error_log
client error, closing with 1002: reserved bits set
--- no_error_log
[error]
[crit]
[alert]



=== TEST 23: RSV1 when the offer was declined: 1002
--- raw_request eval
[::ws_handshake('/ws', 'Sec-WebSocket-Extensions' =>
                'permessage-deflate; server_max_window_bits=8'),
 ::ws_frame(opcode => 'text', rsv => 4,
            payload => ::pmd_compress('{"type":"ping"}'))]
--- response_headers
!Sec-WebSocket-Extensions
--- response_body eval
::welcome_line() . "close: 1002\n"
--- error_log
client error, closing with 1002: reserved bits set
--- no_error_log
[error]
[crit]
[alert]



=== TEST 24: ws_relay_deflate_level: each location its level, one fan-out, both inflate; 1 to 9 only
--- config
    location = /ws1 {
        ws_relay;
        ws_relay_deflate_level 1;
    }
    location = /ws9 {
        ws_relay;
        ws_relay_deflate_level 9;
    }
--- ws_session
my $fast = ws_open_deflate('/ws1');
my $best = ws_open_deflate('/ws9');
$_->call({type => 'register', userId => 'bob'}) for $fast, $best;

my $alice = ws_open_deflate('/ws1');
$alice->call({type => 'register', userId => 'alice'});

# text that levels 1 and 9 compress differently
my $text = join ',', map { "{\"id\":$_,\"user\":\"user-" . ($_ * 7 % 13)
                           . "\",\"state\":\"online\"}" } 1 .. 60;
$alice->call({type => 'chat', targetUserId => 'bob', text => $text});

my @got = map { [$_->recv_json_m] } $fast, $best;
for my $g (@got) {
    is($g->[0]{text}, $text, 'the chat inflates to its text');
    is($g->[1]{compressed}, 1, 'compressed');
}
cmp_ok(length $got[1][1]{wire}, '<', length $got[0][1]{wire},
       'level 9 is smaller than level 1');

for my $level (0, 10, 'fast') {
    my ($status, $out) = nginx_config_test(
        config => "    location = /ws {\n        ws_relay;\n"
                  . "        ws_relay_deflate_level $level;\n    }\n");
    isnt($status, 0, "level $level: nginx -t fails");
    like($out, $level =~ /^\d+$/
               ? qr/\[emerg\] value must be between 1 and 9 in /
               : qr/\[emerg\] "ws_relay_deflate_level" directive invalid number/,
         "level $level: the reason");
}
--- no_error_log
[error]
[crit]
[alert]
