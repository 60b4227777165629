# Two nginx instances sharing one Redis: send-to-user counts and reaches
# the connections of both, from either; redis-info shows the users of
# every worker of both. The second nginx is started by the test itself
# (nginx_instance: its own prefix and port) and always stopped.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;
use WsRelay::Api;

# another nginx in the block's cluster: the same Redis and key prefix
sub second_nginx {
    return nginx_instance(
        workers => 2,
        http_config => "    ws_relay_redis"
                       . " 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}"
                       . " prefix=$ENV{TEST_NGINX_RELAY_PREFIX};\n",
        config => "    location = /ws {\n        ws_relay;\n    }\n"
                  . api_routes_config());
}

# error-log lines of the second nginx at [error] or worse
sub problems {
    my $n = shift;

    return join '', grep { /\[(?:error|crit|alert|emerg)\]/ }
                    split /^/, $n->error_log;
}

redis_start();
api_defaults();

master_on();
workers(2);
log_level('info');
run_tests();

__DATA__

=== TEST 1: send-to-user from either instance reaches the user's connections on both, with the exact count
--- ws_session
my $two = main::second_nginx();
my ($wa, $wb) = nginx_workers_up();
my ($wc, $wd) = $two->pids;
my @two = (port => $two->port);

my ($A, $B) = ws_open_per_worker('/ws', 2);
my ($C, $D) = $two->ws_open_per_worker('/ws', 2);
my ($a1, $a2, $b1, $b2, $c1, $c2, $d1, $d2) = (@$A, @$B, @$C, @$D);

$_->call({type => 'register', userId => 'x'}) for $a1, $b1, $c1, $d1;
$b2->call({type => 'register', userId => 'on-one'});
$d2->call({type => 'register', userId => 'on-two'});

my $want = {$wa => ['x'], $wb => ['x', 'on-one'],
            $wc => ['x'], $wd => ['x', 'on-two']};
wait_presence($want);
wait_presence($want, @two);

my @cases = (
    ['x', [$a1, $b1, $c1, $d1]],
    ['on-one', [$b2]],
    ['on-two', [$d2]],
    ['nobody', []],
);

for my $from ([one => ()], [two => @two]) {
    my ($name, @port) = @$from;

    for my $case (@cases) {
        my ($user, $conns) = @$case;
        my $n = @$conns;

        json_is(api_post('/api/send-to-user',
                         {userId => $user, message => "$user via $name"},
                         @port, desc => "POST to nginx $name"),
                {success => $n ? TRUE : FALSE, delivered => $n,
                 userId => $user},
                "via nginx $name: $user: delivered $n");

        json_is(next_json(2, $_),
                {type => 'notification', message => "$user via $name",
                 sender => 'system', timestamp => NOW},
                "via nginx $name: $user: a connection got it")
            for @$conns;
    }
}

$_->expect_silence(0.2, 'nothing more') for $a1, $a2, $b2, $c1, $c2, $d2;

$_->close for @$C, @$D;
$two->stop;
is(main::problems($two), '', 'the second nginx logged no error');
--- no_error_log
[error]
[crit]



=== TEST 2: redis-info shows the users of every worker of both instances
--- ws_session
my $two = main::second_nginx();
my ($wa, $wb) = nginx_workers_up();
my ($wc, $wd) = $two->pids;
my @two = (port => $two->port);

my ($A, $B) = ws_open_per_worker('/ws', 1);
my ($C, $D) = $two->ws_open_per_worker('/ws', 2);

$A->[0]->call({type => 'register', userId => 'ann'});
$B->[0]->call({type => 'register', userId => 'bob'});
$C->[0]->call({type => 'register', userId => 'cat'});
$D->[0]->call({type => 'register', userId => 'dog'});
$D->[1]->call({type => 'register', userId => 'ann'});

my $want = {$wa => ['ann'], $wb => ['bob'], $wc => ['cat'],
            $wd => ['ann', 'dog']};

# the instances hold 2 and 4 connections
for my $from ([one => 2], [two => 4, @two]) {
    my ($name, $local, @port) = @$from;
    my $r = wait_presence($want, @port);

    $_ = [sort @$_] for values %{ $r->{processUsers} };
    json_is($r->{processUsers}, $want, "via nginx $name: processUsers");
    json_is($r->{userProcesses},
            {ann => MATCHING(qr/^(?:$wa|$wd)$/), bob => "$wb", cat => "$wc",
             dog => "$wd"},
            "via nginx $name: userProcesses");
    is($r->{localConnections}, $local,
       "via nginx $name: localConnections counts this instance only");
    my @mine = $name eq 'one' ? ($wa, $wb) : ($wc, $wd);
    ok(scalar(grep { $r->{processId} eq $_ } @mine),
       "via nginx $name: processId is one of its own workers");
}

$_->close for @$C, @$D;
$two->stop;
is(main::problems($two), '', 'the second nginx logged no error');
--- no_error_log
[error]
[crit]



=== TEST 3: once the second nginx quits, its users are neither counted nor listed
--- ws_session
my $two = main::second_nginx();
my ($wa, $wb) = nginx_workers_up();
my ($wc, $wd) = $two->pids;

my $here = ws_open('/ws');
$here->call({type => 'register', userId => 'x'});
my @there = map { $_->[0] } $two->ws_open_per_worker('/ws', 1);
$_->call({type => 'register', userId => 'x'}) for @there;
wait_presence({$here->{pid} => ['x'], $wc => ['x'], $wd => ['x']});

json_is(api_post('/api/send-to-user', {userId => 'x', message => 'before'}),
        {success => TRUE, delivered => 3, userId => 'x'},
        'before: 1 here + 2 there');
is((next_json(2, $_))[0]{message}, 'before', 'received')
    for $here, @there;

my $master = $two->master;
kill 'QUIT', $master;
$_->expect_close(1001, 'its clients are told to go away') for @there;
ok(wait_for(sub { !$two->pids }, 5), 'its workers exit');
$two->stop;
is(main::problems($two), '', 'the second nginx logged no error');

json_is(api_post('/api/send-to-user', {userId => 'x', message => 'after'}),
        {success => TRUE, delivered => 1, userId => 'x'},
        'after: only the connection here counts');
json_is($here->recv_json, {type => 'notification', message => 'after',
                           sender => 'system', timestamp => NOW},
        'and gets it');

my $r = api_wait('/api/redis-info',
                 sub { keys %{ $_[0]{processUsers} } == 2 }, secs => 3);
is(join(' ', sort keys %{ $r->{processUsers} }), "$wa $wb",
   'redis-info: only this nginx\'s workers are left');
json_is($r->{userProcesses}, {x => "$here->{pid}"},
        'redis-info: x is on this nginx only');
--- no_error_log
[error]
[crit]
