# ws_relay_history: every message to a user is kept in Redis and carries
# an id; the sender's reply says whether it was queued for a user with no
# connection; a client that comes back with "since" (register or resume)
# gets what it missed, in order, then live messages, none twice;
# "recovered" says whether the history still reached back; a "since" that
# is no message id is refused; claimed user ids are resumed only with
# resume_unverified=on; without history nothing changes; without Redis
# local delivery goes on, without ids.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;
use WsRelay::Api;
use WsRelay::History;

# The server of every block: history on /ws (user ids claimed with
# register are resumed there), on /strict (they are not) and on /verified
# (identity from nginx: X-User-Id); none on /off; the API under /api/
# with history, and one send route without it. $history: the parameters
# of /ws and of the API.
sub config_for {
    my ($history) = @_;

    $history //= 'size=100 ttl=10m';

    return <<"_EOC_" . api_routes_config() . <<'_EOC_';
    location = /ws {
        ws_relay;
        ws_relay_history $history resume_unverified=on;
    }

    location = /strict {
        ws_relay;
        ws_relay_history size=100 ttl=10m;
    }

    location = /verified {
        ws_relay;
        ws_relay_history size=100 ttl=10m;
        ws_relay_user_id \$http_x_user_id;
    }

    location = /off {
        ws_relay;
    }

    location /api/ {
        ws_relay_history $history;
_EOC_
    }

    location = /api-off/send-to-user {
        ws_relay_api send;
    }
_EOC_
}

# $from sends a chat to $to; returns the reply
sub chat {
    my ($from, $to, $text) = @_;

    $from->send_json({type => 'chat', targetUserId => $to, text => $text});
    return recv_msg($from);
}

# the reply to a chat with history on
sub chat_reply {
    my ($to, $delivered) = @_;

    return {type => 'chat_delivered', targetUserId => $to,
            delivered => $delivered ? TRUE : FALSE,
            queued => $delivered ? FALSE : TRUE, id => MSG_ID,
            timestamp => NOW};
}

redis_start();
history_defaults(config => config_for());

master_on();
workers(2);
log_level('info');
run_tests();

__DATA__

=== TEST 1: each delivered copy ends with the message id; the ids increase, are the same on every copy on both workers, and the senders' replies name them
--- ws_session
my ($A, $B) = ws_open_per_worker('/ws', 2);
my ($alice, $bob1) = @$A;
my ($carol, $bob2) = @$B;
wait_presence({});

json_is($alice->call({type => 'register', userId => 'alice'}),
        {type => 'register', status => 'success', userId => 'alice',
         timestamp => NOW}, 'register without since: the reply of old');
$carol->call({type => 'register', userId => 'carol'});
$_->call({type => 'register', userId => 'bob'}) for $bob1, $bob2;

# chats and notifications from either worker, each awaited on both
# copies before the next
my @ids;
for my $i (1 .. 6) {
    my ($from, $name) = $i % 2 ? ($alice, 'alice') : ($carol, 'carol');
    my ($r, $copy);

    if ($i % 3) {
        $r = main::chat($from, 'bob', "m$i");
        json_is($r, main::chat_reply('bob', 1),
                "chat $i from $name: delivered, not queued, an id");
        $copy = {type => 'chat', text => "m$i", sender => $name,
                 timestamp => NOW, id => $r->{id}};

    } else {
        $from->send_json({type => 'notification', targetUserId => 'bob',
                          action => "a$i", data => {i => $i + 0}});
        $r = recv_msg($from);
        json_is($r, {type => 'notification_result', targetUserId => 'bob',
                     delivered => TRUE, connections => 2, queued => FALSE,
                     id => MSG_ID, timestamp => NOW},
                "notification $i from $name: 2 connections, not queued,"
                . ' an id');
        $copy = {type => 'notification', action => "a$i",
                 data => {i => $i + 0}, sender => $name, timestamp => NOW,
                 id => $r->{id}};
    }

    push @ids, $r->{id};
    my @got = map { recv_msg($_) } $bob1, $bob2;
    json_is($_, $copy, "message $i: bob's copy carries the reply's id")
        for @got;
    is_deeply($got[0], $got[1], "message $i: both copies are the same");
}

my $r = api_post('/api/send-to-user', {userId => 'bob', message => {i => 7}});
json_is($r, {success => TRUE, delivered => 2, queued => FALSE, id => MSG_ID,
             userId => 'bob'}, 'POST /api/send-to-user: 2, not queued, an id');
push @ids, $r->{id};
json_is(recv_msg($_), {type => 'notification', message => {i => 7},
                       sender => 'system', timestamp => NOW, id => $r->{id}},
        'the API message: bob\'s copy carries the id') for $bob1, $bob2;

is(increasing(@ids), '', '7 ids, each greater than the one before');

my $stream = redis_cmd('XRANGE', history_key('bob'), '-', '+');
is(join(' ', map { $_->[0] } @$stream), "@ids",
   'they are the ids of bob\'s stream in Redis');
my $ttl = redis_cmd('PTTL', history_key('bob'));
ok($ttl > 0 && $ttl <= 600_000, "the stream expires within ttl ($ttl ms)");
my $meta = redis_cmd('PTTL', "$ENV{TEST_NGINX_RELAY_PREFIX}m:{bob}");
ok($meta > 0 && $meta <= 86_400_000,
   "its meta hash expires within meta_ttl, 1 day by default ($meta ms)");
is((redis_numsub("$ENV{TEST_NGINX_RELAY_PREFIX}u:{bob}"))[0], 2,
   'both workers hear bob\'s channel, named with the same hash tag');

$_->expect_silence(0.3, 'nothing more for bob') for $bob1, $bob2;
--- no_error_log
[error]
[crit]
[alert]



=== TEST 2: a user with no connection: the replies say queued, with the id; register with since gets what followed it, in order, then live messages
--- ws_session
my ($A, $B) = ws_open_per_worker('/ws', 1);
my ($alice, $carol) = ($A->[0], $B->[0]);
wait_presence({});
$alice->call({type => 'register', userId => 'alice'});
$carol->call({type => 'register', userId => 'carol'});

my $r1 = main::chat($alice, 'bob', 'q1');
json_is($r1, main::chat_reply('bob', 0), 'chat: not delivered, queued, an id');

$carol->send_json({type => 'notification', targetUserId => 'bob',
                   action => 'q2', data => {n => 2}});
my $r2 = recv_msg($carol);
json_is($r2, {type => 'notification_result', targetUserId => 'bob',
              delivered => FALSE, connections => 0, queued => TRUE,
              id => MSG_ID, timestamp => NOW},
        'notification: 0 connections, queued, an id');

my $r3 = api_post('/api/send-to-user', {userId => 'bob', message => {n => 3}});
json_is($r3, {success => FALSE, delivered => 0, queued => TRUE, id => MSG_ID,
              userId => 'bob'}, 'POST: success false, queued, an id');
is(increasing(map { $_->{id} } $r1, $r2, $r3), '', 'the three ids increase');

my $bob = ws_open('/ws');
json_is($bob->call({type => 'register', userId => 'bob', since => '0'}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => TRUE},
        'register with since "0": recovered');
json_is(recv_msg($bob), {type => 'chat', text => 'q1', sender => 'alice',
                         timestamp => NOW, id => $r1->{id}},
        'then the chat');
json_is(recv_msg($bob), {type => 'notification', action => 'q2',
                         data => {n => 2}, sender => 'carol',
                         timestamp => NOW, id => $r2->{id}},
        'the notification');
json_is(recv_msg($bob), {type => 'notification', message => {n => 3},
                         sender => 'system', timestamp => NOW,
                         id => $r3->{id}}, 'the API message');

my $r4 = main::chat($alice, 'bob', 'live');
json_is($r4, main::chat_reply('bob', 1), 'bob is back: delivered');
is(increasing($r3->{id}, $r4->{id}), '', 'its id follows');
json_is(recv_msg($bob), {type => 'chat', text => 'live', sender => 'alice',
                         timestamp => NOW, id => $r4->{id}},
        'bob gets the live one after the replay');
$bob->expect_silence(0.5, 'and nothing twice');

# a since before the first id Redis has for bob cannot be told from one
# whose history Redis lost: not recovered, but what is kept is replayed
my @since = ([$r2->{id}, 'the notification\'s id', TRUE, $r3, $r4],
             ['1', '"1" (milliseconds only)', FALSE, $r1, $r2, $r3, $r4],
             [$r4->{id}, 'the last id', TRUE]);

for my $case (@since) {
    my ($since, $what, $recovered, @after) = @$case;
    my $c = ws_open('/ws');
    json_is($c->call({type => 'register', userId => 'bob', since => $since}),
            {type => 'register', status => 'success', userId => 'bob',
             timestamp => NOW, recovered => $recovered},
            "another connection, since $what: recovered " . ($recovered ? 'true' : 'false'));
    is(join(' ', map { recv_msg($c)->{id} } @after),
       join(' ', map { $_->{id} } @after),
       "since $what: the " . @after . ' messages after it, in order');
    $c->expect_silence(0.5, "since $what: nothing more");
}
--- no_error_log
[error]
[crit]
[alert]



=== TEST 3: a connection that went away resumes: what it missed, in order, the same as the copies of a connection that stayed, then live messages, none twice
--- ws_session
my ($A, $B) = ws_open_per_worker('/ws', 1);
my ($alice, $stay) = ($A->[0], $B->[0]);
wait_presence({});
$alice->call({type => 'register', userId => 'alice'});
$stay->call({type => 'register', userId => 'bob'});
my $away = ws_open('/ws');
$away->call({type => 'register', userId => 'bob'});

my $r = main::chat($alice, 'bob', 'm1');
json_is($r, main::chat_reply('bob', 1), 'm1: delivered');
my $seen = recv_msg($away)->{id};
is($seen, $r->{id}, 'the connection that goes away got m1, with its id');
recv_msg($stay);

$away->close;
my @kept;
for my $i (2 .. 6) {
    json_is(main::chat($alice, 'bob', "m$i"), main::chat_reply('bob', 1),
            "m$i: delivered to the connection that stayed, not queued");
    push @kept, recv_msg($stay);
}

my $back = ws_open('/ws');
json_is($back->call({type => 'register', userId => 'bob', since => $seen}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => TRUE},
        'register since m1: recovered');
my @replay = map { recv_msg($back) } 1 .. 5;
is_deeply(\@replay, \@kept, 'then m2 to m6, as the connection that stayed'
                            . ' got them') or diag(explain \@replay);

$r = main::chat($alice, 'bob', 'm7');
json_is(recv_msg($_), {type => 'chat', text => 'm7', sender => 'alice',
                       timestamp => NOW, id => $r->{id}},
        'then a live one') for $back, $stay;
$back->expect_silence(0.5, 'nothing twice');

# dropped without a close frame; back with a plain register, then resume
$seen = $r->{id};
CORE::close($back->{sock});
@kept = ();
for my $i (8, 9) {
    main::chat($alice, 'bob', "m$i");
    push @kept, recv_msg($stay);
}

my $again = ws_open('/ws');
json_is($again->call({type => 'register', userId => 'bob'}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW}, 'a register without since: the reply of old');
$again->expect_silence(0.3, 'and nothing replayed');
json_is($again->call({type => 'resume', since => $seen}),
        {type => 'resume', status => 'success', recovered => TRUE,
         timestamp => NOW}, 'resume since m7: recovered');
is_deeply([map { recv_msg($again) } 1, 2], \@kept, 'then m8 and m9');
$again->expect_silence(0.5, 'nothing more');
$stay->expect_silence(0.1, 'nothing more for the connection that stayed');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 4: resuming while messages pour in, on either worker: every message after since once, in order, with the ids of the sender's replies
--- config eval
main::config_for('size=1000 ttl=10m')
--- ws_session
my ($A, $B) = ws_open_per_worker('/ws', 2);
my ($alice, $onA) = @$A;
my ($bob, $onB) = @$B;
wait_presence({});
$alice->call({type => 'register', userId => 'alice'});
$bob->call({type => 'register', userId => 'bob'});

main::chat($alice, 'bob', 'm0');
my $seen = recv_msg($bob)->{id};
$bob->close;

my $n = 300;
my $last = 0;

for my $round ([$onB, 'on the other worker'], [$onA, 'on alice\'s worker']) {
    my ($c, $where) = @$round;
    my @nums = $last + 1 .. $last + $n;
    $last += $n;

    # the burst is on its way while the register is
    $alice->send_raw(join '', map { ws_json({type => 'chat',
                                             targetUserId => 'bob',
                                             text => "m$_"}) } @nums);
    $c->send_json({type => 'register', userId => 'bob', since => $seen});

    json_is(recv_msg($c, 10),
            {type => 'register', status => 'success', userId => 'bob',
             timestamp => NOW, recovered => TRUE},
            "$where: the register reply comes first, recovered");

    my @got = main::recv_until($c, sub { ($_[0]{text} // '') eq "m$last" },
                               30);
    is(join(' ', map { $_->{text} // $_->{type} } @got),
       join(' ', map { "m$_" } @nums),
       "$where: the $n messages, each once, in order");

    my @replies = map { recv_msg($alice, 10) } @nums;
    my @bad = grep { my $r = $replies[$_];
                     !($r->{type} eq 'chat_delivered' && defined $r->{id}
                       && JSON::PP::is_bool($r->{queued})
                       && ($r->{queued} ? 1 : 0) == ($r->{delivered} ? 0 : 1))
                   } 0 .. $#replies;
    is("@bad", '', "$where: each reply has an id, and is queued when not"
                   . ' delivered');
    is(join(' ', map { $_->{id} // '-' } @got),
       join(' ', map { $_->{id} // '-' } @replies),
       "$where: each message has the id of its reply");
    is(increasing(map { $_->{id} } @got), '', "$where: the ids increase");

    $seen = $got[-1]{id} if @got;
    $c->close;
}
--- no_error_log
[error]
[crit]
[alert]



=== TEST 5: past the history's size: recovered false, the messages kept are replayed
--- config eval
main::config_for('size=3 ttl=10m')
--- ws_session
my ($A, $B) = ws_open_per_worker('/ws', 1);
my ($alice, $bob) = ($A->[0], $B->[0]);
wait_presence({});
$alice->call({type => 'register', userId => 'alice'});
$bob->call({type => 'register', userId => 'bob'});

main::chat($alice, 'bob', 'm1');
my $seen = recv_msg($bob)->{id};
$bob->close;

my @r;
for my $i (2 .. 6) {
    push @r, main::chat($alice, 'bob', "m$i");
    json_is($r[-1], main::chat_reply('bob', 0), "m$i: queued");
}
is(redis_cmd('XLEN', history_key('bob')), 3, 'the stream keeps the last 3');

my $back = ws_open('/ws');
json_is($back->call({type => 'register', userId => 'bob', since => $seen}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => FALSE},
        'since m1, with m2 and m3 gone: recovered false');
is(join(' ', map { my $m = recv_msg($back); "$m->{text}=$m->{id}" } 1 .. 3),
   join(' ', map { "m$_=$r[$_ - 2]{id}" } 4 .. 6),
   'then the 3 kept, in order');
$back->expect_silence(0.5, 'nothing more');

my $again = ws_open('/ws');
json_is($again->call({type => 'register', userId => 'bob',
                      since => $r[3]{id}}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => TRUE},
        'since m5, still kept: recovered');
json_is(recv_msg($again), {type => 'chat', text => 'm6', sender => 'alice',
                           timestamp => NOW, id => $r[4]{id}},
        'then m6 alone');
$again->expect_silence(0.5, 'nothing more');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 6: past the history's ttl: recovered false, nothing replayed
--- config eval
main::config_for('size=100 ttl=1s')
--- ws_session
my ($A, $B) = ws_open_per_worker('/ws', 1);
my ($alice, $bob) = ($A->[0], $B->[0]);
wait_presence({});
$alice->call({type => 'register', userId => 'alice'});
$bob->call({type => 'register', userId => 'bob'});

main::chat($alice, 'bob', 'm1');
my $seen = recv_msg($bob)->{id};
$bob->close;

my $r2 = main::chat($alice, 'bob', 'm2');
json_is($r2, main::chat_reply('bob', 0), 'm2: queued');
sleep 2.5;

my $back = ws_open('/ws');
json_is($back->call({type => 'register', userId => 'bob', since => $seen}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => FALSE},
        'since m1, 2.5 s later with ttl=1s: recovered false');
$back->expect_silence(0.5, 'm2 expired: nothing replayed');

my $r3 = main::chat($alice, 'bob', 'm3');
json_is($r3, main::chat_reply('bob', 1), 'm3: delivered');
is(increasing($r2->{id}, $r3->{id}), '', 'its id follows m2\'s');
json_is(recv_msg($back), {type => 'chat', text => 'm3', sender => 'alice',
                          timestamp => NOW, id => $r3->{id}},
        'the live one arrives');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 7: a since that is no message id is refused, and nothing else happens
--- ws_session
my $alice = ws_open('/ws');
$alice->call({type => 'register', userId => 'alice'});
my $bob = ws_open('/ws');
$bob->call({type => 'register', userId => 'bob'});
main::chat($alice, 'bob', "m$_") for 1, 2;
recv_msg($bob) for 1, 2;

my @bad = (
    [1733600000000, 'a number'],
    [{id => '1-0'}, 'an object'],
    [['1-0'], 'an array'],
    [TRUE, 'true'],
    ['', 'an empty string'],
    ['abc', 'letters'],
    ['1-2-3', 'three parts'],
    ['-1', 'a negative number'],
    ['1-', 'no sequence'],
    ['-0', 'no milliseconds'],
    ['1-0 ', 'a trailing space'],
    [' 1-0', 'a leading space'],
    ['+1-0', 'a plus sign'],
    ['0x10', 'hexadecimal'],
    ['1e3', 'an exponent'],
    ['1.5-0', 'a decimal point'],
    ["1-0\x{0}", 'a NUL'],
    ["\x{661}-0", 'an Arabic-Indic digit'],
    ['9' x 40, '40 digits'],
    ['18446744073709551616-0', 'milliseconds past 64 bits'],
    ['1-18446744073709551616', 'a sequence past 64 bits'],
    [('1' x 4000) . '-0', '4000 digits'],
);

my $error = {type => 'error', message => 'since must be a message id'};

for my $case (@bad) {
    my ($since, $what) = @$case;

    my $c = ws_open('/ws');
    json_is($c->call({type => 'register', userId => 'bob', since => $since}),
            $error, "register, since $what: refused");
    json_is($c->call({type => 'resume', since => '0'}),
            {type => 'error', message => 'Resume needs a registered user'},
            "since $what: the connection was not registered");
    $c->close;

    json_is($bob->call({type => 'resume', since => $since}), $error,
            "resume, since $what: refused");
    json_is($bob->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
            "since $what: nothing else comes");
}

json_is(main::chat($alice, 'bob', 'still here'), main::chat_reply('bob', 1),
        'bob is still registered, once');
is(recv_msg($bob)->{text}, 'still here', 'and gets messages');
$bob->expect_silence(1, 'nothing was replayed');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 8: resume on a connection without a user is refused; the connection goes on
--- ws_session
for my $path ('/ws', '/strict') {
    my $c = ws_open($path);

    for my $since ('0', '1-0') {
        json_is($c->call({type => 'resume', since => $since}),
                {type => 'error', message => 'Resume needs a registered user'},
                "$path, since \"$since\": refused");
    }

    json_is($c->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
            "$path: the connection goes on");
    json_is($c->call({type => 'register', userId => 'u1'}),
            {type => 'register', status => 'success', userId => 'u1',
             timestamp => NOW}, "$path: and registers");
    $c->expect_silence(0.3, "$path: nothing more");
}
--- no_error_log
[error]
[crit]
[alert]



=== TEST 9: history off: "resume" is an unknown type, register with since answers recovered false, replies and copies stay as they were
--- ws_session
my $alice = ws_open('/ws');
$alice->call({type => 'register', userId => 'alice'});
my $off = ws_open('/off');
wait_presence({});

json_is($off->call({type => 'resume', since => '0'}),
        {type => 'error', message => 'Unsupported message type: resume'},
        'resume: an unknown type');

json_is(main::chat($alice, 'bob', 'stored'), main::chat_reply('bob', 0),
        'a chat to bob from /ws is queued');
json_is($off->call({type => 'register', userId => 'bob', since => '0'}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => FALSE},
        'register with since on /off: registered, recovered false');
$off->expect_silence(0.5, 'nothing replayed');
json_is($off->call({type => 'resume', since => '0'}),
        {type => 'error', message => 'Unsupported message type: resume'},
        'registered, resume is still an unknown type');

my $carol = ws_open('/off');
json_is($carol->call({type => 'register', userId => 'carol'}),
        {type => 'register', status => 'success', userId => 'carol',
         timestamp => NOW}, 'register without since: the reply of old');
json_is(main::chat($carol, 'bob', 'plain'),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => TRUE,
         timestamp => NOW}, 'a chat from /off: the reply of old');
json_is(recv_msg($off), {type => 'chat', text => 'plain', sender => 'carol',
                         timestamp => NOW}, 'its copy has no id');
json_is(main::chat($carol, 'nobody', 'x'),
        {type => 'chat_delivered', targetUserId => 'nobody',
         delivered => FALSE, timestamp => NOW},
        'to a user with no connection: the reply of old, nothing queued');
json_is($carol->call({type => 'notification', targetUserId => 'bob'}),
        {type => 'notification_result', targetUserId => 'bob',
         delivered => TRUE, connections => 1, timestamp => NOW},
        'a notification from /off: the reply of old');
json_is(recv_msg($off), {type => 'notification', action => 'general',
                         data => {}, sender => 'carol', timestamp => NOW},
        'its copy has no id');
json_is(api_post('/api-off/send-to-user',
                 {userId => 'bob', message => 'plain api'}),
        {success => TRUE, delivered => 1, userId => 'bob'},
        'a send route without history: the reply of old');
json_is(recv_msg($off), {type => 'notification', message => 'plain api',
                         sender => 'system', timestamp => NOW},
        'its copy has no id');

my $r = main::chat($alice, 'bob', 'to off');
json_is($r, main::chat_reply('bob', 1), 'a chat from /ws to bob on /off');
json_is(recv_msg($off), {type => 'chat', text => 'to off', sender => 'alice',
                         timestamp => NOW, id => $r->{id}},
        'its copy on /off carries the id: the sender\'s location decides');

my $bob = ws_open('/ws');
json_is($bob->call({type => 'register', userId => 'bob', since => '0'}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => TRUE}, 'on /ws, since "0": recovered');
is(join(' ', map { recv_msg($bob)->{text} } 1, 2), 'stored to off',
   'the two messages sent with history, not those sent without');
$bob->expect_silence(0.5, 'nothing more');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 10: a user id claimed with register is resumed only with resume_unverified=on; an identity set by nginx is resumed
--- ws_session
my $alice = ws_open('/ws');
$alice->call({type => 'register', userId => 'alice'});
my $bob = ws_open('/verified', headers => ['X-User-Id' => 'bob'],
                  welcome => {userId => 'bob'});
wait_presence({$bob->{pid} => ['bob']});

my @r = map { main::chat($alice, 'bob', "s$_") } 1, 2;
json_is($_, main::chat_reply('bob', 1), 'bob, identified by nginx, gets it')
    for @r;
recv_msg($bob) for 1, 2;
$bob->close;
push @r, main::chat($alice, 'bob', 's3');
json_is($r[2], main::chat_reply('bob', 0), 's3: queued');

my $mallory = ws_open('/strict');
json_is($mallory->call({type => 'register', userId => 'bob', since => '0'}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => FALSE},
        'bob claimed on /strict, since "0": registered, recovered false');
$mallory->expect_silence(0.5, 'and nothing of bob\'s history');
json_is($mallory->call({type => 'resume', since => '0'}),
        {type => 'resume', status => 'success', recovered => FALSE,
         timestamp => NOW}, 'then resume: recovered false');
$mallory->expect_silence(0.5, 'and still nothing');
$mallory->close;

my $back = ws_open('/verified', headers => ['X-User-Id' => 'bob'],
                   welcome => {userId => 'bob'});
json_is($back->call({type => 'resume', since => $r[0]{id}}),
        {type => 'resume', status => 'success', recovered => TRUE,
         timestamp => NOW}, 'bob identified by nginx, resume since s1:'
                            . ' recovered');
is(join(' ', map { my $m = recv_msg($back); "$m->{text}=$m->{id}" } 1, 2),
   "s2=$r[1]{id} s3=$r[2]{id}", 'then s2 and s3');
$back->expect_silence(0.5, 'nothing more');

my $claim = ws_open('/ws');
json_is($claim->call({type => 'register', userId => 'bob',
                      since => $r[0]{id}}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => TRUE},
        'bob claimed on /ws (resume_unverified=on), since s1: recovered');
is(join(' ', map { recv_msg($claim)->{text} } 1, 2), 's2 s3',
   'then s2 and s3');
$claim->expect_silence(0.5, 'nothing more');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 11: Redis down: local delivery goes on without ids, nothing is queued, register answers; Redis back: ids again, and what it lost is not recovered
--- http_config
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=$TEST_NGINX_RELAY_PREFIX
                   timeout=500ms ack_timeout=300ms;
--- ws_session
SKIP: {
skip('the Redis on port ' . redis_port() . ' was not started by the tests:'
     . ' they may not kill it', 1) unless redis_managed();

my ($A, $B) = ws_open_per_worker('/ws', 4);
my ($alice, $bob, $spare, $plain) = @$A;
my ($carol) = @$B;
wait_presence({});
$alice->call({type => 'register', userId => 'alice'});
$bob->call({type => 'register', userId => 'bob'});
$carol->call({type => 'register', userId => 'carol'});

my $r1 = main::chat($alice, 'bob', 'up');
json_is($r1, main::chat_reply('bob', 1), 'Redis up: an id');
my $seen = recv_msg($bob)->{id};

# stored after $seen, lost with Redis below
json_is(main::chat($alice, 'bob', 'up2'), main::chat_reply('bob', 1),
        'another, stored');
recv_msg($bob);

redis_kill();
api_wait('/api/health', sub { $_[0]{status} eq 'degraded' });

json_is(main::chat($alice, 'bob', 'down'),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => TRUE,
         queued => FALSE, timestamp => NOW},
        'Redis down, on one worker: delivered, not queued, no id');
json_is(recv_msg($bob), {type => 'chat', text => 'down', sender => 'alice',
                         timestamp => NOW}, 'the copy has no id');
json_is($alice->call({type => 'notification', targetUserId => 'bob'}),
        {type => 'notification_result', targetUserId => 'bob',
         delivered => TRUE, connections => 1, queued => FALSE,
         timestamp => NOW}, 'a notification: not queued, no id');
json_is(recv_msg($bob), {type => 'notification', action => 'general',
                         data => {}, sender => 'alice', timestamp => NOW},
        'the copy has no id');
json_is(main::chat($carol, 'bob', 'across'),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => FALSE,
         queued => FALSE, timestamp => NOW},
        'across workers: not delivered, not queued, no id');

# whichever worker answers, bob's is reached only from his own
my $api = api_post('/api/send-to-user', {userId => 'bob', message => 'api'});
json_is($api, {success => $api && $api->{delivered} ? TRUE : FALSE,
               delivered => NUMBER, queued => FALSE, userId => 'bob'},
        'POST: not queued, no id');
if ($api && $api->{delivered}) {
    json_is(recv_msg($bob), {type => 'notification', message => 'api',
                             sender => 'system', timestamp => NOW},
            'the copy has no id');
}

$plain->send_json({type => 'register', userId => 'dan'});
json_is(recv_msg($plain, 5), {type => 'register', status => 'success',
                              userId => 'dan', timestamp => NOW},
        'a register without since is answered');
$spare->send_json({type => 'register', userId => 'bob', since => $seen});
json_is(recv_msg($spare, 5), {type => 'register', status => 'success',
                              userId => 'bob', timestamp => NOW,
                              recovered => FALSE},
        'a register with since is answered: recovered false');

redis_start();
api_wait('/api/health', sub { $_[0]{status} eq 'ok' }, secs => 10);
wait_presence({$alice->{pid} => ['alice', 'bob']}, secs => 10);

my $r2 = main::chat($alice, 'bob', 'back');
json_is($r2, main::chat_reply('bob', 1), 'Redis back: an id again');
is(increasing($r1->{id}, $r2->{id}), '', 'greater than the one before');
json_is(recv_msg($_), {type => 'chat', text => 'back', sender => 'alice',
                       timestamp => NOW, id => $r2->{id}},
        'the copies carry it') for $bob, $spare;

my $late = ws_open('/ws');
json_is($late->call({type => 'register', userId => 'bob', since => $seen}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => FALSE},
        'since a message followed by one Redis lost: recovered false');
json_is(recv_msg($late), {type => 'chat', text => 'back', sender => 'alice',
                          timestamp => NOW, id => $r2->{id}},
        'then the message Redis has');
$late->expect_silence(0.5, 'nothing more');
}
--- error_log eval
main::redis_managed() ? 'ws relay: redis commands link lost' : []
--- no_error_log
[crit]
[alert]



=== TEST 12: with history on, a user is reachable from the other worker as soon as register answers, with or without since, or as soon as the welcome names an identity set by nginx
--- ws_session
my ($A, $B) = ws_open_per_worker('/ws', 1);
my ($a, $b) = ($A->[0], $B->[0]);
wait_presence({});

my @lost;
for my $i (1 .. 30) {
    my $reg = {type => 'register', userId => "user$i"};
    $reg->{since} = '0' if $i % 2;
    $b->call($reg);

    my $r = main::chat($a, "user$i", "m$i");
    if (!$r->{delivered}) {
        push @lost, $i;
        next;
    }

    my $m = recv_msg($b);
    push @lost, "$i (got $m->{text})" unless ($m->{text} // '') eq "m$i";
}
is("@lost", '', 'every chat right after the register was delivered');

my (@lost2, $across);
for my $i (1 .. 30) {
    my $v = ws_open('/verified', headers => ['X-User-Id' => "v$i"],
                    welcome => {userId => "v$i"});
    $across++ if $v->{pid} != $a->{pid};

    my $r = main::chat($a, "v$i", "n$i");
    if (!$r->{delivered}) {
        push @lost2, $i;
        next;
    }

    my $m = recv_msg($v);
    push @lost2, "$i (got $m->{text})" unless ($m->{text} // '') eq "n$i";
    $v->close;
}
is("@lost2", '', 'every chat right after the welcome of an identity set by'
                 . " nginx was delivered ($across across workers)");
--- no_error_log
[error]
[crit]
[alert]



=== TEST 14: a replay longer than a page and than the send buffer, to a client that reads slowly: every message, in order
--- config eval
main::config_for('size=1000 ttl=10m')
--- ws_session
# 400 chats of 4 KB: 1.6 MB to replay, ws_relay_send_buffer is 1 MB
my $alice = ws_open('/ws');
$alice->call({type => 'register', userId => 'alice'});
my $n = 400;
my $pad = 'x' x 4000;
$alice->send_raw(join '', map { ws_json({type => 'chat', targetUserId => 'bob',
                                         text => "m$_ $pad"}) } 1 .. $n);
my @r = map { recv_msg($alice, 10) } 1 .. $n;
is(scalar(grep { $_->{queued} } @r), $n, "$n chats queued");

my $bob = ws_open('/ws', rcvbuf => 8192);
json_is($bob->call({type => 'register', userId => 'bob', since => '0'}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => TRUE}, 'since "0": recovered');
my @got = recv_until($bob, sub { ($_[0]{text} // '') =~ /^m$n / }, 30);
is(join(' ', map { ($_->{text} // $_->{type}) =~ s/ x+$//r } @got),
   join(' ', map { "m$_" } 1 .. $n), "then the $n, in order");
is(join(' ', map { $_->{id} // '-' } @got),
   join(' ', map { $_->{id} } @r), 'with the ids of their replies');
$bob->expect_silence(0.5, 'nothing more');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 15: Redis drops the subscriber links: what was kept meanwhile reaches the user once they are back, in order, once
--- ws_session
my ($A, $B) = ws_open_per_worker('/ws', 1);
my ($alice, $bob) = ($A->[0], $B->[0]);
wait_presence({});
$alice->call({type => 'register', userId => 'alice'});
$bob->call({type => 'register', userId => 'bob'});
main::chat($alice, 'bob', 'm1');
recv_msg($bob);

is(redis_cmd('CLIENT', 'KILL', 'TYPE', 'pubsub'), 2,
   'Redis drops the two subscriber links');
my @r = map { main::chat($alice, 'bob', "m$_") } 2 .. 6;
is(join(' ', map { defined $_->{id} ? 'id' : 'none' } @r),
   join(' ', ('id') x 5), 'each is kept: its reply has an id');

my @got = main::recv_until($bob, sub { ($_[0]{text} // '') eq 'm6' }, 10);
is(join(' ', map { $_->{text} // $_->{type} } @got), 'm2 m3 m4 m5 m6',
   'bob gets each, live or once the links are back, in order, once');
is(join(' ', map { $_->{id} // '-' } @got),
   join(' ', map { $_->{id} // '-' } @r), 'with the ids of their replies');
$bob->expect_silence(0.5, 'nothing more');

json_is(main::chat($alice, 'bob', 'm7'), main::chat_reply('bob', 1),
        'then delivered live again');
is(recv_msg($bob)->{text}, 'm7', 'bob gets it');
--- error_log
ws relay: redis subscriber link lost
--- no_error_log
[crit]
[alert]



=== TEST 16: user ids with braces, spaces, escapes and 256 bytes: delivered across workers with ids, queued, resumed
--- ws_session
my ($A, $B) = ws_open_per_worker('/ws', 1);
my ($alice) = $A->[0];
wait_presence({});
$alice->call({type => 'register', userId => 'alice'});

for my $user ('{x}', 'a}b', '}', '{', 'a b', "\x{e9}\x{263a}", '%7B"\\',
              'u' x 256)
{
    my $shown = length $user > 20 ? substr($user, 0, 8) . '...' : $user;
    my ($c) = @{ (ws_open_per_worker('/ws', 1, pids => [$B->[0]{pid}]))[0] };
    $c->call({type => 'register', userId => $user});

    my $r1 = main::chat($alice, $user, 'live');
    json_is($r1, main::chat_reply($user, 1), "\"$shown\": delivered");
    json_is(recv_msg($c), {type => 'chat', text => 'live', sender => 'alice',
                           timestamp => NOW, id => $r1->{id}},
            "\"$shown\": the copy on the other worker, with the id");
    $c->close;

    my $r2 = main::chat($alice, $user, 'kept');
    json_is($r2, main::chat_reply($user, 0), "\"$shown\": queued");

    my $back = ws_open('/ws');
    json_is($back->call({type => 'register', userId => $user,
                         since => $r1->{id}}),
            {type => 'register', status => 'success', userId => $user,
             timestamp => NOW, recovered => TRUE},
            "\"$shown\": register with since, recovered");
    json_is(recv_msg($back), {type => 'chat', text => 'kept',
                              sender => 'alice', timestamp => NOW,
                              id => $r2->{id}},
            "\"$shown\": then what was kept");
    $back->expect_silence(0.3, "\"$shown\": nothing more");
    $back->close;
}
--- no_error_log
[error]
[crit]
[alert]



=== TEST 17: an identity set by nginx: register and resume sent at once are answered as always, even before the worker hears the user
--- ws_session
# Fresh users, and the message sent with the upgrade: it is read before
# the worker hears the user's channel. A client written for the old
# server registers as soon as it is connected.
for my $i (1 .. 5) {
    my $c = ws_open('/verified', headers => ['X-User-Id' => "w$i"],
                    welcome => {userId => "w$i"},
                    pipeline => ws_json({type => 'register',
                                         userId => "w$i"}));
    json_is(recv_msg($c), {type => 'register', status => 'success',
                           userId => "w$i", timestamp => NOW},
            "w$i: register at once: the reply of old");

    my $d = ws_open('/verified', headers => ['X-User-Id' => "r$i"],
                    welcome => {userId => "r$i"},
                    pipeline => ws_json({type => 'resume', since => '0'}));
    json_is(recv_msg($d), {type => 'resume', status => 'success',
                           recovered => TRUE, timestamp => NOW},
            "r$i: resume at once: recovered");

    $_->expect_silence(0.2, 'nothing more') for $c, $d;
}
--- no_error_log
[error]
[crit]
[alert]



=== TEST 18: two registers in one write, with history on: each answered in turn, the last one holds, as without history
--- ws_session
for my $path ('/off', '/ws') {
    my $e = ws_open($path);
    $e->send_raw(ws_json({type => 'register', userId => "first$path"})
                 . ws_json({type => 'register', userId => "second$path"}));
    json_is(recv_msg($e), {type => 'register', status => 'success',
                           userId => $_, timestamp => NOW},
            "$path, two registers at once: \"$_\" answered")
        for "first$path", "second$path";

    my $f = ws_open('/off');
    json_is($f->call({type => 'notification', targetUserId => "second$path"}),
            {type => 'notification_result', targetUserId => "second$path",
             delivered => TRUE, connections => 1, timestamp => NOW},
            "$path: the connection is \"second$path\"");
}
--- no_error_log
[error]
[crit]
[alert]



=== TEST 19: a connection that registers as one new user after another gets each one's first message, though ids of two users can be equal
--- ws_session
# ids are per user: the first message of one user and of the next, sent in
# the same millisecond, both have the id "<ms>-0"
my ($A, $B) = ws_open_per_worker('/ws', 1);
my ($a, $b) = ($A->[0], $B->[0]);
wait_presence({});
$a->call({type => 'register', userId => 'sender'});

my @lost;
for my $i (1 .. 200) {
    $b->call({type => 'register', userId => "next$i"});
    my $r = main::chat($a, "next$i", "m$i");
    my $m = $r->{delivered} ? eval { recv_msg($b, 3) } : undef;
    push @lost, $i unless $m && $m->{text} eq "m$i";
}
is("@lost", '', 'each new user\'s first message reached the connection');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 13: ws_relay_history: the forms nginx -t accepts, in http, server and location, and those it refuses
--- ws_session
my $redis = "    ws_relay_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT};\n";
my $loc = sub { "    location = /ws {\n        ws_relay;\n$_[0]    }\n" };

my @good = (
    [http => "size=100 ttl=10m"],
    [server => "size=1 ttl=1s"],
    [location => "size=100 ttl=10m meta_ttl=1d"],
    [location => "size=5 ttl=30s resume_unverified=on"],
    [location => "size=5 ttl=1h meta_ttl=2d resume_unverified=on"],
    [location => 'off'],
);

for my $case (@good) {
    my ($where, $args) = @$case;
    my $line = "ws_relay_history $args;\n";
    my ($status, $out) = nginx_config_test(
        http_config => $redis . ($where eq 'http' ? "    $line" : ''),
        config => ($where eq 'server' ? "    $line" : '')
                  . $loc->($where eq 'location' ? "        $line" : ''));
    is($status, 0, "$where: \"$args\" is accepted") or diag($out);
}

my @bad = (
    '',
    'size=abc ttl=10m',
    'size=-1 ttl=10m',
    'size=0 ttl=10m',
    'size=100 ttl=abc',
    'size=100 ttl=10m colour=red',
    'size=100 ttl=10m resume_unverified=maybe',
    'size=100 ttl=10m meta_ttl=abc',
);

for my $args (@bad) {
    my ($status, $out) = nginx_config_test(
        http_config => $redis,
        config => $loc->("        ws_relay_history $args;\n"));
    isnt($status, 0, "\"$args\": nginx -t fails");
    like($out, qr/\[emerg\] .*ws_relay_history|\[emerg\] invalid/,
         "\"$args\": an [emerg] says why") or diag($out);
}
--- no_error_log
[error]
[crit]
[alert]
