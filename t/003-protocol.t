# The relay protocol of PROTOCOL.md among the connections of one worker:
# welcome, register, ping, chat, notification, and the error replies.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;

ws_defaults();

log_level('info');
run_tests();

__DATA__

=== TEST 1: the welcome message, exactly
--- raw_request eval
::ws_request('/ws', ::ws_close(1000))
--- response_body eval
::welcome_line() . "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 2: connection ids are unique, processId is this worker's pid
--- ws_session
my %seen;
my @clients = map { ws_open('/ws') } 1 .. 20;
$seen{$_->{id}}++ for @clients;
is(scalar keys %seen, 20, '20 connections, 20 distinct ids');
my ($pid) = nginx_worker_pids();
is($_->{pid}, $pid, 'processId is the worker pid') for @clients[0, 19];
--- no_error_log
[error]
[crit]



=== TEST 3: register: success reply, exactly
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'register', userId => 'u1'}),
             ::ws_close(1000))
--- response_body eval
::welcome_line()
. qq|text: {"status":"success","timestamp":"<now>","type":"register",|
. qq|"userId":"u1"}\n|
. "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 4: register without a userId, or with an empty one: error, connection stays open
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'register'}),
             ::ws_json({type => 'register', userId => ''}),
             ::ws_json({type => 'ping'}),
             ::ws_close(1000))
--- response_body eval
::welcome_line()
. ::error_line("Missing userId in register message")
x 2
. ::pong_line()
. "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 5: ping gets a pong with the server's time
--- ws_session
my $c = ws_open('/ws');
json_is($c->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'pong');
json_is($c->call({type => 'ping', extra => [1, 2]}),
        {type => 'pong', timestamp => NOW}, 'extra fields are ignored');
--- no_error_log
[error]
[crit]



=== TEST 6: chat to a user: the target gets it, the sender gets chat_delivered
--- ws_session
my $a = ws_open('/ws');
my $b = ws_open('/ws');
json_is($a->call({type => 'register', userId => 'alice'}),
        {type => 'register', status => 'success', userId => 'alice',
         timestamp => NOW}, 'alice registered');
json_is($b->call({type => 'register', userId => 'bob'}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW}, 'bob registered');

$a->send_json({type => 'chat', targetUserId => 'bob', text => 'hi bob'});
json_is($a->recv_json, {type => 'chat_delivered', targetUserId => 'bob',
                        delivered => TRUE, timestamp => NOW},
        'alice: delivered');
json_is($b->recv_json, {type => 'chat', text => 'hi bob', sender => 'alice',
                        timestamp => NOW}, 'bob: the chat, from alice');
$b->expect_silence(0.3, 'bob gets nothing else');
$a->expect_silence(0.1, 'alice gets nothing else');
--- no_error_log
[error]
[crit]



=== TEST 7: sender is never taken from the client
--- ws_session
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$a->call({type => 'register', userId => 'alice'});
$b->call({type => 'register', userId => 'bob'});

$a->call({type => 'chat', targetUserId => 'bob', text => 'x',
          sender => 'mallory'});
json_is($b->recv_json, {type => 'chat', text => 'x', sender => 'alice',
                        timestamp => NOW}, 'chat: sender is alice');

$a->call({type => 'notification', targetUserId => 'bob', sender => 'mallory'});
json_is($b->recv_json, {type => 'notification', action => 'general',
                        data => {}, sender => 'alice', timestamp => NOW},
        'notification: sender is alice');
--- no_error_log
[error]
[crit]



=== TEST 8: an unregistered sender is named by its connectionId
--- ws_session
my $anon = ws_open('/ws');
my $b = ws_open('/ws');
$b->call({type => 'register', userId => 'bob'});
json_is($anon->call({type => 'chat', targetUserId => 'bob', text => 'psst'}),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => TRUE,
         timestamp => NOW}, 'delivered');
json_is($b->recv_json, {type => 'chat', text => 'psst', sender => $anon->{id},
                        timestamp => NOW}, 'sender is the connectionId');
--- no_error_log
[error]
[crit]



=== TEST 9: chat without a target is echoed to the sender only
--- ws_session
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$a->call({type => 'register', userId => 'alice'});
$b->call({type => 'register', userId => 'bob'});
json_is($a->call({type => 'chat', text => 'echo?'}),
        {type => 'chat', text => 'echo?', sender => 'alice',
         timestamp => NOW}, 'echo with the userId');
json_is($b->call({type => 'chat', text => "\x{e9}t\x{e9}"}),
        {type => 'chat', text => "\x{e9}t\x{e9}", sender => 'bob',
         timestamp => NOW}, 'non-ASCII text comes back intact');
$a->expect_silence(0.3, 'alice does not see bob\'s echo');
--- no_error_log
[error]
[crit]



=== TEST 10: chat to a user with no connection: delivered false, nobody gets it
--- ws_session
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$b->call({type => 'register', userId => 'bob'});
json_is($a->call({type => 'chat', targetUserId => 'nobody', text => 'x'}),
        {type => 'chat_delivered', targetUserId => 'nobody',
         delivered => FALSE, timestamp => NOW}, 'not delivered');
$b->expect_silence(0.3, 'bob gets nothing');
--- no_error_log
[error]
[crit]



=== TEST 11: a user with three connections gets every message on each
--- ws_session
my @bob = map { ws_open('/ws') } 1 .. 3;
$_->call({type => 'register', userId => 'bob'}) for @bob;
my $a = ws_open('/ws');
$a->call({type => 'register', userId => 'alice'});

json_is($a->call({type => 'chat', targetUserId => 'bob', text => 'all'}),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => TRUE,
         timestamp => NOW}, 'chat delivered');
json_is($_->recv_json, {type => 'chat', text => 'all', sender => 'alice',
                        timestamp => NOW}, 'each bob connection gets it')
    for @bob;

json_is($a->call({type => 'notification', targetUserId => 'bob',
                  action => 'new_message', data => {id => 7, n => [1]}}),
        {type => 'notification_result', targetUserId => 'bob',
         delivered => TRUE, connections => 3, timestamp => NOW},
        'notification reached 3 connections');
json_is($_->recv_json, {type => 'notification', action => 'new_message',
                        data => {id => 7, n => [1]}, sender => 'alice',
                        timestamp => NOW}, 'each bob connection gets it')
    for @bob;
--- no_error_log
[error]
[crit]



=== TEST 12: notification defaults: action "general", data {}
--- ws_session
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$b->call({type => 'register', userId => 'bob'});
json_is($a->call({type => 'notification', targetUserId => 'bob'}),
        {type => 'notification_result', targetUserId => 'bob',
         delivered => TRUE, connections => 1, timestamp => NOW},
        'one connection');
json_is($b->recv_json, {type => 'notification', action => 'general',
                        data => {}, sender => $a->{id}, timestamp => NOW},
        'defaults filled in');
--- no_error_log
[error]
[crit]



=== TEST 13: notification to a user with no connection: delivered false, 0
--- ws_session
my $a = ws_open('/ws');
json_is($a->call({type => 'notification', targetUserId => 'ghost',
                  action => 'x'}),
        {type => 'notification_result', targetUserId => 'ghost',
         delivered => FALSE, connections => 0, timestamp => NOW},
        'nobody reached');
--- no_error_log
[error]
[crit]



=== TEST 14: notification without a target: error, connection stays open
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'notification', action => 'x'}),
             ::ws_json({type => 'ping'}), ::ws_close(1000))
--- response_body eval
::welcome_line()
. ::error_line("Missing targetUserId in notification message")
. ::pong_line()
. "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 15: messages that are not JSON objects: error, connection stays open
--- raw_request eval
::ws_request('/ws', ::ws_text('not json'), ::ws_text('{"type":'),
             ::ws_text('[1,2]'), ::ws_text('"ping"'), ::ws_text('42'),
             ::ws_text('null'), ::ws_text(''),
             ::ws_json({type => 'ping'}), ::ws_close(1000))
--- response_body eval
::welcome_line()
. ::error_line("Invalid message format") x 7
. ::pong_line()
. "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 16: an unknown type: error naming it, connection stays open
--- raw_request eval
::ws_request('/ws', ::ws_json({type => 'subscribe', channel => 'x'}),
             ::ws_json({type => 'ping'}), ::ws_close(1000))
--- response_body eval
::welcome_line()
. ::error_line("Unsupported message type: subscribe")
. ::pong_line()
. "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 17: JSON nested deeper than the parser allows: error, connection stays open
--- raw_request eval
::ws_request('/ws',
             ::ws_text('{"type":"chat","text":"x","d":' . '[' x 5000
                       . ']' x 5000 . '}'),
             ::ws_json({type => 'ping'}), ::ws_close(1000))
--- response_body eval
::welcome_line()
. ::error_line("Invalid message format")
. ::pong_line()
. "close: 1000\n"
--- no_error_log
[error]
[crit]



=== TEST 18: a closed connection leaves no trace in the registry
--- ws_session
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$b->call({type => 'register', userId => 'bob'});
$b->close;
json_is($a->call({type => 'chat', targetUserId => 'bob', text => 'x'}),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => FALSE,
         timestamp => NOW}, 'bob is gone after a clean close');

my $c = ws_open('/ws');
$c->call({type => 'register', userId => 'carol'});
CORE::close($c->{sock});
sleep 0.2;
json_is($a->call({type => 'notification', targetUserId => 'carol'}),
        {type => 'notification_result', targetUserId => 'carol',
         delivered => FALSE, connections => 0, timestamp => NOW},
        'carol is gone after a dropped TCP connection');
--- no_error_log
[error]
[crit]



=== TEST 19: one of a user's connections closing leaves the others registered
--- ws_session
my @bob = map { ws_open('/ws') } 1 .. 2;
$_->call({type => 'register', userId => 'bob'}) for @bob;
my $a = ws_open('/ws');
$bob[0]->close;
json_is($a->call({type => 'notification', targetUserId => 'bob'}),
        {type => 'notification_result', targetUserId => 'bob',
         delivered => TRUE, connections => 1, timestamp => NOW},
        'one connection left');
json_is($bob[1]->recv_json, {type => 'notification', action => 'general',
                             data => {}, sender => $a->{id},
                             timestamp => NOW}, 'and it gets the message');
--- no_error_log
[error]
[crit]



=== TEST 20: many connects and disconnects of one user keep working
--- ws_session
my $a = ws_open('/ws');
for my $i (1 .. 200) {
    my $b = ws_connect('/ws');
    $b->recv_json;
    $b->send_json({type => 'register', userId => "user$i"});
    $b->recv_json;
    $i % 2 ? $b->close : CORE::close($b->{sock});
}
my $last = ws_open('/ws');
$last->call({type => 'register', userId => 'user1'});
json_is($a->call({type => 'notification', targetUserId => 'user1'}),
        {type => 'notification_result', targetUserId => 'user1',
         delivered => TRUE, connections => 1, timestamp => NOW},
        'only the live connection counts');
--- no_error_log
[error]
[crit]



=== TEST 21: messages keep their order per connection
--- ws_session
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$b->call({type => 'register', userId => 'bob'});
$a->send_raw(join '', map { ws_json({type => 'chat', targetUserId => 'bob',
                                     text => "m$_"}) } 1 .. 50);
my @got = map { $b->recv_json->{text} } 1 .. 50;
is("@got", join(' ', map { "m$_" } 1 .. 50), '50 chats in order');
my @acks = grep { $a->recv_json->{delivered} } 1 .. 50;
is(scalar @acks, 50, '50 delivered acks');
--- no_error_log
[error]
[crit]



=== TEST 22: user ids longer than 256 bytes are refused, 256 are fine
--- ws_session
my $a = ws_open('/ws');
my $long = 'u' x 257;
json_is($a->call({type => 'register', userId => $long}),
        {type => 'error', message => 'userId is too long'}, 'register');
json_is($a->call({type => 'chat', targetUserId => $long, text => 'x'}),
        {type => 'error', message => 'targetUserId is too long'}, 'chat');
json_is($a->call({type => 'notification', targetUserId => $long}),
        {type => 'error', message => 'targetUserId is too long'},
        'notification');
json_is($a->call({type => 'register', userId => 'u' x 256}),
        {type => 'register', status => 'success', userId => 'u' x 256,
         timestamp => NOW}, '256 bytes register');
--- no_error_log
[error]
[crit]



=== TEST 23: replies and relayed messages byte for byte: key order, escapes
--- ws_session
my $raw = sub {
    my $m = $_[0]->next_message;
    die 'no text message: ' . WsRelay::Test::Client::describe($m) . "\n"
        unless $m && $m->{type} eq 'text';
    (my $t = $m->{data}) =~ s/"timestamp":\d+/"timestamp":N/;
    return $t;
};
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$a->send_text('{"type":"register","userId":"a\"\\\\"}');
is($raw->($a), '{"type":"register","status":"success","userId":"a\"\\\\",'
               . '"timestamp":N}', 'register');
$b->send_text(qq|{"type":"register","userId":"b\\n\xc3\xa9\\u0001/"}|);
$raw->($b);
$a->send_text(' { "type" : "ping" } ');
is($raw->($a), '{"type":"pong","timestamp":N}', 'pong');
$a->send_text(qq|{"text":"h\xc3\xa9 /\x7f",|
              . '"targetUserId":"b\\n\\u00e9\\u0001\\/","type":"chat"}');
is($raw->($b), qq|{"type":"chat","text":"h\xc3\xa9 /\x7f","sender":"a\\"\\\\",|
               . '"timestamp":N}', 'chat with an escaped target');
is($raw->($a), '{"type":"chat_delivered",'
               . qq|"targetUserId":"b\\n\xc3\xa9\\u0001/",|
               . '"delivered":true,"timestamp":N}', 'chat_delivered');
my $c = ws_open('/ws');
$c->call({type => 'register', userId => 'c'});
$a->send_text(qq|{"type":"chat","targetUserId":"c","text":"h\xc3\xa9 /\x7f"}|);
is($raw->($c), qq|{"type":"chat","text":"h\xc3\xa9 /\x7f","sender":"a\\"\\\\",|
               . '"timestamp":N}', 'chat of a plain string, plain target');
is($raw->($a), '{"type":"chat_delivered","targetUserId":"c",'
               . '"delivered":true,"timestamp":N}', 'its chat_delivered');
$a->send_text('{"type":"chat",'
              . '"text":"\\u0041\\n\\"\\t\\u001f\\ud83d\\ude00"}');
is($raw->($a), '{"type":"chat","text":"\\u0041\\n\\"\\t\\u001f\\ud83d\\ude00",'
               . '"sender":"a\"\\\\","timestamp":N}',
   'echo of an escaped string: its text as it came');
$a->send_text('{"type":"chat","targetUserId":"",'
              . '"text":{"z":[1,2.5,null],"a":true}}');
is($raw->($a), '{"type":"chat","text":{"z":[1,2.5,null],"a":true},'
               . '"sender":"a\"\\\\","timestamp":N}', 'echo of an object');
$a->send_text('{"type":"chat","targetUserId":"nobody"}');
is($raw->($a), '{"type":"chat_delivered","targetUserId":"nobody",'
               . '"delivered":false,"timestamp":N}', 'chat to nobody');
$a->send_text('{"type":"notification","targetUserId":"nobody"}');
is($raw->($a), '{"type":"notification_result","targetUserId":"nobody",'
               . '"delivered":false,"connections":0,"timestamp":N}',
   'notification_result');
# duplicate names: the last one counts, as in JSON.parse()
$a->send_text('{"type":"chat","text":"x","text":"y"}');
is($raw->($a), '{"type":"chat","text":"y","sender":"a\"\\\\","timestamp":N}',
   'a duplicate text: the last one');
$a->send_text('{"type":"chat","type":"ping"}');
is($raw->($a), '{"type":"pong","timestamp":N}', 'a duplicate type: the last');
for my $bad ('{"type":"ping"}x',
             qq|{"type":"ping","x":"\x01"}|, '{"type":"ping",}')
{
    $a->send_text($bad);
    is($raw->($a), '{"type":"error","message":"Invalid message format"}',
       "refused: $bad");
}
$a->send_binary(qq|{"type":"chat","text":"\xed\xa0\x80"}|);
is($raw->($a), '{"type":"error","message":"Invalid message format"}',
   'refused: a binary message that is not UTF-8');
--- no_error_log
[error]
[crit]
