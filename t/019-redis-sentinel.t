# ws_relay_redis through Redis Sentinel: the workers find the master the
# sentinels name and follow it when it dies (SIGKILL), when the sentinels
# switch it on purpose (SENTINEL FAILOVER), when the first sentinel hangs,
# and with passwords on the servers and on the sentinels; they ride out a
# paused master; a server that is no master (the old one after a switch,
# or the master turned replica under them) is never written to; history
# ids keep increasing across a switch; nginx -t knows the sentinel form.
#
# Every block gets a new set (WsRelay::Sentinel): a master, its replica
# and three sentinels; nginx runs two workers. Traffic is judged as in
# t/012 (WsRelay::Traffic): outside a fault every message is delivered and received once on
# each connection of its user; within it a message to another worker may
# be lost but never reported delivered without arriving, one to a
# connection on the sender's worker is never lost, nothing arrives twice
# or out of order, and no client is closed. A fault is over once 5 rounds
# in a row are delivered: one round may be reported delivered by a
# connection on the sender's worker while the other worker still
# subscribes its users again.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;
use WsRelay::Api;
use WsRelay::History;
use WsRelay::Sentinel;
use WsRelay::Traffic;

use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes qw(sleep time);

# Clients for the traffic: alice and ann on the first worker, bob and bea
# on the second; alice and bob chat across workers, each also to the
# user beside it. With bob_twice, bob has a second connection, on the
# first worker ("bob2"), so that both workers hold him.
sub traffic {
    my (%o) = @_;

    my ($w1, $w2) = ws_open_per_worker('/ws', 3);
    my %clients = (alice => $w1->[0], ann => $w1->[1],
                   bob => $w2->[0], bea => $w2->[1]);
    my %users = map { $_ => $_ } keys %clients;
    my $port = sentinel_master_port();

    main::up_on($port, values %clients);

    my %want = (alice => 1, ann => 1, bob => 1, bea => 1);

    if ($o{bob_twice}) {
        $clients{bob2} = $w1->[2];
        $users{bob2} = 'bob';
        $want{bob} = 2;
    }

    $clients{$_}->call({type => 'register', userId => $users{$_}})
        for sort keys %clients;
    main::routes_on($port, %want);

    return WsRelay::Traffic->new(clients => \%clients, users => \%users,
                        pairs => [[qw(alice bob)], [qw(bob alice)],
                                  [qw(alice ann)], [qw(bob bea)]]);
}

# within 10 s, on the Redis at $port, each worker holding these clients
# has its lease and one subscriber on its node channel
sub up_on {
    my ($port, @clients) = @_;

    my %nodes = map { $_->node => 1 } @clients;
    my @nodes = sort keys %nodes;

    my $up = wait_for(sub {
        my $ok = eval {
            !grep({ !defined server_cmd($port, 'ZSCORE', 'ws_relay:nodes', $_) }
                  @nodes)
            && !grep { $_ != 1 } @{ numsub($port, map { "ws_relay:n:$_" }
                                                  @nodes) };
        };
        $ok;
    }, 10);

    return ok($up, "$WsRelay::Test::BlockName - " . @nodes . ' worker(s)'
                   . " on the master (port $port)");
}

sub numsub {
    my ($port, @channels) = @_;

    my %n = @{ server_cmd($port, 'PUBSUB', 'NUMSUB', @channels) };
    return [ map { $n{$_} } @channels ];
}

# within 5 s, the Redis at $port routes each user to that many workers
sub routes_on {
    my ($port, %want) = @_;

    my @users = sort keys %want;
    my $want = join ' ', @want{@users};
    my $got = '';

    wait_for(sub {
        $got = eval { join ' ', @{ numsub($port,
                                          map { "ws_relay:u:{$_}" } @users) } }
               // '';
        $got eq $want;
    }, 5);

    return is($got, $want, "$WsRelay::Test::BlockName - routes of @users"
                           . " on the master (port $port)");
}

# nginx's links on the Redis at $port: their subscription counts, sorted
sub links_on {
    my $port = shift;

    return join ' ', sort { $a <=> $b } map { $_->{sub} + $_->{psub} }
                     nginx_clients($port);
}

# ws_relay_redis_failovers_total of each worker: {pid => value}
sub failovers {
    my $desc = shift;

    my ($fam, $problems) = prom_parse(metrics_get(desc => $desc));
    my $f = $fam->{ws_relay_redis_failovers_total};

    ok($f && ($f->{type} // '') eq 'counter',
       "$WsRelay::Test::BlockName - $desc: ws_relay_redis_failovers_total"
       . ' is a counter');

    return { map { $_->{labels}{worker} => $_->{value} }
             @{ $f ? $f->{samples} : [] } };
}

# every worker's failover count went up by exactly $n
sub failovers_up_ok {
    my ($before, $n, $desc) = @_;

    my $after = failovers("$desc: metrics");
    my @pids = nginx_worker_pids();
    my $got = join ' ', map { ($after->{$_} // 'none') - ($before->{$_} // 0) }
                        @pids;

    return is($got, join(' ', ($n) x @pids),
              "$WsRelay::Test::BlockName - $desc: each worker's"
              . " ws_relay_redis_failovers_total went up by $n");
}

# /api/health's "redis" member, polled until $cond holds (up to $secs)
sub health_until {
    my ($cond, $secs) = @_;

    my $health;
    wait_for(sub {
        (undef, $health) = eval { http_get_json('/api/health') };
        $health && eval { $cond->($health) };
    }, $secs // 5);
    return $health;
}

# the error log of the test server from byte $from on: its lines
sub log_lines {
    my $from = shift // 0;

    my $file = WsRelay::Test::server_root() . '/logs/error.log';
    open my $in, '<', $file or return ();
    seek $in, $from, 0;
    my @lines = <$in>;
    close $in;
    return @lines;
}

sub log_size { -s (WsRelay::Test::server_root() . '/logs/error.log') // 0 }

# What nginx asked a server, seen by MONITOR: the commands that publish,
# run a script or name a key or channel of the relay, from any client but
# the server's own master link (127.0.0.1:$master_port, replicated
# commands) and the sentinels (which never name the relay's keys).
sub nginx_commands {
    my ($lines, $master_port) = @_;

    return grep {
        my ($t, $addr, $cmd, @args) = @$_;
        (!defined $master_port || $addr ne "127.0.0.1:$master_port")
        && $cmd !~ /^(?:SUBSCRIBE|PSUBSCRIBE|UNSUBSCRIBE|PUNSUBSCRIBE)$/
        && ($cmd =~ /^(?:EVAL|EVALSHA|EVAL_RO|EVALSHA_RO|FCALL|FCALL_RO)$/
            || grep { /^ws_relay:/ } @args)
    } @$lines;
}

sub show_commands {
    return join "\n", map { join ' ', @$_ } @_[0 .. ($#_ > 9 ? 9 : $#_)];
}

# rejected and failed calls, summed over every command
sub refusals {
    my $port = shift;

    my $stats = commandstats($port);
    my $n = 0;
    $n += ($_->{rejected_calls} // 0) + ($_->{failed_calls} // 0)
        for values %$stats;
    return $n;
}


# what a server answers a PING from a client that did not authenticate
sub unauthenticated_ping {
    my $port = shift;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => 2) or return "connect: $!";
    print $sock "*1\r\n\$4\r\nPING\r\n";
    my $line = '';
    IO::Select->new($sock)->can_read(2) and sysread($sock, $line, 512);
    close $sock;
    return $line;
}


# each block but the one of nginx -t gets a new set, with the passwords
# its ws_relay_redis names
add_block_preprocessor(sub {
    my $block = shift;

    return if ($block->name // '') =~ /nginx -t/;

    my $conf = $block->http_config // '';
    my ($pass) = $conf =~ /\spassword=(\S+?);?\s/;
    my ($spass) = $conf =~ /\ssentinel_password=(\S+?);?\s/;
    sentinel_fresh(password => $pass, sentinel_password => $spass);
});

our $HttpConfig = <<'_EOC_';
    ws_relay_redis sentinel=$TEST_NGINX_SENTINELS master=mymaster;
_EOC_

our $Config = <<'_EOC_';
    location = /ws {
        ws_relay;
    }

    location = /api/health {
        ws_relay_api health;
    }

    location = /api/metrics {
        ws_relay_api metrics;
    }
_EOC_

ws_defaults(http_config => $HttpConfig, config => $Config);

master_on();
workers(2);
log_level('info');
run_tests();

__DATA__

=== TEST 1: the workers use the master the sentinels name: chats cross workers, health names the master, the replica gets no link, each worker listens on one sentinel
--- ws_session
my $master = first_master_port();
is(sentinel_master_port(majority => 1), $master, 'the sentinels name the'
   . ' first master');

my ($w1, $w2) = ws_open_per_worker('/ws', 1);
my ($a, $b) = ($w1->[0], $w2->[0]);
isnt($a->{pid}, $b->{pid}, 'alice and bob are on different workers');
main::up_on($master, $a, $b);
$a->call({type => 'register', userId => 'alice'});
$b->call({type => 'register', userId => 'bob'});
main::routes_on($master, alice => 1, bob => 1);

json_is($a->call({type => 'chat', targetUserId => 'bob', text => 'hi bob'}),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => TRUE,
         timestamp => NOW}, 'alice: delivered');
json_is($b->recv_json, {type => 'chat', text => 'hi bob', sender => 'alice',
                        timestamp => NOW}, 'bob gets it, from alice');
json_is($b->call({type => 'notification', targetUserId => 'alice',
                  data => {n => 1}}),
        {type => 'notification_result', targetUserId => 'alice',
         delivered => TRUE, connections => 1, timestamp => NOW},
        'bob: 1 connection');
json_is($a->recv_json, {type => 'notification', action => 'general',
                        data => {n => 1}, sender => 'bob', timestamp => NOW},
        'alice gets it, from bob');

my $health = main::health_until(sub { $_[0]{redis}{state} eq 'connected' });
json_is($health->{redis}, {state => 'connected', lastError => STRING,
                           master => "127.0.0.1:$master"},
        'health: connected, to the master the sentinels name');
is($health->{status}, 'ok', 'health: ok');

is(main::links_on($master), '0 0 2 2', 'on the master: two links per'
   . ' worker, each subscriber with its node channel and its user');
is(scalar(nginx_clients(first_replica_port())), 0,
   'the replica has no link of nginx');

# the sentinels' own links to each other are named "sentinel-..."
my $listening = sub {
    my $n = 0;
    for my $port (sentinel_ports()) {
        $n += grep { $_->{sub} + $_->{psub} > 0 } nginx_clients($port);
    }
    return $n;
};
ok(wait_for(sub { $listening->() == 2 }, 5),
   'each worker has one subscription link on the sentinels')
    or diag('links subscribed on sentinels: ' . $listening->());

my $f = main::failovers('before any switch');
is(join(' ', map { $f->{$_} // 'none' } nginx_worker_pids()), '0 0',
   'no worker counts a failover yet');

$a->expect_silence(0.3, 'alice gets nothing more');
$b->expect_silence(0.1, 'bob gets nothing more');
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 2: the master SIGKILLed mid-traffic: local delivery goes on, cross-worker delivery resumes by itself once the sentinels promote the replica, no worker restarts, no subscription twice
--- ws_session
my ($old, $new) = (first_master_port(), first_replica_port());
my $t = main::traffic(bob_twice => 1);
my @pids = nginx_worker_pids();
my $before = main::failovers('before the kill');
$t->run_for(1);

my $killed = time;
server_kill($old);
my ($port, $promoted) = wait_master_change($old, 30, tick => sub { $t->round });
is($port, $new, 'the sentinels promote the replica'
                . sprintf(' (%.1f s after the kill)', ($promoted // time) - $killed));
$promoted //= time;

my $back = $t->run_until_delivered(15, 5);
ok(defined $back && $back - $promoted < 5 + 2,
   'cross-worker delivery resumes within 5 s of the promotion (+2 s slack):'
   . (defined $back ? sprintf(' %.1f s', $back - $promoted) : ' never'));
$back //= time;
$t->run_for(1);

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $killed ? 'up' : $sent < $back ? 'fault' : 'up';
});

is(join(' ', nginx_worker_pids()), join(' ', @pids), 'the same workers');
main::routes_on($new, alice => 1, ann => 1, bob => 2, bea => 1);
is(join(' ', @{ main::numsub($new, map { 'ws_relay:n:' . $t->client($_)->node }
                                       qw(alice bob)) }),
   '1 1', 'one subscriber on each node channel of the new master');
is(main::links_on($new), '0 0 3 4', 'on the new master: two links per'
   . ' worker, no leftover (node channel and users: alice ann bob / bob bea)');

my $health = main::health_until(
    sub { $_[0]{redis}{master} eq "127.0.0.1:$new" });
is($health->{redis}{master}, "127.0.0.1:$new", 'health names the new master');
is($health->{redis}{state}, 'connected', 'health: connected');
main::failovers_up_ok($before, 1, 'after the switch');

# the old master comes back as a replica of the new one
server_start($old, '--replicaof', '127.0.0.1', $new);
$t->run_for(2);
is(scalar(nginx_clients($old)), 0,
   'the old master, back as a replica, gets no link of nginx');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 3: SENTINEL FAILOVER mid-traffic: the workers move to the new master, no worker restarts, no subscription twice, the old master is left
--- ws_session
my ($old, $new) = (first_master_port(), first_replica_port());
my $t = main::traffic(bob_twice => 1);
my @pids = nginx_worker_pids();
my $before = main::failovers('before the switch');
$t->run_for(1);

my $asked = time;
is(sentinel_cmd(1, 'SENTINEL', 'FAILOVER', sentinel_name()), 'OK',
   'a sentinel starts a failover');
my ($port, $promoted) = wait_master_change($old, 30, tick => sub { $t->round });
is($port, $new, 'the sentinels name the replica'
                . sprintf(' (%.1f s after asking)', ($promoted // time) - $asked));
$promoted //= time;

# the old master still runs, and still takes writes for a while: the
# workers must leave it for the new one
my $moved;
my $end = time + 15;
while (time < $end) {
    $t->round;
    if (!nginx_clients($old) && main::links_on($new) eq '0 0 3 4') {
        $moved = time;
        last;
    }
}
ok(defined $moved && $moved - $promoted < 5 + 2,
   'the workers left the old master for the new one within 5 s (+2 s'
   . ' slack): ' . (defined $moved ? sprintf('%.1f s', $moved - $promoted)
                                   : 'never: ' . main::links_on($old) . ' / '
                                                . main::links_on($new)));

my $back = $t->run_until_delivered(10, 5);
ok(defined $back, 'cross-worker delivery goes on through the new master');
$back //= time;
$t->run_for(1);

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $asked ? 'up' : $sent < $back ? 'fault' : 'up';
});

is(join(' ', nginx_worker_pids()), join(' ', @pids), 'the same workers');
main::routes_on($new, alice => 1, ann => 1, bob => 2, bea => 1);
is(main::links_on($new), '0 0 3 4', 'on the new master: two links per'
   . ' worker, no leftover');
is(scalar(nginx_clients($old)), 0, 'none on the old master');

my $health = main::health_until(
    sub { $_[0]{redis}{master} eq "127.0.0.1:$new" });
is($health->{redis}{master}, "127.0.0.1:$new", 'health names the new master');
is($health->{redis}{state}, 'connected', 'health: connected');
main::failovers_up_ok($before, 1, 'after the switch');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 4: a master that stops answering writes for a while (CLIENT PAUSE 800 WRITE, past timeout=500ms, not past the sentinels' 1 s): nothing crashes, local delivery goes on, delivery across workers comes back, no switch is counted
--- http_config
    ws_relay_redis sentinel=$TEST_NGINX_SENTINELS master=mymaster
                   timeout=500ms ack_timeout=300ms;
--- ws_session
my $master = first_master_port();
my $t = main::traffic();
my @pids = nginx_worker_pids();
my $before = main::failovers('before the pause');
$t->run_for(1);

my $paused = time;
is(server_cmd($master, 'CLIENT', 'PAUSE', 800, 'WRITE'), 'OK',
   'the master pauses its writers for 0.8 s');
$t->run_for(0.8);
my $resumed = $paused + 0.8;

my $back = $t->run_until_delivered(15, 5);
ok(defined $back, 'cross-worker delivery comes back after the pause'
                  . sprintf(' (%.1f s after it ended)',
                            ($back // time) - $resumed));
$back //= time;
$t->run_for(1);

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $paused ? 'up' : $sent < $back ? 'fault' : 'up';
});

is(sentinel_master_port(majority => 1), $master,
   'the sentinels kept the master (else this block tests something else)');
is(join(' ', nginx_worker_pids()), join(' ', @pids), 'the same workers');
main::routes_on($master, alice => 1, ann => 1, bob => 1, bea => 1);
is(main::links_on($master), '0 0 3 3', 'two links per worker, no leftover');
my $health = main::health_until(sub { $_[0]{redis}{state} eq 'connected' });
json_is($health->{redis}, {state => 'connected', lastError => STRING,
                           master => "127.0.0.1:$master"},
        'health: connected to the same master');
main::failovers_up_ok($before, 0, 'after the pause');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 5: a master paused for 3 s (CLIENT PAUSE 3000 WRITE), which the sentinels may take for a failure (their PINGs wait behind a paused PUBLISH): nothing crashes, delivery comes back through the master they name
--- ws_session
my $master = first_master_port();
my $t = main::traffic();
my @pids = nginx_worker_pids();
my $before = main::failovers('before the pause');
$t->run_for(1);

my $paused = time;
is(server_cmd($master, 'CLIENT', 'PAUSE', 3000, 'WRITE'), 'OK',
   'the master pauses its writers for 3 s');
$t->run_for(3);
my $resumed = $paused + 3;

# the sentinels settle (a failover they started ends within seconds),
# then the workers are on the master they name, and only there
$t->run_for(2);
my ($now, $settled);
my $end = time + 20;
while (time < $end) {
    $t->round;
    $now = eval { sentinel_master_port(majority => 1) } or next;
    my @others = grep { $_ != $now } first_master_port(), first_replica_port();
    if (main::links_on($now) eq '0 0 3 3' && !grep { nginx_clients($_) } @others) {
        $settled = time;
        last;
    }
}
ok(defined $settled, 'the workers are on the master the sentinels name'
   . (defined $settled ? sprintf(' (%.1f s after the pause ended)',
                                 $settled - $resumed) : ''));

my $back = $t->run_until_delivered(10, 5);
ok(defined $back, 'cross-worker delivery comes back after the pause'
                  . sprintf(' (%.1f s after it ended)',
                            ($back // time) - $resumed));
$back //= time;
$t->run_for(1);

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $paused ? 'up' : $sent < $back ? 'fault' : 'up';
});

my $switched = ($now // 0) != $master ? 1 : 0;
note($switched ? "the sentinels failed over to $now" : 'no failover');

is(join(' ', nginx_worker_pids()), join(' ', @pids), 'the same workers');
main::routes_on($now, alice => 1, ann => 1, bob => 1, bea => 1);
is(main::links_on($now), '0 0 3 3', 'on the master the sentinels name: two'
   . ' links per worker, no leftover');
my $health = main::health_until(
    sub { $_[0]{redis}{master} eq "127.0.0.1:$now"
          && $_[0]{redis}{state} eq 'connected' });
json_is($health->{redis}, {state => 'connected', lastError => STRING,
                           master => "127.0.0.1:$now"},
        'health: connected to the master the sentinels name');
main::failovers_up_ok($before, $switched, 'after the pause');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 6: after a switch, the old master (demoted to a replica) is never written to: no PUBLISH, no script, no key of the relay from nginx, no refused write
--- config
    location = /ws {
        ws_relay;
        ws_relay_history size=100 ttl=10m;
    }

    location = /api/health {
        ws_relay_api health;
    }

    location = /api/metrics {
        ws_relay_api metrics;
    }
--- ws_session
my ($old, $new) = (first_master_port(), first_replica_port());
my $t = main::traffic();
my $mon = redis_monitor($old);
$t->run_for(1);
my @seen = $mon->lines;
ok(scalar(main::nginx_commands(\@seen)), 'MONITOR on the master sees the'
   . ' commands of nginx (' . scalar(main::nginx_commands(\@seen)) . ')');

my $asked = time;
is(sentinel_cmd(0, 'SENTINEL', 'FAILOVER', sentinel_name()), 'OK',
   'a sentinel starts a failover');
my ($port, $promoted) = wait_master_change($old, 30, tick => sub { $t->round });
is($port, $new, 'the sentinels name the replica');
$promoted //= time;

# the old master is still a master for a while: the workers leave it
my $moved;
my $end = time + 15;
while (time < $end) {
    $t->round;
    push @seen, $mon->lines;
    if (!nginx_clients($old)) {
        $moved = time;
        last;
    }
}
ok(defined $moved, 'the workers leave the old master'
   . (defined $moved ? sprintf(' (%.1f s after the switch)', $moved - $promoted)
                     : ''));
$moved //= time;

# then it is demoted, as the sentinels would do a few seconds later
is(server_cmd($old, 'REPLICAOF', '127.0.0.1', $new), 'OK',
   'the old master is made a replica of the new one');
ok(wait_for(sub { (server_role($old) // '') eq 'slave' }, 5),
   'it answers ROLE as a replica');
my $refused = main::refusals($old);

my $back = $t->run_until_delivered(10, 5);
ok(defined $back, 'cross-worker delivery goes on through the new master');
$back //= time;
$t->run_for(4);
push @seen, $mon->lines;
$mon->stop;

my @late = grep { $_->[0] >= $moved } main::nginx_commands(\@seen, $new);
is(scalar @late, 0, 'once the workers had left it, nginx sent the old'
   . ' master no PUBLISH, script or relay key, as a master or as a replica')
    or diag(main::show_commands(@late));
is(main::refusals($old) - $refused, 0,
   'the old master refused no command since it is a replica');
is(scalar(nginx_clients($old)), 0, 'no link of nginx on the old master');

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $asked ? 'up' : $sent < $back ? 'fault' : 'up';
});
is(main::links_on($new), '0 0 3 3', 'on the new master: two links per'
   . ' worker, no leftover');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 7: the master turned into a replica under the workers (REPLICAOF) and back: they stop writing to it, say degraded, recover by themselves once it is a master again, and log no flood
--- ws_session
my $master = first_master_port();
my $spare = spare_start();
my $t = main::traffic();
my @pids = nginx_worker_pids();
$t->run_for(1);

my $log_from = main::log_size();
my $flipped = time;
is(server_cmd($master, 'REPLICAOF', '127.0.0.1', $spare), 'OK',
   'the master becomes a replica of another Redis');
ok(wait_for(sub { (server_role($master) // '') eq 'slave' }, 5),
   'it answers ROLE as a replica');
my $mon = redis_monitor($master);

# writes of both workers: new users register on each
my ($v1, $v2) = ws_open_per_worker('/ws', 1);
$_->[0]->call({type => 'register', userId => 'carl' . $_->[0]{pid}})
    for $v1, $v2;

my $degraded;
my $end = time + 15;
while (time < $end) {
    $t->round;
    my (undef, $h) = eval { http_get_json('/api/health') };
    if ($h && ($h->{redis}{state} // '') eq 'degraded') {
        $degraded = time;
        last;
    }
}
ok(defined $degraded, 'health says degraded while the named master is a'
   . ' replica' . (defined $degraded ? sprintf(' (after %.1f s)',
                                               $degraded - $flipped) : ''));
$degraded //= time;

# a link may come and go (connect, ROLE, drop): one that holds
# subscriptions there for a whole second stays (4 s of samples)
my (%since, %stay);
my $sampled = time + 4;
while (time < $sampled) {
    for my $c (grep { $_->{sub} + $_->{psub} > 0 } nginx_clients($master)) {
        my $first = $since{ $c->{id} } //= time;
        $stay{ $c->{id} } = "id=$c->{id} addr=$c->{addr} sub=$c->{sub}"
                            . sprintf(' for %.1f s', time - $first)
            if time - $first >= 1;
    }
    $t->run_for(0.25);
}
is(scalar keys %stay, 0, 'no subscriber link of nginx stays on the replica'
   . ' (' . scalar(keys %since) . ' seen in 4 s)')
    or diag(join "\n", map { $stay{$_} } sort keys %stay);
my @seen = $mon->lines;
$mon->stop;
my @writes = grep { $_->[0] >= $degraded + 1 }
             main::nginx_commands(\@seen, $spare);
is(scalar @writes, 0, 'from 1 s after it said degraded, nginx sent the'
   . ' replica no PUBLISH, script or relay key')
    or diag(main::show_commands(@writes));

my $fixed = time;
is(server_cmd($master, 'REPLICAOF', 'NO', 'ONE'), 'OK',
   'the master is a master again');
my $back = $t->run_until_delivered(15, 5);
ok(defined $back && $back - $fixed < 10,
   'cross-worker delivery comes back by itself within 10 s'
   . (defined $back ? sprintf(' (%.1f s)', $back - $fixed) : ': never'));
$back //= time;
$t->run_for(1);
my $quiet = time;

is(sentinel_master_port(majority => 1), $master,
   'the sentinels never failed over meanwhile (else this block tests less)');

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $flipped ? 'up' : $sent < $back ? 'fault' : 'up';
});

my @lines = grep { /\[(?:warn|error|crit|alert|emerg)\]/ }
            main::log_lines($log_from);
my $limit = int(10 * 2 * ($quiet - $flipped)) + 10;
ok(@lines <= $limit, 'the error log did not flood: ' . @lines
   . " lines at warn or above in " . sprintf('%.0f', $quiet - $flipped)
   . " s (at most $limit)") or diag(@lines[0 .. 19]);

is(join(' ', nginx_worker_pids()), join(' ', @pids), 'the same workers');
main::routes_on($master, alice => 1, ann => 1, bob => 1, bea => 1);
my $health = main::health_until(sub { $_[0]{redis}{state} eq 'connected' });
json_is($health->{redis}, {state => 'connected', lastError => STRING,
                           master => "127.0.0.1:$master"},
        'health: connected to the master again');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 8: the sentinels a worker would hear +switch-master from, and the first one it asks, hang (SIGSTOP) while the others switch the master: the workers still move to the new master (they ask again, and skip a sentinel that does not answer)
--- ws_session
my ($old, $new) = (first_master_port(), first_replica_port());
my $t = main::traffic();
my @pids = nginx_worker_pids();
my $before = main::failovers('before');
$t->run_for(0.5);

# the sentinels holding the workers' subscriptions, and the first one;
# one at least stays awake to switch the master
my @s = sentinel_ports();
my %listen = map { my $port = $_;
                   ($port => scalar grep { $_->{sub} + $_->{psub} > 0 }
                                     nginx_clients($port)) } @s;
is(eval { my $n = 0; $n += $_ for values %listen; $n }, 2,
   'each worker listens on a sentinel: ' . join(', ', map { "$_ ($listen{$_})" }
                                                 grep { $listen{$_} } @s));
my @hang = grep { $_ == $s[0] || $listen{$_} } @s;
pop @hang if @hang == 3;
my $awake = (grep { my $p = $s[$_]; !grep { $_ == $p } @hang } 0 .. 2)[0];
note("hung: @hang; the failover is asked of $s[$awake]");

server_pause($_) for @hang;
$t->run_for(0.5);

my $asked = time;
is(sentinel_cmd($awake, 'SENTINEL', 'FAILOVER', sentinel_name()), 'OK',
   'a sentinel that answers starts a failover');
my ($port, $promoted) = wait_master_change($old, 30, from => [$awake],
                                           tick => sub { $t->round });
is($port, $new, 'it promotes the replica');
$promoted //= time;

# the old master lives on: nothing but the workers' own asking moves them
my $moved;
my $end = time + 20;
while (time < $end) {
    $t->round;
    if (!nginx_clients($old) && main::links_on($new) eq '0 0 3 3') {
        $moved = time;
        last;
    }
}
ok(defined $moved && $moved - $promoted < 15,
   'the workers move to the new master within 15 s: '
   . (defined $moved ? sprintf('%.1f s', $moved - $promoted)
                     : 'never: ' . main::links_on($old) . ' / '
                                  . main::links_on($new)));
my $back = $t->run_until_delivered(10, 5);
ok(defined $back, 'cross-worker delivery goes on through the new master');
$back //= time;
$t->run_for(0.5);
server_resume($_) for @hang;
$t->run_for(1);

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $asked ? 'up' : $sent < $back ? 'fault' : 'up';
});

is(join(' ', nginx_worker_pids()), join(' ', @pids), 'the same workers');
main::routes_on($new, alice => 1, ann => 1, bob => 1, bea => 1);
my $health = main::health_until(
    sub { $_[0]{redis}{master} eq "127.0.0.1:$new" });
is($health->{redis}{master}, "127.0.0.1:$new", 'health names the new master');
main::failovers_up_ok($before, 1, 'after the switch');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 9: with history, ids keep increasing across a switch, and a resume from before it gets everything after, once, in order
--- config
    location = /ws {
        ws_relay;
        ws_relay_history size=100 ttl=10m resume_unverified=on;
    }

    location = /api/health {
        ws_relay_api health;
    }

    location = /api/metrics {
        ws_relay_api metrics;
    }
--- ws_session
my ($old, $new) = (first_master_port(), first_replica_port());
my ($w1, $w2) = ws_open_per_worker('/ws', 1);
my ($a, $b) = ($w1->[0], $w2->[0]);
main::up_on($old, $a, $b);
$a->call({type => 'register', userId => 'alice'});
$b->call({type => 'register', userId => 'bob'});
main::routes_on($old, alice => 1, bob => 1);

my (@bob_ids, @dan_ids);
my $send = sub {
    my ($to, $text) = @_;
    $a->send_json({type => 'chat', targetUserId => $to, text => $text});
    return recv_msg($a, 5);
};

for my $i (1 .. 5) {
    my $r = $send->('bob', "b$i");
    ok($r->{delivered} && $r->{id}, "b$i delivered with an id");
    my $m = recv_msg($b, 5);
    is($m->{text}, "b$i", "bob gets b$i");
    push @bob_ids, $m->{id};
    my $q = $send->('dan', "d$i");
    ok($q->{queued} && $q->{id}, "d$i queued for dan, who is away");
    push @dan_ids, $q->{id};
}

ok(wait_synced($old, $new, 10), 'the replica has every byte of the master');
sentinel_cmd(0, 'SENTINEL', 'FAILOVER', sentinel_name());
my ($port) = wait_master_change($old, 30);
is($port, $new, 'the sentinels name the replica');
is(server_cmd($old, 'REPLICAOF', '127.0.0.1', $new), 'OK',
   'the old master is made a replica of the new one');

# chats to bob until one is delivered with an id: then through the new
# master, the only one left; then five more
my $i = 5;
my $end = time + 15;
while (time < $end) {
    $i++;
    my $r = $send->('bob', "b$i");
    last if $r->{delivered} && $r->{id};
    sleep 0.2;
}
my @after = recv_until($b, sub { $_[0]{text} eq "b$i" }, 5);
ok(@after && $after[-1]{text} eq "b$i", "bob gets b$i through the new master");
push @bob_ids, map { $_->{id} } @after;

for my $k ($i + 1 .. $i + 5) {
    my $r = $send->('bob', "b$k");
    ok($r->{delivered}, "b$k delivered");
    push @bob_ids, recv_msg($b, 5)->{id};
    my $q = $send->('dan', "d$k");
    ok($q->{queued} && $q->{id}, "d$k queued for dan");
    push @dan_ids, $q->{id};
}

# a copy that reached bob while no history could be kept has no id
my $without = grep { !defined } @bob_ids;
@bob_ids = grep { defined } @bob_ids;
is(increasing(@bob_ids), '', 'the ids bob got increase across the switch'
   . ' (' . scalar(@bob_ids) . " ids, $without copies without one)");
is(increasing(@dan_ids), '', 'so do the ids of the messages kept for dan');

is(server_cmd($new, 'XLEN', 'ws_relay:h:{dan}'), 10,
   'the new master keeps dan\'s 10 messages, 5 from before the switch');

my $dan = ws_open('/ws');
json_is($dan->call({type => 'register', userId => 'dan',
                    since => $dan_ids[0]}),
        {type => 'register', status => 'success', userId => 'dan',
         recovered => TRUE, timestamp => NOW},
        'dan comes back with the id of the first message: recovered');
my @got = recv_until($dan, sub { $_[0]{id} eq $dan_ids[-1] }, 10);
is(join(' ', map { $_->{id} } @got), join(' ', @dan_ids[1 .. $#dan_ids]),
   'dan gets every later message, once, in order, across the switch');
$dan->expect_silence(0.3, 'and nothing more');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 10: password= and sentinel_password=: the workers authenticate to the sentinels and to the Redis servers, before and after a failover
--- http_config
    ws_relay_redis sentinel=$TEST_NGINX_SENTINELS master=mymaster
                   password=redis-secret sentinel_password=sentinel-secret;
--- ws_session
my ($old, $new) = (first_master_port(), first_replica_port());
for my $port ($old, $new, sentinel_ports()) {
    like(main::unauthenticated_ping($port), qr/^-NOAUTH/,
         "port $port asks for a password");
}

my $t = main::traffic();
my $before = main::failovers('before the switch');
$t->run_for(1);

my $asked = time;
is(sentinel_cmd(2, 'SENTINEL', 'FAILOVER', sentinel_name()), 'OK',
   'a sentinel starts a failover');
my ($port) = wait_master_change($old, 30, tick => sub { $t->round });
is($port, $new, 'the sentinels name the replica');

my $moved;
my $end = time + 15;
while (time < $end) {
    $t->round;
    if (!nginx_clients($old) && main::links_on($new) eq '0 0 3 3') {
        $moved = time;
        last;
    }
}
ok(defined $moved, 'the workers move to the new master');
my $back = $t->run_until_delivered(10, 5);
ok(defined $back, 'cross-worker delivery goes on through it');
$back //= time;
$t->run_for(1);

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $asked ? 'up' : $sent < $back ? 'fault' : 'up';
});
my $health = main::health_until(
    sub { $_[0]{redis}{master} eq "127.0.0.1:$new" });
json_is($health->{redis}, {state => 'connected', lastError => STRING,
                           master => "127.0.0.1:$new"},
        'health: connected to the new master');
main::failovers_up_ok($before, 1, 'after the switch');
--- no_error_log
NOAUTH
WRONGPASS
[crit]
[alert]
[emerg]



=== TEST 11: nginx -t: the sentinel form with every parameter, and the forms it refuses
--- ws_session
my $s = $ENV{TEST_NGINX_SENTINELS};
my ($s1) = sentinel_ports();
my $loc = "    location = /ws {\n        ws_relay;\n    }\n";

my @good = (
    "sentinel=$s master=mymaster",
    "sentinel=127.0.0.1:$s1 master=mymaster",
    "sentinel=$s master=mymaster password=secret sentinel_password=s3cret"
    . ' db=3 prefix=app: timeout=1s ack_timeout=200ms',
    '127.0.0.1:6379',
    'unix:/tmp/ws-relay-test.sock password=secret db=1',
);

for my $args (@good) {
    my ($status, $out) = nginx_config_test(
        http_config => "    ws_relay_redis $args;\n", config => $loc);
    is($status, 0, "\"$args\" is accepted") or diag($out);
}

my @bad = (
    ["sentinel=$s", 'no master='],
    ["sentinel=$s master=", 'an empty master='],
    ['sentinel= master=mymaster', 'an empty sentinel list'],
    ["sentinel=127.0.0.1:$s1,,127.0.0.1:" . ($s1 + 1) . ' master=mymaster',
     'an empty address in the list'],
    ['sentinel=127.0.0.1:99999 master=mymaster', 'a port out of range'],
    ['sentinel=127.0.0.1:abc master=mymaster', 'a port that is no number'],
    ['sentinel=unix:/tmp/ws-relay-sentinel.sock master=mymaster',
     'a unix: sentinel'],
    ["sentinel=127.0.0.1:$s1,unix:/tmp/ws-relay-sentinel.sock"
     . ' master=mymaster', 'a unix: sentinel after a good one'],
    ["sentinel=$s master=mymaster db=abc", 'a bad db='],
    ["sentinel=$s master=mymaster colour=red", 'an unknown parameter'],
);

for my $case (@bad) {
    my ($args, $why) = @$case;
    my ($status, $out) = nginx_config_test(
        http_config => "    ws_relay_redis $args;\n", config => $loc);
    isnt($status, 0, "$why (\"$args\"): nginx -t fails");
    like($out, qr/\[emerg\] .*ws_relay_redis|\[emerg\] invalid/,
         "$why: an [emerg] says why") or diag($out);
}
--- http_config
--- no_error_log
[error]
[crit]
[alert]
