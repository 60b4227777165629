# Resume across the ends of workers and hosts: the history lives in
# Redis, so a client resumes where it was after a reload (its worker
# gone), after its worker was SIGKILLed, on another nginx sharing the
# Redis, and on an nginx that was stopped and started again; the ids go
# on increasing through all of it, and are the same on every host.
# The second nginx is started by the test itself (nginx_instance), on
# the port after the test server's.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;
use WsRelay::Api;
use WsRelay::History;

our $Config = <<'_EOC_' . api_routes_config() . "    }\n";
    location = /ws {
        ws_relay;
        ws_relay_history size=100 ttl=10m resume_unverified=on;
    }

    location /api/ {
        ws_relay_history size=100 ttl=10m;
_EOC_

# another nginx in the block's cluster: the same Redis, key prefix and
# locations
sub second_nginx {
    return nginx_instance(
        workers => 2,
        port => $ENV{TEST_NGINX_SERVER_PORT} + 1,
        http_config => "    ws_relay_redis"
                       . " 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}"
                       . " prefix=$ENV{TEST_NGINX_RELAY_PREFIX};\n",
        config => $Config);
}

# error-log lines of the second nginx at [error] or worse
sub problems {
    my $n = shift;

    return join '', grep { /\[(?:error|crit|alert|emerg)\]/ }
                    split /^/, $n->error_log;
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

# Within 5 s, Redis has no subscriber left on the node channel of the
# worker that held $c (its links are gone).
sub node_gone {
    my ($c) = @_;

    my $chan = "$ENV{TEST_NGINX_RELAY_PREFIX}n:" . $c->node;
    return wait_for(sub { (redis_numsub($chan))[0] == 0 }, 5);
}

# A new connection registers as bob since $since: the reply says
# recovered, then come the messages of these replies, in order.
sub resumed_ok {
    my ($c, $since, $desc, @replies) = @_;

    json_is($c->call({type => 'register', userId => 'bob', since => $since}),
            {type => 'register', status => 'success', userId => 'bob',
             timestamp => NOW, recovered => TRUE},
            "$desc: register with since, recovered");
    is(join(' ', map { recv_msg($c)->{id} } @replies),
       join(' ', map { $_->{id} } @replies),
       "$desc: then the " . @replies . ' messages bob missed, in order');
}

redis_start();
history_defaults(config => $Config);

master_on();
workers(2);
log_level('info');
run_tests();

__DATA__

=== TEST 1: after a reload, a client resumes on the new workers where it was on the old ones
--- ws_session
my ($A, $B) = ws_open_per_worker('/ws', 1);
my ($alice, $bob) = ($A->[0], $B->[0]);
wait_presence({});
$alice->call({type => 'register', userId => 'alice'});
$bob->call({type => 'register', userId => 'bob'});

my $r1 = main::chat($alice, 'bob', 'm1');
json_is($r1, main::chat_reply('bob', 1), 'before the reload: delivered');
my $seen = recv_msg($bob)->{id};

my @old = nginx_worker_pids();
kill 'HUP', nginx_pid();
$_->expect_close(1001, 'reload: going away') for $alice, $bob;
ok(wait_for(sub { my %now = map { $_ => 1 } nginx_worker_pids();
                  !grep { $now{$_} } @old }, 10), 'the old workers are gone');

my $alice2 = ws_open('/ws');
wait_presence({});
$alice2->call({type => 'register', userId => 'alice'});
my @r = map { main::chat($alice2, 'bob', "m$_") } 2 .. 4;
json_is($_, main::chat_reply('bob', 0), 'after the reload, bob away: queued')
    for @r;
is(increasing(map { $_->{id} } $r1, @r), '',
   'the ids go on increasing through the reload');

my $back = ws_open('/ws');
main::resumed_ok($back, $seen, 'on a new worker', @r);

my $r5 = main::chat($alice2, 'bob', 'm5');
json_is(recv_msg($back), {type => 'chat', text => 'm5', sender => 'alice',
                          timestamp => NOW, id => $r5->{id}},
        'then live messages');
$back->expect_silence(0.5, 'nothing twice');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 2: after its worker was SIGKILLed, a client resumes on the worker the master starts, or the other
--- ws_session
my ($A, $B) = ws_open_per_worker('/ws', 1);
my ($bob, $alice) = ($A->[0], $B->[0]);
wait_presence({});
$alice->call({type => 'register', userId => 'alice'});
$bob->call({type => 'register', userId => 'bob'});

main::chat($alice, 'bob', 'm1');
my $seen = recv_msg($bob)->{id};

my $dead = $bob->{pid};
kill 'KILL', $dead;
is(($bob->next_message(5) || {})->{type}, 'eof',
   'bob\'s connection dies with its worker');
ok(main::node_gone($bob), 'the dead worker\'s links to Redis are gone');

my @r = map { main::chat($alice, 'bob', "m$_") } 2 .. 4;
json_is($_, main::chat_reply('bob', 0), 'bob away: queued') for @r;

my @pids = nginx_workers_up();
ok(@pids == 2 && !grep({ $_ == $dead } @pids), 'the master started another'
                                               . ' worker');
my ($new) = grep { $_ != $alice->{pid} } @pids;
my ($C) = ws_open_per_worker('/ws', 1, pids => [$new]);
wait_presence({});
main::resumed_ok($C->[0], $seen, 'on the new worker', @r);
main::resumed_ok(ws_open('/ws'), $seen, 'on any worker', @r);
--- error_log eval
['[alert]', qr/worker process \d+ exited on signal 9/]
--- no_error_log
[error]
[crit]
link lost



=== TEST 3: two nginx on one Redis: the same id on both, and a client resumes on one what it missed from the other
--- ws_session
my $two = main::second_nginx();
my @two = (port => $two->port);
my $bob1 = ws_open('/ws');
my $carol = ws_open('/ws');
my $bob2 = $two->ws_open('/ws');
my $alice = $two->ws_open('/ws');
wait_presence({});
wait_presence({}, @two);
$_->call({type => 'register', userId => 'bob'}) for $bob1, $bob2;
$alice->call({type => 'register', userId => 'alice'});
$carol->call({type => 'register', userId => 'carol'});

my @ids;
for my $i (1 .. 4) {
    my ($from, $name, $host) = $i % 2 ? ($alice, 'alice', 'two')
                                      : ($carol, 'carol', 'one');
    my $r = main::chat($from, 'bob', "m$i");
    json_is($r, main::chat_reply('bob', 1), "m$i from nginx $host: delivered");
    push @ids, $r->{id};

    my @got = map { recv_msg($_) } $bob1, $bob2;
    json_is($_, {type => 'chat', text => "m$i", sender => $name,
                 timestamp => NOW, id => $r->{id}},
            "m$i: a copy with the reply's id") for @got;
    is_deeply($got[0], $got[1], "m$i: the same on both nginx");
}
is(increasing(@ids), '', 'the ids increase, whichever nginx sent');

$bob1->close;
my @kept;
for my $i (5, 6) {
    json_is(main::chat($alice, 'bob', "m$i"), main::chat_reply('bob', 1),
            "m$i from nginx two: delivered to bob there");
    push @kept, recv_msg($bob2);
}

my $back = ws_open('/ws');
json_is($back->call({type => 'register', userId => 'bob',
                     since => $ids[-1]}),
        {type => 'register', status => 'success', userId => 'bob',
         timestamp => NOW, recovered => TRUE},
        'on nginx one, since m4: recovered');
is_deeply([map { recv_msg($back) } 1, 2], \@kept,
          'then m5 and m6, as bob got them on nginx two');
$back->expect_silence(0.5, 'nothing more');

$two->stop;
is(main::problems($two), '', 'the second nginx logged no error');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 4: an nginx stopped and started again: its client resumes there what was sent meanwhile from the other
--- ws_session
my $two = main::second_nginx();
my $bob = $two->ws_open('/ws');
my $alice = ws_open('/ws');
wait_presence({});
wait_presence({}, port => $two->port);
$bob->call({type => 'register', userId => 'bob'});
$alice->call({type => 'register', userId => 'alice'});

main::chat($alice, 'bob', 'm1');
my $seen = recv_msg($bob)->{id};

$two->stop;
my $m = $bob->next_message(5);
ok($m && $m->{type} =~ /^(?:close|eof)$/,
   'bob loses his connection with the second nginx');
ok(main::node_gone($bob), 'its links to Redis are gone');
is(main::problems($two), '', 'it logged no error');

my @r = map { main::chat($alice, 'bob', "m$_") } 2, 3;
json_is($_, main::chat_reply('bob', 0), 'the second nginx away: queued')
    for @r;

$two = main::second_nginx();
wait_presence({}, port => $two->port);
main::resumed_ok($two->ws_open('/ws'), $seen, 'on the second nginx again',
                 @r);

$two->stop;
is(main::problems($two), '', 'the second nginx logged no error');
--- no_error_log
[error]
[crit]
[alert]
