# ws_relay_user_id: the identity of a connection set by nginx (a variable
# evaluated at the handshake) instead of by the client's register message.
# The welcome of such a connection also names its userId.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;

ws_defaults(config => <<'_EOC_');
    location = /ws {
        ws_relay;
        ws_relay_user_id $arg_user optional;
    }

    location = /strict {
        ws_relay;
        ws_relay_user_id $arg_user;
    }

    location = /header {
        ws_relay;
        ws_relay_user_id $http_x_user;
    }

    location = /open {
        ws_relay;
    }
_EOC_

log_level('info');
run_tests();

__DATA__

=== TEST 1: a non-empty variable registers the connection at once
--- ws_session
my $alice = ws_open('/ws?user=alice', welcome => {userId => 'alice'});
my $bob = ws_open('/open');
$bob->call({type => 'register', userId => 'bob'});

json_is($bob->call({type => 'chat', targetUserId => 'alice', text => 'hi'}),
        {type => 'chat_delivered', targetUserId => 'alice', delivered => TRUE,
         timestamp => NOW}, 'alice is reachable without registering');
json_is($alice->recv_json, {type => 'chat', text => 'hi', sender => 'bob',
                            timestamp => NOW}, 'alice gets the chat');

$alice->send_json({type => 'chat', targetUserId => 'bob', text => 'hey'});
json_is($alice->recv_json, {type => 'chat_delivered', targetUserId => 'bob',
                            delivered => TRUE, timestamp => NOW},
        'alice can send');
json_is($bob->recv_json, {type => 'chat', text => 'hey', sender => 'alice',
                          timestamp => NOW}, 'the sender is nginx\'s user id');
--- no_error_log
[error]
[crit]



=== TEST 2: register naming another user is refused; the identity stays
--- ws_session
my $alice = ws_open('/ws?user=alice', welcome => {userId => 'alice'});
my $bob = ws_open('/open');
$bob->call({type => 'register', userId => 'bob'});

json_is($alice->call({type => 'register', userId => 'mallory'}),
        {type => 'error', message => STRING}, 'register as mallory: error');

json_is($bob->call({type => 'chat', targetUserId => 'mallory', text => 'x'}),
        {type => 'chat_delivered', targetUserId => 'mallory',
         delivered => FALSE, timestamp => NOW}, 'mallory is nobody');
json_is($bob->call({type => 'notification', targetUserId => 'alice'}),
        {type => 'notification_result', targetUserId => 'alice',
         delivered => TRUE, connections => 1, timestamp => NOW},
        'the connection is still alice');
json_is($alice->recv_json, {type => 'notification', action => 'general',
                            data => {}, sender => 'bob', timestamp => NOW},
        'alice gets it');
json_is($alice->call({type => 'chat', text => 'me?'}),
        {type => 'chat', text => 'me?', sender => 'alice', timestamp => NOW},
        'and still sends as alice');
--- no_error_log
[error]
[crit]



=== TEST 3: register naming the same user succeeds
--- ws_session
my $alice = ws_open('/ws?user=alice', welcome => {userId => 'alice'});
json_is($alice->call({type => 'register', userId => 'alice'}),
        {type => 'register', status => 'success', userId => 'alice',
         timestamp => NOW}, 'register as alice: success');
--- no_error_log
[error]
[crit]



=== TEST 4: "optional": an empty variable leaves the connection anonymous; register works
--- ws_session
my $anon = ws_open('/ws');
json_is($anon->call({type => 'chat', text => 'who?'}),
        {type => 'chat', text => 'who?', sender => $anon->{id},
         timestamp => NOW}, 'sender is the connectionId');
json_is($anon->call({type => 'register', userId => 'carol'}),
        {type => 'register', status => 'success', userId => 'carol',
         timestamp => NOW}, 'register as carol');

my $other = ws_open('/open');
json_is($other->call({type => 'notification', targetUserId => 'carol'}),
        {type => 'notification_result', targetUserId => 'carol',
         delivered => TRUE, connections => 1, timestamp => NOW},
        'carol is reachable');
--- no_error_log
[error]
[crit]



=== TEST 5: several connections with the same nginx identity all get the messages
--- ws_session
my @alice = map { ws_open('/ws?user=alice', welcome => {userId => 'alice'}) } 1 .. 3;
my $bob = ws_open('/open');
json_is($bob->call({type => 'notification', targetUserId => 'alice',
                    action => 'ring', data => {n => 1}}),
        {type => 'notification_result', targetUserId => 'alice',
         delivered => TRUE, connections => 3, timestamp => NOW},
        'three connections');
json_is($_->recv_json, {type => 'notification', action => 'ring',
                        data => {n => 1}, sender => $bob->{id},
                        timestamp => NOW}, 'each gets it')
    for @alice;
$alice[0]->close;
json_is($bob->call({type => 'notification', targetUserId => 'alice'}),
        {type => 'notification_result', targetUserId => 'alice',
         delivered => TRUE, connections => 2, timestamp => NOW},
        'two after one closed');
--- no_error_log
[error]
[crit]



=== TEST 6: any variable works: a cookie through a map
--- http_config
    map $cookie_session $ws_user {
        default      "";
        "s3cr3t-1"   dave;
    }
--- config
    location = /ws {
        ws_relay;
        ws_relay_user_id $ws_user optional;
    }
--- ws_session
my $dave = ws_open('/ws', headers => [Cookie => 'session=s3cr3t-1'],
                   welcome => {userId => 'dave'});
my $anon = ws_open('/ws', headers => [Cookie => 'session=wrong']);
json_is($anon->call({type => 'chat', targetUserId => 'dave', text => 'yo'}),
        {type => 'chat_delivered', targetUserId => 'dave', delivered => TRUE,
         timestamp => NOW}, 'dave is registered from the cookie');
json_is($dave->recv_json, {type => 'chat', text => 'yo', sender => $anon->{id},
                           timestamp => NOW}, 'dave gets it');
json_is($dave->call({type => 'register', userId => 'eve'}),
        {type => 'error', message => STRING}, 'dave cannot become eve');
--- no_error_log
[error]
[crit]



=== TEST 7: without "optional", no identity is no connection: 403
--- raw_request eval
::ws_handshake('/strict', Connection => 'Upgrade, close')
--- error_code: 403
--- error_log
ws relay: handshake refused: no identity from ws_relay_user_id
--- no_error_log
[error]
[crit]
[alert]



=== TEST 8: an identity longer than a user id may be is refused, even with "optional"; 256 bytes are fine
--- ws_session
my $ok = ws_open('/ws?user=' . ('a' x 256), welcome => {userId => 'a' x 256});
ok($ok, '256 bytes: welcomed with it');
my ($res) = eval { ws_open('/ws?user=' . ('a' x 257)) };
like($@, qr/status 403/, '257 bytes: 403, not an anonymous connection');
--- error_log
ws relay: handshake refused: identity from ws_relay_user_id longer than 256 bytes
--- no_error_log
[error]
[crit]
[alert]



=== TEST 9: an identity that is not UTF-8 is refused
--- raw_request eval
::ws_handshake('/header', 'X-User' => "bad\xff\xfeid",
               Connection => 'Upgrade, close')
--- error_code: 403
--- error_log
ws relay: handshake refused: identity from ws_relay_user_id that is not UTF-8
--- no_error_log
[error]
[crit]
[alert]



=== TEST 10: a UTF-8 identity from a header is welcomed with it and is the sender
--- ws_session
my $u = ws_open('/header', headers => ['X-User' => "\xc3\xa9l\xc3\xa8ve"],
                welcome => {userId => "\x{e9}l\x{e8}ve"});
json_is($u->call({type => 'chat', text => 'me'}),
        {type => 'chat', text => 'me', sender => "\x{e9}l\x{e8}ve",
         timestamp => NOW}, 'the sender is the identity');
--- no_error_log
[error]
[crit]
[alert]
