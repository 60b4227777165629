# Limits: ws_relay_max_message_size (1009), ws_relay_send_buffer (slow
# consumers, 1008), ws_relay_max_connections (capacity error, 1013) and
# ws_relay_heartbeat (pings, dead connections closed).

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;

# a chat message of exactly $size bytes of JSON
sub chat_of_size {
    my $size = shift;
    my $empty = '{"type":"chat","text":""}';
    return '{"type":"chat","text":"' . 'x' x ($size - length $empty) . '"}';
}

ws_defaults();

log_level('info');
run_tests();

__DATA__

=== TEST 1: a message of exactly ws_relay_max_message_size is accepted
--- config
    location = /ws {
        ws_relay;
        ws_relay_max_message_size 1k;
    }
--- raw_request eval
::ws_request('/ws', ::ws_text(::chat_of_size(1024)), ::ws_close(1000))
--- response_body eval
::welcome_line() . ::echo_line('x' x (1024 - 25)) . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 2: one byte more: 1009
--- config
    location = /ws {
        ws_relay;
        ws_relay_max_message_size 1k;
    }
--- raw_request eval
::ws_request('/ws', ::ws_text(::chat_of_size(1025)))
--- response_body eval
::welcome_line() . "close: 1009\n"
--- error_log
client error, closing with 1009
--- no_error_log
[error]
[crit]



=== TEST 3: the limit is on the whole message, not on one fragment: 1009
--- config
    location = /ws {
        ws_relay;
        ws_relay_max_message_size 1k;
    }
--- raw_request eval
my $m = ::chat_of_size(1025);
::ws_request('/ws', ::ws_text(substr($m, 0, 600), fin => 0),
             ::ws_cont(substr($m, 600)))
--- response_body eval
::welcome_line() . "close: 1009\n"
--- error_log
client error, closing with 1009
--- no_error_log
[error]
[crit]



=== TEST 4: a fragmented message within the limit, pings between, is accepted
--- config
    location = /ws {
        ws_relay;
        ws_relay_max_message_size 1k;
    }
--- raw_request eval
my $m = ::chat_of_size(1024);
::ws_request('/ws', ::ws_text(substr($m, 0, 500), fin => 0),
             ::ws_ping('x' x 100),
             ::ws_cont(substr($m, 500, 500), fin => 0),
             ::ws_ping('y' x 100),
             ::ws_cont(substr($m, 1000)), ::ws_close(1000))
--- response_body eval
::welcome_line() . 'pong: ' . 'x' x 100 . "\n" . 'pong: ' . 'y' x 100 . "\n"
. ::echo_line('x' x (1024 - 25)) . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 5: a frame header announcing a huge payload is refused at once: 1009
--- config
    location = /ws {
        ws_relay;
        ws_relay_max_message_size 1k;
    }
--- raw_request eval
::ws_request('/ws', ::ws_frame(opcode => 'text', len => 2**40))
--- response_body eval
::welcome_line() . "close: 1009\n"
--- error_log
client error, closing with 1009
--- no_error_log
[error]
[crit]



=== TEST 6: the default limit is 1 MiB: 1 MiB is accepted, one byte more is 1009
--- config
    location = /ws {
        ws_relay;
    }
--- ws_session
my $c = ws_open('/ws');
$c->send_binary('x' x 1048576);
json_is($c->recv_json(10), {type => 'error',
                            message => 'Invalid message format'},
        '1 MiB of non-JSON: an error reply, not a close');
$c->send_binary('x' x 1048577);
$c->expect_close(1009, '1 MiB + 1 byte', 10);
--- timeout: 20
--- error_log
client error, closing with 1009
--- no_error_log
[error]
[crit]



=== TEST 7: a reader that stops reading is closed once its queue passes ws_relay_send_buffer
--- config
    location = /ws {
        ws_relay;
        ws_relay_send_buffer 64k;
    }
--- ws_session
my $slow = ws_open('/ws', rcvbuf => 4096);
$slow->call({type => 'register', userId => 'slow'});

my $fast = ws_open('/ws');
my $text = 'z' x 60000;
my ($sent, $delivered) = (0, 1);

# the server's socket buffer absorbs some megabytes before the queue grows
while ($delivered && $sent < 400) {
    my $r = $fast->call({type => 'chat', targetUserId => 'slow',
                         text => $text}, 10);
    $sent++;
    $delivered = $r->{delivered};
}

ok(!$delivered, "the slow reader is gone after $sent messages of 60 kB");
ok($sent > 1, 'it took more than one message');

# what the slow reader still gets: whole chats, then at most a close 1008
my ($chats, $end) = (0, undef);
while (1) {
    my $m = $slow->next_message(5);
    last unless $m;
    $chats++, next if $m->{type} eq 'text';
    $end = $m;
    last if $m->{type} eq 'eof';
    is($m->{code}, 1008, 'a close frame, if any, says 1008');
}
ok($end, 'the slow reader\'s connection ends');
ok($chats < $sent, "it got $chats of the $sent chats");

json_is($fast->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'the sender is unaffected');
--- timeout: 30
--- error_log
send queue over 65536 bytes, closing with 1008
--- no_error_log
[error]
[crit]



=== TEST 8: ws_relay_max_connections: the next client gets the capacity error and 1013
--- http_config
    ws_relay_max_connections 2;
--- config
    location = /ws {
        ws_relay;
    }
--- ws_session
my @in = map { ws_open('/ws') } 1 .. 2;

my $c = ws_connect('/ws');
json_is($c->recv_json, {type => 'error',
                        message => 'Server is at capacity, please try again later'},
        'third client: capacity error instead of welcome');
$c->expect_close(1013, 'third client: close 1013');

json_is($_->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'the connected clients are unaffected') for @in;

$in[0]->close;
my $again = ws_open('/ws');
ok($again, 'a slot freed by a close is usable again');

my $d = ws_connect('/ws');
is($d->recv_json->{type}, 'error', 'full again: capacity error');
--- error_log
at capacity (2 connections)
--- no_error_log
[error]
[crit]



=== TEST 9: a refused client does not hold a slot
--- http_config
    ws_relay_max_connections 1;
--- config
    location = /ws {
        ws_relay;
    }
--- ws_session
my $in = ws_open('/ws');
for my $i (1 .. 5) {
    my $c = ws_connect('/ws');
    is($c->recv_json->{type}, 'error', "refused $i");
    $c->expect_close(1013, "refused $i: 1013");
}
$in->close;
ws_open('/ws');
--- error_log
at capacity (1 connections)
--- no_error_log
[error]
[crit]



=== TEST 10: heartbeat: a client that answers pings stays connected
--- config
    location = /ws {
        ws_relay;
        ws_relay_heartbeat 1s;
    }
--- ws_session
my $c = ws_open('/ws');
$c->expect_silence(3.5, 'no message in 3.5 s (pings answered meanwhile)');
ok(@{ $c->{pings} } >= 2, scalar(@{ $c->{pings} }) . ' pings in 3.5 s');
ok(@{ $c->{pings} } <= 4, 'about one a second');
json_is($c->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'still connected');
--- timeout: 10
--- no_error_log
heartbeat timeout
[error]
[crit]



=== TEST 11: heartbeat: a client that answers nothing is closed after one missed interval
--- config
    location = /ws {
        ws_relay;
        ws_relay_heartbeat 1s;
    }
--- ws_session
my $start = time;
my $c = ws_open('/ws', auto_pong => 0);
my $f = $c->next_frame(2);
is($f && $f->{name}, 'ping', 'a ping within the interval');

my $end;
while (my $m = $c->next_message(3)) {
    $end = $m;
    last if $m->{type} eq 'eof';
}
ok($end, 'then the connection ends');
my $took = time - $start;
ok($took > 1.5 && $took < 3.5, "after two intervals ($took s)");
--- timeout: 10
--- error_log
heartbeat timeout, closing
--- no_error_log
[error]
[crit]



=== TEST 12: heartbeat: any data from the client counts as alive
--- config
    location = /ws {
        ws_relay;
        ws_relay_heartbeat 1s;
    }
--- ws_session
my $c = ws_open('/ws', auto_pong => 0);
for (1 .. 8) {
    sleep 0.4;
    json_is($c->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
            'a JSON ping every 0.4 s, never a pong frame');
}
--- timeout: 10
--- no_error_log
heartbeat timeout
[error]
[crit]
