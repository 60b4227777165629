# What the old server's clients send, read as JSON.parse() read it: every
# JSON text it accepts is accepted (duplicate names, the last one counts;
# "\u0000"; lone surrogates), values are relayed with the same value and
# their own text (numbers keep their digits), fields are tested for
# JavaScript's falsiness where the old server tested them with "!x", and
# the name of an unknown type is written as String(type) wrote it.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;

ws_defaults(config => <<'_EOC_');
    location = /ws {
        ws_relay;
    }

    location = /fixed {
        ws_relay;
        ws_relay_user_id $arg_user;
    }
_EOC_

# the next text message, its timestamp made "N"
sub raw_text {
    my ($c) = @_;

    my $m = $c->next_message(5);
    die 'no text message: ' . WsRelay::Test::Client::describe($m) . "\n"
        unless $m && $m->{type} eq 'text';
    (my $t = $m->{data}) =~ s/"timestamp":\d+/"timestamp":N/;
    return $t;
}

log_level('info');
run_tests();

__DATA__

=== TEST 1: numbers keep their text; white space goes; strings keep their escapes
--- ws_session
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$a->call({type => 'register', userId => 'a'});
$b->call({type => 'register', userId => 'b'});

$a->send_text('{"type":"chat","targetUserId":"b","text":'
              . '[0.1, 1e2, -0, 1E+2, 12345678901234567890, 2.50]}');
is(main::raw_text($b),
   '{"type":"chat","text":[0.1,1e2,-0,1E+2,12345678901234567890,2.50],'
   . '"sender":"a","timestamp":N}', 'a chat: numbers as they were written');
main::raw_text($a);

$a->send_text('{ "type" : "notification" , "targetUserId" : "b" ,'
              . ' "action" : { "k" : [ 1 , "a b" ] } ,'
              . ' "data" : { "x" : 0.30000000000000004 , "y" : "\u00e9 " } }');
is(main::raw_text($b),
   '{"type":"notification","action":{"k":[1,"a b"]},'
   . '"data":{"x":0.30000000000000004,"y":"\u00e9 "},"sender":"a",'
   . '"timestamp":N}', 'a notification: compact, strings untouched');
--- no_error_log
[error]
[crit]



=== TEST 2: "\u0000" and lone surrogates are JSON.parse()'s strings: accepted and relayed
--- ws_session
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$b->call({type => 'register', userId => 'b'});

$a->send_text('{"type":"chat","targetUserId":"b","text":"nul\u0000 \ud800 '
              . '\udfff \ud83d\ude00"}');
is(main::raw_text($b), '{"type":"chat","text":"nul\u0000 \ud800 \udfff '
                       . '\ud83d\ude00","sender":"' . $a->{id}
                       . '","timestamp":N}', 'relayed as it came');
is(main::raw_text($a), '{"type":"chat_delivered","targetUserId":"b",'
                       . '"delivered":true,"timestamp":N}', 'delivered');

# a user id with a lone surrogate and a NUL: written back escaped
$b->send_text('{"type":"register","userId":"x\ud800y\u0000"}');
is(main::raw_text($b), '{"type":"register","status":"success",'
                       . '"userId":"x\ud800y\u0000","timestamp":N}',
   'register: the id written back with its escapes');
$a->send_text('{"type":"chat","targetUserId":"x\uD800y\u0000","text":1}');
is(main::raw_text($b), '{"type":"chat","text":1,"sender":"' . $a->{id}
                       . '","timestamp":N}', 'reached by the same id');
is(main::raw_text($a), '{"type":"chat_delivered",'
                       . '"targetUserId":"x\ud800y\u0000",'
                       . '"delivered":true,"timestamp":N}',
   'chat_delivered names it escaped');
$a->send_text('{"type":"chat","text":"x"}');
$b->send_text('{"type":"chat","text":"x"}');
is(main::raw_text($b), '{"type":"chat","text":"x","sender":"x\ud800y\u0000",'
                       . '"timestamp":N}', 'the sender, escaped');
--- no_error_log
[error]
[crit]



=== TEST 3: duplicate names: the last one counts
--- ws_session
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$b->call({type => 'register', userId => 'b'});
$a->send_text('{"type":"chat","targetUserId":"nobody","targetUserId":"b",'
              . '"text":"first","text":"second"}');
is(main::raw_text($b), '{"type":"chat","text":"second","sender":"'
                       . $a->{id} . '","timestamp":N}', 'to b, the last text');
main::raw_text($a);
# names and types written with escapes, however long their text
$a->send_text('{"\u0074\u0079\u0070\u0065":"\u0063\u0068\u0061\u0074",'
              . '"\u0074\u0061\u0072\u0067\u0065\u0074\u0055\u0073\u0065'
              . '\u0072\u0049\u0064":"b","text":"escaped"}');
is(main::raw_text($b), '{"type":"chat","text":"escaped","sender":"'
                       . $a->{id} . '","timestamp":N}',
   'escaped names: a chat to b');
main::raw_text($a);
$a->send_text('{"type":"\u006e\u006f\u0074\u0069\u0066\u0069\u0063\u0061'
              . '\u0074\u0069\u006f\u006e","targetUserId":"b"}');
like(main::raw_text($a), qr/^\{"type":"notification_result"/,
     'an escaped type of 72 bytes of text: a notification');
main::raw_text($b);
$a->send_text('{"type":"register","userId":"a","userId":""}');
is(main::raw_text($a), '{"type":"error","message":'
                       . '"Missing userId in register message"}',
   'the last userId, empty');
--- no_error_log
[error]
[crit]



=== TEST 4: falsy fields, as "!x" tested them
--- ws_session
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$b->call({type => 'register', userId => 'b'});

for my $v ('0', 'false', 'null', '""', '-0.0', '0e5') {
    $a->send_text(qq|{"type":"register","userId":$v}|);
    is(main::raw_text($a), '{"type":"error","message":'
                           . '"Missing userId in register message"}',
       "register with userId $v: missing");

    $a->send_text(qq|{"type":"notification","targetUserId":$v}|);
    is(main::raw_text($a), '{"type":"error","message":'
                           . '"Missing targetUserId in notification message"}',
       "notification to $v: missing");

    $a->send_text(qq|{"type":"chat","targetUserId":$v,"text":"echo"}|);
    is(main::raw_text($a), '{"type":"chat","text":"echo","sender":"'
                           . $a->{id} . '","timestamp":N}',
       "chat to $v: echoed");

    $a->send_text(qq|{"type":"notification","targetUserId":"b",|
                  . qq|"action":$v,"data":$v}|);
    is(main::raw_text($b), '{"type":"notification","action":"general",'
                           . '"data":{},"sender":"' . $a->{id}
                           . '","timestamp":N}',
       "action and data $v: the defaults");
    main::raw_text($a);
}

# truthy values that are not user ids
for my $v ('1', 'true', '[]', '{}', '"0"') {
    $a->send_text(qq|{"type":"notification","targetUserId":"b","data":$v}|);
    like(main::raw_text($b), qr/"data":\Q$v\E,/, "data $v is kept");
    main::raw_text($a);
}
--- no_error_log
[error]
[crit]



=== TEST 5: the type of an unsupported message, as String(type) writes it
--- ws_session
my $a = ws_open('/ws');
my @cases = (
    ['"subscribe"', 'subscribe'], ['""', ''], ['5', '5'], ['-0', '0'],
    ['1.50', '1.5'], ['1e21', '1e+21'], ['1e2', '100'], ['1e-7', '1e-7'],
    ['0.000001', '0.000001'], ['123456789012345678901', '123456789012345680000'],
    ['1e400', 'Infinity'], ['true', 'true'], ['null', 'null'],
    ['{"a":1}', '[object Object]'], ['[1,[2,3],null,"x",{}]',
                                     '1,2,3,,x,[object Object]'],
    ['[]', ''], ['"a\"\\\\b"', 'a\"\\\\b'],
);
for my $case (@cases) {
    my ($type, $shown) = @$case;
    $a->send_text(qq|{"type":$type}|);
    is(main::raw_text($a), '{"type":"error","message":"Unsupported message '
                           . qq|type: $shown"}|, "type $type");
}
$a->send_text('{"text":"no type"}');
is(main::raw_text($a), '{"type":"error","message":"Unsupported message type: '
                       . 'undefined"}', 'no type: undefined');
--- no_error_log
[error]
[crit]



=== TEST 6: nesting: 1000 levels are JSON, deeper is refused; not JSON is refused
--- ws_session
my $a = ws_open('/ws');
$a->send_text('{"type":"chat","text":' . '[' x 1000 . ']' x 1000 . '}');
is(main::raw_text($a), '{"type":"chat","text":' . '[' x 1000 . ']' x 1000
                       . ',"sender":"' . $a->{id} . '","timestamp":N}',
   '1000 levels: echoed');
for my $bad ('{"type":"chat","text":' . '[' x 1001 . ']' x 1001 . '}',
             '{"type":"chat","text":' . '[' x 100000,
             '{"type":"ping",}', '{"type":"ping"} x', '{"type":01}',
             '{"type":"ping","x":1.}', '{"type":"\x01"}', '{"type":"\q"}',
             '{"type":"\u12"}', "{\"type\":\"ping\"}\x0b", '{type:"ping"}',
             "{'type':'ping'}", '{"type":"ping"', '{"a":[1,2,]}',
             '{"a":NaN}', '{"a":+1}', '{"a":.5}', '{"a":tru}')
{
    $a->send_text($bad);
    is(main::raw_text($a), '{"type":"error","message":"Invalid message '
                           . 'format"}', 'refused: ' . substr($bad, 0, 40));
}
$a->send_text('{"type":"ping"}');
is(main::raw_text($a), '{"type":"pong","timestamp":N}', 'still open');
--- error_log
ws relay: invalid message from client: nested too deeply
--- no_error_log
[error]
[crit]



=== TEST 7: a message within ws_relay_max_message_size reaches its user, even when the relayed frame is bigger than ws_relay_send_buffer
--- ws_session
my $sender = 's' x 200;
my $a = ws_open('/ws');
my $b = ws_open('/ws');
$a->call({type => 'register', userId => $sender});
$b->call({type => 'register', userId => 'b'});

my $head = '{"type":"chat","targetUserId":"b","text":"';
my $text = 'x' x (1024 * 1024 - length($head) - 2);
$a->send_text($head . $text . '"}');
my $m = $b->next_message(10);
is($m && $m->{type}, 'text', 'the recipient gets a text message');
ok($m && length($m->{data}) > 1024 * 1024,
   'bigger than the send buffer (' . ($m ? length $m->{data} : 0) . ')');
like($m ? substr($m->{data}, -300) : "", qr/x","sender":"s{200}","timestamp":\d+\}$/,
     'all of it');
is(main::raw_text($a), '{"type":"chat_delivered","targetUserId":"b",'
                       . '"delivered":true,"timestamp":N}', 'delivered');
$b->send_text('{"type":"ping"}');
is(main::raw_text($b), '{"type":"pong","timestamp":N}',
   'the recipient is still connected');
--- no_error_log
[error]
[crit]
send queue over



=== TEST 8: what a client tries to register as is escaped in the log
--- ws_session
my $c = ws_open('/fixed?user=alice', welcome => {userId => 'alice'});
$c->send_text('{"type":"register","userId":"mallory\n2026/01/01 00:00:00 '
              . '[alert] 1#1: forged\r"}');
is(main::raw_text($c), '{"type":"error","message":"Cannot register as '
                       . 'another user: the user id is set by the server"}',
   'refused');
--- error_log eval
qr/tried to register as "mallory%0A2026%2F01%2F01%2000%3A00%3A00%20%5Balert%5D%201%231%3A%20forged%0D"/
--- no_error_log
[alert]
[error]
[crit]
