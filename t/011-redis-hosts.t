# Two nginx instances (two prefixes, two ports, as two hosts would be)
# sharing one Redis are one cluster: messages go both ways, delivery
# counts are exact across them, connection ids are unique across them.
# Test::Nginx runs the first nginx; each block starts the second itself
# (nginx_instance) and stops it when the block ends, however it ends.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;

redis_start();

our $HttpConfig = <<'_EOC_';
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
_EOC_

ws_defaults(http_config => $HttpConfig);

# the second host: the same configuration
sub second_host {
    (my $http_config = $HttpConfig)
        =~ s/\$TEST_NGINX_REDIS_PORT/$ENV{TEST_NGINX_REDIS_PORT}/g;

    return nginx_instance(workers => 2, http_config => $http_config);
}

# the second host's error log has no line at these levels
sub clean_log {
    my ($host, $desc) = @_;

    my @bad = grep { /\[(?:error|warn|crit|alert|emerg)\]/ }
              split /^/, $host->error_log;
    ok(!@bad, "$WsRelay::Test::BlockName - $desc") or diag(@bad);
}

master_on();
workers(2);
log_level('info');
run_tests();

__DATA__

=== TEST 1: chat and notification both ways between the hosts
--- ws_session
my $h2 = main::second_host();
my $a = ws_open('/ws');
my $b = $h2->ws_open('/ws');
isnt($a->node, $b->node, 'different nodes');
redis_up_ok($a, $b);
$a->call({type => 'register', userId => 'alice'});
$b->call({type => 'register', userId => 'bob'});
redis_routes_ok(alice => 1, bob => 1);

json_is($a->call({type => 'chat', targetUserId => 'bob', text => 'to 2'}),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => TRUE,
         timestamp => NOW}, 'host 1 -> host 2: delivered');
json_is($b->recv_json, {type => 'chat', text => 'to 2', sender => 'alice',
                        timestamp => NOW}, 'bob gets it');

json_is($b->call({type => 'notification', targetUserId => 'alice',
                  action => 'ping', data => {x => [1, 2]}}),
        {type => 'notification_result', targetUserId => 'alice',
         delivered => TRUE, connections => 1, timestamp => NOW},
        'host 2 -> host 1: 1 connection');
json_is($a->recv_json, {type => 'notification', action => 'ping',
                        data => {x => [1, 2]}, sender => 'bob',
                        timestamp => NOW}, 'alice gets it');

json_is($b->call({type => 'chat', targetUserId => 'carol', text => 'x'}),
        {type => 'chat_delivered', targetUserId => 'carol',
         delivered => FALSE, timestamp => NOW},
        'a user on neither host: delivered false');

$a->expect_silence(0.2, 'nothing more for alice');
$b->expect_silence(0.1, 'nothing more for bob');
main::clean_log($h2, 'the second host logged no error');
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 2: a user on every worker of both hosts: exact counts, each connection gets each message once, in order
--- ws_session
my $h2 = main::second_host();
my @h1 = ws_open_per_worker('/ws', 2);
my @h2 = $h2->ws_open_per_worker('/ws', 2);

# bob: one connection on each of the four workers; a sender beside each
my (@bob, @senders);
for my $w (@h1, @h2) {
    push @bob, $w->[0];
    push @senders, $w->[1];
}
redis_up_ok(@bob);
$_->call({type => 'register', userId => 'bob'}) for @bob;
$senders[$_]->call({type => 'register', userId => "s$_"}) for 0 .. 3;
redis_routes_ok(bob => 4);

for my $i (0 .. 3) {
    json_is($senders[$i]->call({type => 'notification', targetUserId => 'bob',
                                data => {from => $i}}),
            {type => 'notification_result', targetUserId => 'bob',
             delivered => TRUE, connections => 4, timestamp => NOW},
            "from sender $i: exactly 4 connections");
}

my $n = 25;
for my $i (0 .. 3) {
    $senders[$i]->send_raw(join '', map {
        ws_json({type => 'chat', targetUserId => 'bob', text => "s$i-$_"})
    } 1 .. $n);
}
for my $i (0 .. 3) {
    my @r = map { $senders[$i]->recv_json } 1 .. $n;
    is(scalar(grep { $_->{delivered} } @r), $n, "sender $i: $n delivered");
}

for my $k (0 .. 3) {
    my @got = $bob[$k]->recv_all(0.5);
    my @notes = grep { $_->{type} eq 'notification' } @got;
    is(join(' ', map { $_->{data}{from} } @notes), '0 1 2 3',
       "bob's connection $k: each notification once, in the order sent");

    my %per;
    push @{ $per{$_->{sender}} }, $_->{text}
        for grep { $_->{type} eq 'chat' } @got;
    is(scalar @got, 4 + 4 * $n, "bob's connection $k: nothing else");
    for my $i (0 .. 3) {
        is("@{ $per{\"s$i\"} || [] }", join(' ', map { "s$i-$_" } 1 .. $n),
           "bob's connection $k: every chat of sender $i once, in order");
    }
}

main::clean_log($h2, 'the second host logged no error');
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 3: connection ids are unique across hosts, processId is the worker's pid on either
--- ws_session
my $h2 = main::second_host();
my @c1 = map { ws_open('/ws') } 1 .. 30;
my @c2 = map { $h2->ws_open('/ws') } 1 .. 30;

my %seen;
$seen{$_->{id}}++ for @c1, @c2;
is(scalar keys %seen, 60, '60 connections, 60 distinct ids');

my %nodes = map { $_->node => 1 } @c1, @c2;
is(scalar keys %nodes, 4, 'four workers, four node ids');

my %h2pids = map { $_ => 1 } $h2->pids;
ok(!grep({ $h2pids{$_->{pid}} } @c1), 'host 1 clients name host 1 workers');
ok(!grep({ !$h2pids{$_->{pid}} } @c2), 'host 2 clients name host 2 workers');

main::clean_log($h2, 'the second host logged no error');
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 4: the second host going away takes its routes with it
--- ws_session
my $h2 = main::second_host();
my $a = ws_open('/ws');
my @b = map { $h2->ws_open('/ws') } 1 .. 2;
my $b1 = ws_open('/ws');
redis_up_ok($a, @b, $b1);
$_->call({type => 'register', userId => 'bob'}) for @b, $b1;
my %workers = map { $_->node => 1 } @b, $b1;
redis_routes_ok(bob => scalar keys %workers);

json_is($a->call({type => 'notification', targetUserId => 'bob'}),
        {type => 'notification_result', targetUserId => 'bob',
         delivered => TRUE, connections => 3, timestamp => NOW},
        'bob: 3 connections on two hosts');
$_->recv_json for @b, $b1;

my @pids = $h2->pids;
kill 'QUIT', $h2->master;
$_->expect_close(1001, 'host 2 stops: its clients get 1001') for @b;
$h2->stop;
ok(!grep({ kill 0, $_ } @pids), 'host 2 is gone');
redis_routes_ok(bob => 1);

json_is($a->call({type => 'notification', targetUserId => 'bob'}),
        {type => 'notification_result', targetUserId => 'bob',
         delivered => TRUE, connections => 1, timestamp => NOW},
        'bob: the one connection left on host 1');
--- no_error_log
[error]
[warn]
[crit]
[alert]
