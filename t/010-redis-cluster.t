# The workers of one nginx as one cluster through Redis: clients on
# different workers (told apart by welcome.processId) reach each other
# with every message type, exactly once per connection, in order, with
# exact delivery counts; Redis holds one user channel subscription per
# worker that holds the user, and the presence sets of the workers.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;

redis_start();

ws_defaults(http_config => <<'_EOC_');
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
_EOC_

master_on();
workers(2);
log_level('info');
run_tests();

__DATA__

=== TEST 1: chat crosses workers both ways, exactly
--- ws_session
my ($w1, $w2) = ws_open_per_worker('/ws', 1);
my ($a, $b) = ($w1->[0], $w2->[0]);
isnt($a->{pid}, $b->{pid}, 'alice and bob are on different workers');
redis_up_ok($a, $b);
$a->call({type => 'register', userId => 'alice'});
$b->call({type => 'register', userId => 'bob'});
redis_routes_ok(alice => 1, bob => 1);

json_is($a->call({type => 'chat', targetUserId => 'bob', text => 'hi bob'}),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => TRUE,
         timestamp => NOW}, 'alice: delivered');
json_is($b->recv_json, {type => 'chat', text => 'hi bob', sender => 'alice',
                        timestamp => NOW}, 'bob gets it, from alice');

json_is($b->call({type => 'chat', targetUserId => 'alice',
                  text => "\x{e9}t\x{e9} \x{263a}"}),
        {type => 'chat_delivered', targetUserId => 'alice', delivered => TRUE,
         timestamp => NOW}, 'bob: delivered');
json_is($a->recv_json, {type => 'chat', text => "\x{e9}t\x{e9} \x{263a}",
                        sender => 'bob', timestamp => NOW},
        'alice gets it intact, from bob');

$a->expect_silence(0.3, 'alice gets nothing more');
$b->expect_silence(0.1, 'bob gets nothing more');
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 2: notification crosses workers, with the exact number of connections
--- ws_session
my ($w1, $w2) = ws_open_per_worker('/ws', 3);
my ($a, @bob1) = @$w1;
my ($c, @bob2) = @$w2;
(pop @bob2)->close;
redis_up_ok($a, $c);
$_->call({type => 'register', userId => 'bob'}) for @bob1, @bob2;
$c->call({type => 'register', userId => 'carol'});
redis_routes_ok(bob => 2, carol => 1);

# bob: two connections on the first worker, one on the second
my @bob = (@bob1, @bob2);

for my $sender ($a, $c) {
    my $name = $sender == $a ? 'first' : 'second';
    json_is($sender->call({type => 'notification', targetUserId => 'bob',
                           action => 'new_message',
                           data => {id => 7, from => $name}}),
            {type => 'notification_result', targetUserId => 'bob',
             delivered => TRUE, connections => 3, timestamp => NOW},
            "from the $name worker: 3 connections");
    json_is($_->recv_json, {type => 'notification', action => 'new_message',
                            data => {id => 7, from => $name},
                            sender => $sender == $c ? 'carol' : $a->{id},
                            timestamp => NOW},
            "each of bob's connections gets the one from the $name worker")
        for @bob;
}

json_is($a->call({type => 'notification', targetUserId => 'carol'}),
        {type => 'notification_result', targetUserId => 'carol',
         delivered => TRUE, connections => 1, timestamp => NOW},
        'carol, on the other worker only: 1 connection');
json_is($c->recv_json, {type => 'notification', action => 'general',
                        data => {}, sender => $a->{id}, timestamp => NOW},
        'carol gets it, defaults filled in, sender is a connectionId');

json_is($c->call({type => 'notification', targetUserId => 'nobody'}),
        {type => 'notification_result', targetUserId => 'nobody',
         delivered => FALSE, connections => 0, timestamp => NOW},
        'a user on no worker: 0 connections');

$_->expect_silence(0.1, 'nothing more for bob') for @bob;
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 3: a user on both workers gets every message exactly once on each connection, a worker never delivers its own publication twice
--- ws_session
my ($w1, $w2) = ws_open_per_worker('/ws', 3);
my ($s1, @bob1) = @$w1;
my ($s2, @bob2) = @$w2;
redis_up_ok($s1, $s2);
$_->call({type => 'register', userId => 'bob'}) for @bob1, @bob2;
$s1->call({type => 'register', userId => 's1'});
$s2->call({type => 'register', userId => 's2'});
redis_routes_ok(bob => 2);

# both senders share a worker with two of bob's connections: that worker
# delivers directly and also receives its own publication
my $n = 30;
for my $s ($s1, $s2) {
    my $me = $s == $s1 ? 's1' : 's2';
    $s->send_raw(join '', map { ws_json({type => 'chat', targetUserId => 'bob',
                                         text => "$me-$_"}) } 1 .. $n);
}

for my $s ($s1, $s2) {
    my @r = map { $s->recv_json } 1 .. $n;
    is(scalar(grep { $_->{type} eq 'chat_delivered' && $_->{delivered} } @r),
       $n, "$n chats of one sender delivered");
}

for my $i (0 .. 3) {
    my $conn = (@bob1, @bob2)[$i];
    my @got = $conn->recv_all(0.5);
    my %per = (s1 => [], s2 => []);
    push @{ $per{$_->{sender}} }, $_->{text} for @got;
    is(scalar @got, 2 * $n, "bob's connection $i: exactly " . 2 * $n
                            . ' messages');
    is("@{ $per{s1} }", join(' ', map { "s1-$_" } 1 .. $n),
       "bob's connection $i: every message of s1 once, in order");
    is("@{ $per{s2} }", join(' ', map { "s2-$_" } 1 .. $n),
       "bob's connection $i: every message of s2 once, in order");
}

json_is($s1->call({type => 'notification', targetUserId => 'bob'}),
        {type => 'notification_result', targetUserId => 'bob',
         delivered => TRUE, connections => 4, timestamp => NOW},
        'notification: 4 connections, not 6');
json_is($_->recv_json, {type => 'notification', action => 'general',
                        data => {}, sender => 's1', timestamp => NOW},
        'each connection gets it') for @bob1, @bob2;
$_->expect_silence(0.1, 'and only once') for @bob1, @bob2;
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 4: 200 messages each way between two workers keep their order, and the replies theirs
--- ws_session
my ($w1, $w2) = ws_open_per_worker('/ws', 1);
my ($a, $b) = ($w1->[0], $w2->[0]);
redis_up_ok($a, $b);
$a->call({type => 'register', userId => 'alice'});
$b->call({type => 'register', userId => 'bob'});
redis_routes_ok(alice => 1, bob => 1);

my $n = 200;
# chats and notifications interleaved, both directions at once
my $burst = sub {
    my $to = shift;
    join '', map { ws_json($_ % 2
                           ? {type => 'chat', targetUserId => $to,
                              text => "m$_"}
                           : {type => 'notification', targetUserId => $to,
                              data => {n => $_}}) } 1 .. $n;
};
$a->send_raw($burst->('bob'));
$b->send_raw($burst->('alice'));

for my $pair ([$a, 'alice'], [$b, 'bob']) {
    my ($conn, $name) = @$pair;
    my (@got, @replies);

    while (@got < $n || @replies < $n) {
        my $m = $conn->recv_json;
        if ($m->{type} =~ /^(?:chat|notification)$/) {
            push @got, $m->{type} eq 'chat' ? $m->{text} : "m$m->{data}{n}";

        } else {
            push @replies, $m;
        }
    }

    is("@got", join(' ', map { "m$_" } 1 .. $n),
       "$name gets the other's $n messages in order");

    my @bad = grep {
        my $r = $replies[$_ - 1];
        !($_ % 2 ? $r->{type} eq 'chat_delivered' && $r->{delivered}
                 : $r->{type} eq 'notification_result'
                   && $r->{connections} == 1)
    } 1 .. $n;
    is("@bad", '', "$name: $n replies in request order, each delivered"
                   . ' to exactly 1 connection');
}
$a->expect_silence(0.2, 'nothing more for alice');
$b->expect_silence(0.1, 'nothing more for bob');
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 5: one user channel subscription per worker that holds the user, none once they left
--- ws_session
my ($w1, $w2) = ws_open_per_worker('/ws', 2);
redis_up_ok(@$w1, @$w2);
my $chan = 'ws_relay:u:{bob}';
my $numsub = sub { (redis_numsub($chan))[0] };

is($numsub->(), 0, 'nobody subscribes to bob before he registers');

$w1->[0]->call({type => 'register', userId => 'bob'});
ok(wait_for(sub { $numsub->() == 1 }), 'bob on the first worker: 1');

$w1->[1]->call({type => 'register', userId => 'bob'});
sleep 0.2;
is($numsub->(), 1, 'a second connection there: still 1');

$_->call({type => 'register', userId => 'bob'}) for @$w2;
ok(wait_for(sub { $numsub->() == 2 }), 'bob on both workers: 2');

$w1->[0]->close;
sleep 0.2;
is($numsub->(), 2, 'one of the first worker\'s connections closed: 2');

$w1->[1]->close;
ok(wait_for(sub { $numsub->() == 1 }), 'the first worker has no bob left: 1');

$w2->[0]->close;
CORE::close($w2->[1]{sock});
ok(wait_for(sub { $numsub->() == 0 }),
   'all closed, one of them without a close frame: 0');
sleep 0.3;
is($numsub->(), 0, 'and it stays 0');

my ($c1) = ws_open_per_worker('/ws', 1);
json_is($c1->[0]->call({type => 'notification', targetUserId => 'bob'}),
        {type => 'notification_result', targetUserId => 'bob',
         delivered => FALSE, connections => 0, timestamp => NOW},
        'a message to bob now reaches nobody');
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 6: a user who leaves or registers as someone else is no longer routed to
--- ws_session
my ($w1, $w2) = ws_open_per_worker('/ws', 1);
my ($a, $b) = ($w1->[0], $w2->[0]);
redis_up_ok($a, $b);
$b->call({type => 'register', userId => 'bob'});
redis_routes_ok(bob => 1);
json_is($a->call({type => 'chat', targetUserId => 'bob', text => '1'}),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => TRUE,
         timestamp => NOW}, 'bob reachable');
$b->recv_json;

json_is($b->call({type => 'register', userId => 'robert'}),
        {type => 'register', status => 'success', userId => 'robert',
         timestamp => NOW}, 'bob registers again, as robert');
redis_routes_ok(bob => 0, robert => 1);
json_is($a->call({type => 'chat', targetUserId => 'bob', text => '2'}),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => FALSE,
         timestamp => NOW}, 'bob: delivered false');
json_is($a->call({type => 'chat', targetUserId => 'robert', text => '3'}),
        {type => 'chat_delivered', targetUserId => 'robert',
         delivered => TRUE, timestamp => NOW}, 'robert: delivered');
json_is($b->recv_json, {type => 'chat', text => '3', sender => $a->{id},
                        timestamp => NOW}, 'the connection gets only that one');

$b->close;
json_is($a->call({type => 'chat', targetUserId => 'robert', text => '4'}),
        {type => 'chat_delivered', targetUserId => 'robert',
         delivered => FALSE, timestamp => NOW},
        'robert closed: delivered false');
redis_routes_ok(robert => 0);
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 7: the presence sets hold each worker's users, the lease set both workers; two Redis links per worker
--- ws_session
my ($w1, $w2) = ws_open_per_worker('/ws', 2);
my ($n1, $n2) = ($w1->[0]->node, $w2->[0]->node);
redis_up_ok(@$w1, @$w2);
isnt($n1, $n2, 'the workers are different nodes');
is($w1->[1]->node, $n1, 'connections of a worker share its node id');

$w1->[0]->call({type => 'register', userId => 'alice'});
$w1->[1]->call({type => 'register', userId => 'bob'});
$w2->[0]->call({type => 'register', userId => 'bob'});
$w2->[1]->call({type => 'register', userId => 'carol'});

my $members = sub {
    join ' ', sort @{ redis_cmd('SMEMBERS', "ws_relay:node:$_[0]:users") };
};
ok(wait_for(sub { $members->($n1) eq 'alice bob'
                  && $members->($n2) eq 'bob carol' }),
   'presence: alice bob / bob carol')
    or diag($members->($n1) . ' / ' . $members->($n2));

my $now = time * 1000;
for my $node ($n1, $n2) {
    my $lease = redis_cmd('ZSCORE', 'ws_relay:nodes', $node);
    ok(defined $lease && $lease > $now && $lease < $now + 60_000,
       "the lease of $node runs into the future");
    my $ttl = redis_cmd('PTTL', "ws_relay:node:$node:users");
    ok($ttl > 0 && $ttl <= 30_000, "its presence set expires ($ttl ms)");
}

is(join(' ', redis_numsub("ws_relay:n:$n1", "ws_relay:n:$n2")), '1 1',
   'each node channel has one subscriber');

# every worker: one command link, one subscriber link with its node
# channel and one channel per user it holds (a MONITOR is no link)
my @clients = grep { $_->{flags} !~ /O/ } redis_clients();
my @subs = sort map { $_->{sub} } grep { $_->{sub} > 0 } @clients;
is("@subs", '3 3', 'two subscriber links, 3 channels each');
is(scalar(grep { $_->{sub} == 0 } @clients), 2, 'two command links');

$w1->[0]->close;
$w2->[1]->close;
ok(wait_for(sub { $members->($n1) eq 'bob' && $members->($n2) eq 'bob' }),
   'alice and carol left: bob / bob');
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 8: a user is reachable from the other worker as soon as register answers
--- ws_session
my ($w1, $w2) = ws_open_per_worker('/ws', 1);
my ($a, $b) = ($w1->[0], $w2->[0]);
redis_up_ok($a, $b);

# one connection registering again and again: each register moves it
my @lost;
for my $i (1 .. 50) {
    $b->call({type => 'register', userId => "user$i"});
    my $r = $a->call({type => 'chat', targetUserId => "user$i",
                      text => "m$i"});
    if (!$r->{delivered}) {
        push @lost, $i;
        next;
    }
    my $m = $b->recv_json;
    push @lost, "$i (got $m->{text})" unless $m->{text} eq "m$i";
}
is("@lost", '', 'every chat right after the register was delivered');
redis_routes_ok(user49 => 0, user50 => 1);
--- no_error_log
[error]
[warn]
[crit]
[alert]
