# ws_relay_redis through Redis Cluster: the workers learn the slots from
# the seeds (CLUSTER SLOTS), keep links to every master, and route each
# user's channel "<prefix>u:{<user>}" to the master of its slot
# (SSUBSCRIBE, SPUBLISH): users on each of the three masters reach each
# other across workers and across two nginx, a user is subscribed once
# per worker that holds it, on its master only; the workers follow a
# failover asked for (CLUSTER FAILOVER) or forced (a master SIGKILLed), a
# slot migrated under traffic (nothing lost, doubled or reordered with
# history), and subscriber links dropped by one master; history and
# resume work across the masters; the first seed may be down; passwords;
# nginx -t knows the cluster form and refuses the wrong ones.
#
# Every block gets a new cluster (WsRelay::Cluster): three masters and
# their replicas, cluster-node-timeout 1000, stopped once the block is
# judged; and a key prefix of its own, so that an nginx of an earlier
# block still connecting leaves nothing in its figures. nginx runs two
# workers. Traffic is judged as in t/012 and t/019 (WsRelay::Traffic).

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;
use WsRelay::Api;
use WsRelay::History;
use WsRelay::Cluster;
use WsRelay::Traffic;

use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();
use Time::HiRes qw(sleep time);

# the seeds of TEST 9: the spare node's port, on which nothing runs,
# then the second node
$ENV{TEST_NGINX_CLUSTER_DOWN_FIRST} = join ',', map { "127.0.0.1:$_" }
                                      spare_port(), (cluster_ports())[1];

# the block's key prefix
sub prefix { $ENV{TEST_NGINX_RELAY_PREFIX} }

sub chan { prefix() . "u:{$_[0]}" }

# the master of a user's channel now
sub owner_of { key_owner(chan($_[0])) }

# a user id "<stem><n>" whose channel is on the master on $port
sub user_on { user_on_master($_[0], prefix(), $_[1]) }

# /api/health (of the nginx on port => n), polled until $cond holds (up
# to $secs): the last reply
sub health_until {
    my ($cond, $secs, %o) = @_;

    my $health;
    wait_for(sub {
        (undef, $health) = eval { http_get_json('/api/health', %o) };
        $health && eval { $cond->($health) };
    }, $secs // 5);
    return $health;
}

# the shards a health reply names, sorted
sub shards {
    my $h = shift;

    return join ' ', sort @{ ($h && $h->{redis}{shards}) || [] };
}

sub masters_named { join ' ', sort map { "127.0.0.1:$_" } masters() }

# within $secs (10), health says ok, every worker's links are up, and
# the worker answering follows the masters of the cluster
sub cluster_up_ok {
    my (%o) = @_;

    my $want = masters_named();
    my $h = health_until(sub {
        my $h = shift;
        $h->{status} eq 'ok' && $h->{redis}{state} eq 'connected'
        && !grep({ $_->{redis} ne 'connected' } @{ $h->{workers} })
        && shards($h) eq $want;
    }, (delete $o{secs}) // 10, %o);

    return ok($h && $h->{status} eq 'ok' && shards($h) eq $want,
              "$WsRelay::Test::BlockName - health: ok, every worker"
              . ' connected, following the masters'
              . ($o{port} ? " (nginx on port $o{port})" : ''))
        || diag(JSON::PP->new->canonical->encode($h // {}));
}

# users => number of workers: within 5 s, each user's channel has that
# many shard subscribers on its master, and none on any other node
sub routes_ok {
    my (%want) = @_;

    my @users = sort keys %want;
    my $want = join ' ', map { "$_=$want{$_}" } @users;
    my $got = '';

    wait_for(sub {
        $got = join ' ', map {
            my $n = shard_subscribers(chan($_));
            my $own = owner_of($_) // 0;
            my @else = map { "$_:$n->{$_}" } grep { $_ != $own } sort keys %$n;
            "$_=" . ($n->{$own} // 0) . (@else ? " (also @else)" : '');
        } @users;
        $got eq $want;
    }, 5);

    return is($got, $want, "$WsRelay::Test::BlockName - routes of @users:"
                           . ' shard subscribers on the master of each'
                           . ' channel, none elsewhere');
}

# a counter of /api/metrics for each worker: {pid => value}
sub counters {
    my ($name, $desc) = @_;

    my ($fam) = prom_parse(metrics_get(desc => $desc));
    my $f = $fam->{$name};

    ok($f && ($f->{type} // '') eq 'counter',
       "$WsRelay::Test::BlockName - $desc: $name is a counter");

    return { map { $_->{labels}{worker} => $_->{value} }
             @{ $f ? $f->{samples} : [] } };
}

# within 3 s, each worker's counter $name is above its value in $before
sub grew_ok {
    my ($name, $before, $desc) = @_;

    my @pids = nginx_worker_pids();
    my $after;
    wait_for(sub {
        my ($fam) = prom_parse((http_request('GET', '/api/metrics'))->{body});
        $after = { map { $_->{labels}{worker} => $_->{value} }
                   @{ $fam->{$name} ? $fam->{$name}{samples} : [] } };
        !grep { ($after->{$_} // 0) <= ($before->{$_} // 0) } @pids;
    }, 3);

    return ok(!grep({ ($after->{$_} // 0) <= ($before->{$_} // 0) } @pids),
              "$WsRelay::Test::BlockName - $desc: each worker's $name went"
              . ' up: ' . join(', ', map { ($before->{$_} // 'none') . ' -> '
                                           . ($after->{$_} // 'none') }
                                     @pids));
}

sub by_pid { [ sort { $a->{pid} <=> $b->{pid} } @{ $_[0] || [] } ] }

# Clients for the traffic: alice and ann on the first worker, bob and bea
# on the second; alice and bob chat across workers, each also to the
# user beside it. alice's and bob's channels are on the master on => port
# (the first by default), ann's and bea's on the two others. With
# bob_twice, bob has a second connection, on the first worker ("bob2"),
# so that both workers hold him.
sub traffic {
    my (%o) = @_;

    my @m = masters();
    my $on = $o{on} // $m[0];
    my @others = grep { $_ != $on } @m;
    my %users = (alice => user_on($on, 'alice'), bob => user_on($on, 'bob'),
                 ann => user_on($others[0], 'ann'),
                 bea => user_on($others[1], 'bea'));

    my ($w1, $w2) = ws_open_per_worker('/ws', $o{bob_twice} ? 3 : 2);
    my %clients = (alice => $w1->[0], ann => $w1->[1],
                   bob => $w2->[0], bea => $w2->[1]);
    my %want = map { $_ => 1 } values %users;

    if ($o{bob_twice}) {
        $clients{bob2} = $w1->[2];
        $users{bob2} = $users{bob};
        $want{ $users{bob} } = 2;
        $w2->[2]->close;
    }

    main::cluster_up_ok();
    $clients{$_}->call({type => 'register', userId => $users{$_}})
        for sort keys %clients;
    main::routes_ok(%want);

    return WsRelay::Traffic->new(
        clients => \%clients, users => \%users,
        pairs => [[alice => $users{bob}], [bob => $users{alice}],
                  [alice => $users{ann}], [bob => $users{bea}]]);
}

# the routes of the traffic's users now: {user => workers holding it}
sub traffic_routes {
    my $t = shift;

    my %want;
    $want{ $t->{users}{$_} }++ for keys %{ $t->{users} };
    $want{ $t->{users}{bob} } = 2 if $t->{users}{bob2};
    return %want;
}

# another nginx in the block's cluster: the same seeds, key prefix and
# locations, on the port after the test server's
sub second_nginx {
    return nginx_instance(
        workers => 2,
        port => $ENV{TEST_NGINX_SERVER_PORT} + 1,
        http_config => "    ws_relay_redis cluster=$ENV{TEST_NGINX_CLUSTER}"
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

# what a node answers a PING from a client that did not authenticate
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

# $from sends a chat to $to; returns the reply
sub chat {
    my ($from, $to, $text) = @_;

    $from->send_json({type => 'chat', targetUserId => $to, text => $text});
    return recv_msg($from);
}


# each block but the one of nginx -t gets a new cluster, with the
# password its ws_relay_redis names; every block a key prefix of its own
my $Blocks = 0;

add_block_preprocessor(sub {
    my $block = shift;

    $ENV{TEST_NGINX_RELAY_PREFIX} = "t:025:$$:" . ++$Blocks . ':';

    return if ($block->name // '') =~ /nginx -t/;

    my ($pass) = ($block->http_config // '') =~ /\spassword=(\S+?);?\s/;
    cluster_fresh(password => $pass);
});

# and stops it once the block is judged
add_test_cleanup_handler(sub { cluster_stop_all() });

our $HttpConfig = <<'_EOC_';
    ws_relay_redis cluster=$TEST_NGINX_CLUSTER prefix=$TEST_NGINX_RELAY_PREFIX;
_EOC_

our $Config = "    location = /ws {\n        ws_relay;\n    }\n"
              . api_routes_config();

ws_defaults(http_config => $HttpConfig, config => $Config);

master_on();
workers(2);
log_level('info');
run_tests();

__DATA__

=== TEST 1: users on each of the three masters: chats and notifications cross workers, each channel has one shard subscriber on its master, send-to-user reaches them, health follows the three masters, redis-info and connections see both workers, one topology refresh and no failover counted
--- ws_session
my @m = masters();
is(scalar @m, 3, 'three masters: ' . join(' ', @m));
my @alice = map { main::user_on($_, 'alice') } @m;
my @bob = map { main::user_on($_, 'bob') } @m;
isnt(main::owner_of($alice[$_]), main::owner_of($alice[$_ + 1]),
     "$alice[$_] and $alice[$_ + 1] are on different masters") for 0, 1;

my ($w1, $w2) = ws_open_per_worker('/ws', 3);
my (@A) = @$w1;
my (@B) = @$w2;
isnt($A[0]{pid}, $B[0]{pid}, 'the alices and the bobs are on different'
     . ' workers');
main::cluster_up_ok();
$A[$_]->call({type => 'register', userId => $alice[$_]}) for 0 .. 2;
$B[$_]->call({type => 'register', userId => $bob[$_]}) for 0 .. 2;
main::routes_ok(map { $_ => 1 } @alice, @bob);

for my $i (0 .. 2) {
    json_is($A[$i]->call({type => 'chat', targetUserId => $bob[$i],
                          text => "hi $i"}),
            {type => 'chat_delivered', targetUserId => $bob[$i],
             delivered => TRUE, timestamp => NOW},
            "$alice[$i]: delivered to $bob[$i] (master $m[$i])");
    json_is($B[$i]->recv_json, {type => 'chat', text => "hi $i",
                                sender => $alice[$i], timestamp => NOW},
            "$bob[$i] gets it");
    json_is($B[$i]->call({type => 'notification', targetUserId => $alice[$i],
                          data => {n => $i + 1}}),
            {type => 'notification_result', targetUserId => $alice[$i],
             delivered => TRUE, connections => 1, timestamp => NOW},
            "$bob[$i]: 1 connection of $alice[$i]");
    json_is($A[$i]->recv_json, {type => 'notification', action => 'general',
                                data => {n => $i + 1}, sender => $bob[$i],
                                timestamp => NOW},
            "$alice[$i] gets it");
}

# a sender whose own channel is on another master than its target's
json_is($A[0]->call({type => 'chat', targetUserId => $bob[2],
                     text => 'across'}),
        {type => 'chat_delivered', targetUserId => $bob[2], delivered => TRUE,
         timestamp => NOW}, "$alice[0] to $bob[2]: delivered");
json_is($B[2]->recv_json, {type => 'chat', text => 'across',
                           sender => $alice[0], timestamp => NOW},
        "$bob[2] gets it");

# whichever worker answers, one of the two users is on the other one
my %conn = map { ($alice[$_] => $A[$_], $bob[$_] => $B[$_]) } 0 .. 2;
for my $user (map { ($alice[$_], $bob[$_]) } 0 .. 2) {
    my $c = $conn{$user};
    for my $n (1, 2) {
        json_is(api_post('/api/send-to-user',
                         {userId => $user, message => "m$n"}),
                {success => TRUE, delivered => 1, userId => $user},
                "send-to-user $user, $n: delivered 1");
        json_is($c->recv_json, {type => 'notification', message => "m$n",
                                sender => 'system', timestamp => NOW},
                "$user gets it");
    }
}

my $h = main::health_until(sub { $_[0]{redis}{state} eq 'connected' });
json_is({ %{ $h->{redis} }, shards => [sort @{ $h->{redis}{shards} || [] }] },
        {state => 'connected', lastError => STRING,
         shards => [sort map { "127.0.0.1:$_" } @m]},
        'health: connected, following the three masters');
is($h->{status}, 'ok', 'health: ok');

my ($wa, $wb) = ($A[0]{pid}, $B[0]{pid});
my $r = wait_presence({$wa => \@alice, $wb => \@bob});
$_ = [sort @$_] for values %{ $r->{processUsers} || {} };
json_is($r->{processUsers}, {$wa => [sort @alice], $wb => [sort @bob]},
        'redis-info: the users of each worker');
json_is($r->{userProcesses}, {(map { $_ => "$wa" } @alice),
                              (map { $_ => "$wb" } @bob)},
        'redis-info: the worker of each user');
is($r->{localConnections}, 6, 'redis-info: 6 connections');

my $c = api_wait('/api/connections', sub { $_[0]{activeConnections} == 6 });
json_is({ %$c, workers => main::by_pid($c->{workers}) },
        {activeConnections => 6, maxConnections => NUMBER,
         workers => [ map { {pid => $_ + 0, connections => 3, users => 3,
                             redis => 'connected'} } sort { $a <=> $b }
                      $wa, $wb ]},
        'connections: 3 + 3, both workers connected');

my @pids = nginx_worker_pids();
my $refresh = main::counters('ws_relay_redis_topology_refreshes_total',
                             'metrics');
is(join(' ', map { $refresh->{$_} // 'none' } @pids), '1 1',
   'each worker counts one topology refresh: the first discovery');
my $failovers = main::counters('ws_relay_redis_failovers_total', 'metrics');
is(join(' ', map { $failovers->{$_} // 'none' } @pids), '0 0',
   'no worker counts a failover');

$_->expect_silence(0.1, 'nothing more') for @A, @B;
--- no_error_log
[error]
[warn]
[crit]
[alert]



=== TEST 2: two nginx on one cluster: users on each master reach each other from one nginx to the other, send-to-user from either counts the connections on both, redis-info of either lists the users of all four workers
--- ws_session
my $two = main::second_nginx();
my @two = (port => $two->port);
my @m = masters();
my @x = map { main::user_on($_, 'x') } @m;
my @y = map { main::user_on($_, 'y') } @m;
my @z = map { main::user_on($_, 'z') } @m;

# x on both nginx, y on the first only, z on the second only
my ($A, $B) = ws_open_per_worker('/ws', 3);
my ($C, $D) = $two->ws_open_per_worker('/ws', 3);
my ($wa, $wb) = ($A->[0]{pid}, $B->[0]{pid});
my ($wc, $wd) = ($C->[0]{pid}, $D->[0]{pid});
main::cluster_up_ok();
main::cluster_up_ok(@two);

for my $i (0 .. 2) {
    $A->[$i]->call({type => 'register', userId => $x[$i]});
    $D->[$i]->call({type => 'register', userId => $x[$i]});
    $B->[$i]->call({type => 'register', userId => $y[$i]});
    $C->[$i]->call({type => 'register', userId => $z[$i]});
}
main::routes_ok((map { $_ => 2 } @x), (map { $_ => 1 } @y, @z));

for my $i (0 .. 2) {
    my $j = ($i + 1) % 3;
    json_is($B->[$i]->call({type => 'chat', targetUserId => $z[$j],
                            text => "$i to $j"}),
            {type => 'chat_delivered', targetUserId => $z[$j],
             delivered => TRUE, timestamp => NOW},
            "$y[$i] on nginx one to $z[$j] on nginx two: delivered");
    json_is($C->[$j]->recv_json, {type => 'chat', text => "$i to $j",
                                  sender => $y[$i], timestamp => NOW},
            "$z[$j] gets it");
    json_is($C->[$i]->call({type => 'notification', targetUserId => $y[$i]}),
            {type => 'notification_result', targetUserId => $y[$i],
             delivered => TRUE, connections => 1, timestamp => NOW},
            "$z[$i] on nginx two to $y[$i] on nginx one: 1 connection");
    is($B->[$i]->recv_json->{sender}, $z[$i], "$y[$i] gets it");
}

for my $from ([one => ()], [two => @two]) {
    my ($name, @port) = @$from;

    for my $i (0 .. 2) {
        json_is(api_post('/api/send-to-user',
                         {userId => $x[$i], message => "$i via $name"},
                         @port, desc => "POST to nginx $name"),
                {success => TRUE, delivered => 2, userId => $x[$i]},
                "via nginx $name: $x[$i] (master $m[$i]): delivered 2");
        json_is($_->recv_json, {type => 'notification',
                                message => "$i via $name", sender => 'system',
                                timestamp => NOW},
                "via nginx $name: a connection of $x[$i] got it")
            for $A->[$i], $D->[$i];
    }
}

my $want = {$wa => [sort @x], $wb => [sort @y], $wc => [sort @z],
            $wd => [sort @x]};
for my $from ([one => ()], [two => @two]) {
    my ($name, @port) = @$from;
    my $r = wait_presence($want, @port);
    $_ = [sort @$_] for values %{ $r->{processUsers} || {} };
    json_is($r->{processUsers}, $want, "via nginx $name: processUsers");
}

$_->expect_silence(0.1, 'nothing more') for @$A, @$B, @$C, @$D;
$_->close for @$C, @$D;
$two->stop;
is(main::problems($two), '', 'the second nginx logged no error');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 3: the default prefix: a user held by both workers has one shard subscriber per worker on the master of "ws_relay:u:{<user>}" (PUBSUB SHARDNUMSUB 2) and none anywhere else, no SUBSCRIBE; as the workers let go of it: 1, then 0
--- http_config
    ws_relay_redis cluster=$TEST_NGINX_CLUSTER;
--- ws_session
my $m = (masters())[1];
my $carol = user_on_master($m, 'ws_relay:', 'carol');
my $chan = "ws_relay:u:{$carol}";
is(key_owner($chan), $m, "$chan is on master $m");

my $subs = sub {
    my $n = shard_subscribers($chan);
    return join ' ', map { "$_:$n->{$_}" } sort keys %$n;
};
my $subs_ok = sub {
    my ($want, $desc) = @_;
    my $got;
    wait_for(sub { ($got = $subs->()) eq $want }, 5);
    is($got, $want, "shard subscribers of $chan ($desc)");
};

my ($w1, $w2) = ws_open_per_worker('/ws', 3);
main::cluster_up_ok();
$_->call({type => 'register', userId => $carol})
    for $w1->[0], $w1->[1], $w2->[0];
$subs_ok->("$m:2", 'two connections on one worker, one on the other');

my $classic = 0;
for my $port (cluster_ports()) {
    my %n = @{ cluster_cmd($port, 'PUBSUB', 'NUMSUB', $chan) };
    $classic += $n{$chan};
}
is($classic, 0, 'no node has a SUBSCRIBE to it');

json_is($w2->[1]->call({type => 'notification', targetUserId => $carol}),
        {type => 'notification_result', targetUserId => $carol,
         delivered => TRUE, connections => 3, timestamp => NOW},
        'a notification reaches her 3 connections');
is($_->recv_json->{type}, 'notification', 'a connection of carol gets it')
    for $w1->[0], $w1->[1], $w2->[0];

$w1->[0]->close;
sleep 0.3;
$subs_ok->("$m:2", 'the first worker still holds one connection');
$w1->[1]->close;
$subs_ok->("$m:1", 'only the second worker holds her');
$w2->[0]->close;
$subs_ok->('', 'nobody holds her');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 4: history across the masters: messages kept for users away have increasing ids, their keys share the slot of the channel on its master, a register with since brings what came after, once and in order, then live ones
--- config
    location = /ws {
        ws_relay;
        ws_relay_history size=100 ttl=10m resume_unverified=on;
    }

    location /api/ {
        ws_relay_history size=100 ttl=10m;
        location = /api/health       { ws_relay_api health; }
        location = /api/send-to-user { ws_relay_api send; }
        location = /api/metrics      { ws_relay_api metrics; }
    }
--- ws_session
my @m = masters();
my @dan = map { main::user_on($_, 'dan') } @m;
my $P = main::prefix();

my ($alice, $bob) = (main::user_on($m[0], 'alice'),
                     main::user_on($m[1], 'bob'));

my ($w1, $w2) = ws_open_per_worker('/ws', 1);
my ($a, $b) = ($w1->[0], $w2->[0]);
main::cluster_up_ok();
$a->call({type => 'register', userId => $alice});
$b->call({type => 'register', userId => $bob});

my %ids;
for my $k (1 .. 3) {
    for my $i (0 .. 2) {
        my $r = main::chat($k % 2 ? $a : $b, $dan[$i], "m$k");
        json_is($r, {type => 'chat_delivered', targetUserId => $dan[$i],
                     delivered => FALSE, queued => TRUE, id => MSG_ID,
                     timestamp => NOW},
                "m$k to $dan[$i], who is away: queued, with an id");
        push @{ $ids{ $dan[$i] } }, $r->{id};
    }
    my $p = api_post('/api/send-to-user', {userId => $dan[$k - 1],
                                           message => "api$k"});
    json_is($p, {success => FALSE, delivered => 0, queued => TRUE,
                 id => MSG_ID, userId => $dan[$k - 1]},
            "send-to-user $dan[$k - 1]: queued, with an id");
    push @{ $ids{ $dan[$k - 1] } }, $p->{id};
}

for my $i (0 .. 2) {
    my $d = $dan[$i];
    is(increasing(@{ $ids{$d} }), '', "$d: the ids increase");

    my @keys = ("${P}u:{$d}", "${P}h:{$d}", "${P}m:{$d}");
    is(join(' ', map { key_slot($_) } @keys),
       join(' ', (key_slot($keys[0])) x 3),
       "$d: channel, history and meta in one slot");
    is(key_owner($keys[1]), $m[$i], "$d: on master $m[$i]");
    is(cluster_cmd($m[$i], 'XLEN', $keys[1]), 4,
       "$d: master $m[$i] keeps 4 messages");
    is(cluster_cmd($m[$i], 'EXISTS', @keys[1, 2]), 2,
       "$d: the history and its meta are there");
}

# each dan comes back on one worker or the other, since his first id
my ($v1, $v2) = ws_open_per_worker('/ws', 2);
my @back = ($v1->[0], $v2->[0], $v1->[1]);

for my $i (0 .. 2) {
    my ($d, $c) = ($dan[$i], $back[$i]);
    my @want = @{ $ids{$d} };

    json_is($c->call({type => 'register', userId => $d, since => $want[0]}),
            {type => 'register', status => 'success', userId => $d,
             timestamp => NOW, recovered => TRUE},
            "$d: register since his first id: recovered");
    my @got = recv_until($c, sub { $_[0]{id} eq $want[-1] }, 5);
    is(join(' ', map { $_->{id} } @got), join(' ', @want[1 .. $#want]),
       "$d: then the 3 later messages, once, in order");

    my $r = main::chat($i % 2 ? $a : $b, $d, 'live');
    json_is($r, {type => 'chat_delivered', targetUserId => $d,
                 delivered => TRUE, queued => FALSE, id => MSG_ID,
                 timestamp => NOW}, "$d: a live message is delivered");
    json_is(recv_msg($c), {type => 'chat', text => 'live',
                           sender => $i % 2 ? $alice : $bob,
                           timestamp => NOW, id => $r->{id}},
            "$d gets it, with its id");
    is(increasing($want[-1], $r->{id}), '', "$d: after the kept ones");
    $c->expect_silence(0.2, "$d: nothing more");
}

# the whole history, on the other worker
my $all = $v2->[1];
json_is($all->call({type => 'register', userId => $dan[0], since => '0'}),
        {type => 'register', status => 'success', userId => $dan[0],
         timestamp => NOW, recovered => TRUE},
        "$dan[0] again, since 0: recovered");
my @got = recv_until($all, sub { 0 }, 3, 0.5);
is(scalar @got, 5, "$dan[0]: the 4 kept messages and the live one");
is(increasing(map { $_->{id} } @got), '', 'in order');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 5: CLUSTER FAILOVER of the replica of the master of a user's channel, mid-traffic: delivery resumes by itself, no worker restarts, one subscription per worker on the new master and none left on the old one, health follows the new master, each worker counts the failover
--- ws_session
my $old = (masters())[0];
my $new = replica_of($old);
ok($new, "master $old has a replica: " . ($new // 'none'));
my $t = main::traffic(on => $old, bob_twice => 1);
my @pids = nginx_worker_pids();
my $before = main::counters('ws_relay_redis_failovers_total',
                            'before the failover');
$t->run_for(1);

my $asked = time;
my $promoted = cluster_failover($new, tick => sub { $t->round });
ok(defined $promoted, "CLUSTER FAILOVER: $new is a master"
   . sprintf(' (%.1f s after asking)', ($promoted // time) - $asked));
$promoted //= time;

# back: 5 rounds in a row delivered (a worker whose map is still the old
# one holds its acks for the new master until it has the new map, and a
# loaded machine may take a moment for that: the first round through may
# not be the last one late)
my $back = $t->run_until_delivered(10, 5);
ok(defined $back && $back - $promoted < 5 + 2,
   'delivery across workers resumes by itself within 5 s of the switch'
   . ' (+2 s slack): '
   . (defined $back ? sprintf('%.1f s', $back - $promoted) : 'never'));
$back //= time;
$t->run_for(1);

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $asked ? 'up' : $sent < $back ? 'fault' : 'up';
});

is(join(' ', nginx_worker_pids()), join(' ', @pids), 'the same workers');
is(main::owner_of($t->{users}{alice}), $new,
   'alice\'s and bob\'s channels are on the new master');
main::routes_ok(main::traffic_routes($t));

my $want = main::masters_named();
my $health = main::health_until(sub { main::shards($_[0]) eq $want
                                      && $_[0]{status} eq 'ok' });
is(main::shards($health), $want, 'health follows the new master');
json_is($health->{redis}, {state => 'connected', lastError => STRING,
                           shards => $health->{redis}{shards}},
        'health: connected');
main::grew_ok('ws_relay_redis_failovers_total', $before, 'after the switch');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 6: a master SIGKILLed mid-traffic: its replica takes over (cluster-node-timeout 1000), delivery resumes by itself, no worker restarts, no subscription twice, health follows the new master
--- ws_session
my $old = (masters())[1];
my $replica = replica_of($old);
my $t = main::traffic(on => $old, bob_twice => 1);
my @pids = nginx_worker_pids();
my $before = main::counters('ws_relay_redis_failovers_total',
                            'before the kill');
$t->run_for(1);

my $killed = time;
my ($new, $promoted) = kill_master($old, tick => sub { $t->round });
is($new, $replica, 'the replica takes over'
   . sprintf(' (a master %.1f s after the kill)', ($promoted // time) - $killed));
$promoted //= time;

# back: 5 rounds in a row delivered, as in TEST 5
my $back = $t->run_until_delivered(15, 5);
ok(defined $back && $back - $promoted < 5 + 2,
   'delivery across workers resumes by itself within 5 s of the promotion'
   . ' (+2 s slack): '
   . (defined $back ? sprintf('%.1f s', $back - $promoted) : 'never'));
$back //= time;
$t->run_for(1);

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $killed ? 'up' : $sent < $back ? 'fault' : 'up';
});

is(join(' ', nginx_worker_pids()), join(' ', @pids), 'the same workers');
main::routes_ok(main::traffic_routes($t));

my $want = main::masters_named();
unlike($want, qr/:$old\b/, 'the dead master serves no slot');
my $health = main::health_until(sub { main::shards($_[0]) eq $want
                                      && $_[0]{status} eq 'ok' });
is(main::shards($health), $want, 'health follows the new master');
is($health->{redis}{state}, 'connected', 'health: connected');
main::grew_ok('ws_relay_redis_failovers_total', $before, 'after the kill');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 7: with history, the slot of a user's channel migrated to another master while messages flow (traffic while it is MIGRATING/IMPORTING, and after its keys moved): every message reaches each of the user's connections exactly once, in order, with its id; the history moved with the slot; the subscriptions moved to the new master; each worker counts a topology refresh
--- config
    location = /ws {
        ws_relay;
        ws_relay_history size=1000 resume_unverified=on;
    }

    location = /api/health {
        ws_relay_api health;
    }

    location = /api/metrics {
        ws_relay_api metrics;
    }
--- ws_session
my @m = masters();
my ($from, $to) = @m[0, 1];
my $P = main::prefix();
my $x = main::user_on($from, 'xena');
my $slot = key_slot(main::chan($x));

my ($w1, $w2) = ws_open_per_worker('/ws', 2);
my %clients = (x1 => $w1->[0], alice => $w1->[1],
               x2 => $w2->[0], bob => $w2->[1]);
my %users = (x1 => $x, x2 => $x, alice => main::user_on($m[2], 'alice'),
             bob => main::user_on($m[2], 'bob'));
main::cluster_up_ok();
$clients{$_}->call({type => 'register', userId => $users{$_}})
    for sort keys %clients;
main::routes_ok($x => 2, $users{alice} => 1, $users{bob} => 1);

my $t = WsRelay::Traffic->new(clients => \%clients, users => \%users,
                              pairs => [[alice => $x], [bob => $x],
                                        [x1 => $users{bob}]]);
my @pids = nginx_worker_pids();
my $before = main::counters('ws_relay_redis_topology_refreshes_total',
                            'before the migration');
$t->run_for(1);

my $started = time;
my @steps = ("before: rounds 1-$t->{seq}");
my $moved = migrate_slot($slot, $from, $to,
    migrating => sub {
        my $first = $t->{seq} + 1;
        $t->run_for(1);
        push @steps, "slot migrating: rounds $first-$t->{seq}";
    },
    keys_moved => sub {
        my $first = $t->{seq} + 1;
        $t->run_for(1);
        push @steps, "keys moved: rounds $first-$t->{seq}";
    },
    tick => sub { $t->round });
push @steps, 'slot given to the new master after round ' . $t->{seq};
note(join '; ', @steps);
ok($moved >= 2, "slot $slot moved from $from to $to with its keys"
   . " ($moved, history and meta) in " . sprintf('%.1f s', time - $started));
is(master_of_slot($slot), $to, 'every node says so');
$t->run_for(1);
my $back = $t->run_until_delivered(5, 5);
ok(defined $back, 'the rounds are delivered again');
$t->run_for(0.5);

$t->check('every message judged', sub { 'kept' });

my @bare = $t->copies_without_id;
is(scalar @bare, 0, 'every copy that arrived carries an id')
    or diag(join ' ', @bare[0 .. ($#bare > 9 ? 9 : $#bare)]);
my @to_x = grep { $_->{to} eq $x } $t->sent;
my $kept = @to_x > 1000 ? 1000 : @to_x;
is(cluster_cmd($to, 'XLEN', "${P}h:{$x}"), $kept,
   "the new master keeps every message to $x (" . @to_x . ')');
is(cluster_cmd($to, 'EXISTS', "${P}m:{$x}"), 1, 'and the meta');

main::routes_ok($x => 2, $users{alice} => 1, $users{bob} => 1);
is(join(' ', nginx_worker_pids()), join(' ', @pids), 'the same workers');
main::grew_ok('ws_relay_redis_topology_refreshes_total', $before,
              'after the migration');
my $health = main::health_until(sub { $_[0]{status} eq 'ok' });
is(main::shards($health), main::masters_named(),
   'health: the same three masters');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 8: one master drops the subscriber links of nginx (CLIENT KILL TYPE pubsub) and takes no new client for a while (maxclients 1): health says degraded, traffic through the other masters goes on, then, once it takes clients again, health is connected and delivery through it resumes without restarting nginx
--- ws_session
my $victim = (masters())[2];
my $t = main::traffic(on => $victim);
my @pids = nginx_worker_pids();
$t->run_for(1);

# a link opened before, which can undo the limit
my $admin = node_link($victim);
is($admin->cmd('CONFIG', 'SET', 'maxclients', 1), 'OK',
   "master $victim takes no new client");
my $dropped = time;
is($admin->cmd('CLIENT', 'KILL', 'TYPE', 'pubsub'), 2,
   'it drops the two subscriber links of nginx');

my $h = main::health_until(
    sub { !grep { $_->{redis} eq 'connected' } @{ $_[0]{workers} } }, 3);
is($h->{status}, 'degraded', 'health: degraded'
   . sprintf(' (%.1f s after the drop)', time - $dropped));
is(join(' ', map { $_->{redis} eq 'connected' ? 'connected' : 'not' }
             @{ main::by_pid($h->{workers}) }), 'not not',
   'neither worker says it is connected: '
   . join(', ', map { $_->{redis} } @{ $h->{workers} }));
isnt($h->{redis}{state} // 'connected', 'connected',
     'nor does the one answering: ' . ($h->{redis}{state} // 'none'));

$t->run_for(1);
(undef, $h) = http_get_json('/api/health');
is($h->{status}, 'degraded', 'still degraded a second later');

is($admin->cmd('CONFIG', 'SET', 'maxclients', 10000), 'OK',
   'the master takes clients again');
$admin->close;
my $restored = time;

my $back = $t->run_until_delivered(10, 5);
ok(defined $back && $back - $restored < 5 + 2,
   'delivery through it resumes within 5 s (+2 s slack): '
   . (defined $back ? sprintf('%.1f s', $back - $restored) : 'never'));
$back //= time;
$t->run_for(1);

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $dropped ? 'up' : $sent < $back ? 'fault' : 'up';
});

is(join(' ', nginx_worker_pids()), join(' ', @pids), 'the same workers');
main::routes_ok(main::traffic_routes($t));
$h = main::health_until(sub { $_[0]{status} eq 'ok' });
is($h->{status}, 'ok', 'health: ok again');
json_is({ %{ $h->{redis} }, shards => main::shards($h) },
        {state => 'connected', lastError => STRING,
         shards => main::masters_named()},
        'health: connected to the three masters');
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 9: the first seed is down: the workers find the cluster through the next one, and follow all three masters
--- http_config
    ws_relay_redis cluster=$TEST_NGINX_CLUSTER_DOWN_FIRST
                   prefix=$TEST_NGINX_RELAY_PREFIX;
--- ws_session
ok(!node_running(spare_port()), 'nothing runs on the first seed\'s port');
my @m = masters();
my @alice = map { main::user_on($_, 'alice') } @m;
my @bob = map { main::user_on($_, 'bob') } @m;
my ($w1, $w2) = ws_open_per_worker('/ws', 3);
main::cluster_up_ok();
$w1->[$_]->call({type => 'register', userId => $alice[$_]}) for 0 .. 2;
$w2->[$_]->call({type => 'register', userId => $bob[$_]}) for 0 .. 2;
main::routes_ok(map { $_ => 1 } @alice, @bob);

for my $i (0 .. 2) {
    json_is($w2->[$i]->call({type => 'chat', targetUserId => $alice[$i],
                             text => "hi $i"}),
            {type => 'chat_delivered', targetUserId => $alice[$i],
             delivered => TRUE, timestamp => NOW},
            "$bob[$i] to $alice[$i] (master $m[$i]): delivered");
    is($w1->[$i]->recv_json->{text}, "hi $i", "$alice[$i] gets it");
}
--- no_error_log
[crit]
[alert]
[emerg]



=== TEST 10: password=: the workers authenticate to every master; users on each of them reach each other across workers
--- http_config
    ws_relay_redis cluster=$TEST_NGINX_CLUSTER password=cluster-secret
                   prefix=$TEST_NGINX_RELAY_PREFIX;
--- ws_session
like(main::unauthenticated_ping($_), qr/^-NOAUTH/,
     "node $_ asks for a password") for cluster_ports();

my $t = main::traffic(on => (masters())[1]);
$t->run_for(1);
$t->check('every message judged', sub { 'up' });

my $h = main::health_until(sub { $_[0]{status} eq 'ok' });
json_is({ %{ $h->{redis} }, shards => main::shards($h) },
        {state => 'connected', lastError => STRING,
         shards => main::masters_named()},
        'health: connected to the three masters');
--- no_error_log
NOAUTH
WRONGPASS
[error]
[crit]
[alert]



=== TEST 11: nginx -t: the cluster form with every parameter, and the forms it refuses
--- ws_session
my $c = $ENV{TEST_NGINX_CLUSTER};
my ($p1, $p2) = cluster_ports();
my $loc = "    location = /ws {\n        ws_relay;\n    }\n";

my @good = (
    "cluster=$c",
    "cluster=127.0.0.1:$p1",
    "cluster=$c password=secret prefix=app: timeout=1s ack_timeout=200ms",
);

for my $args (@good) {
    my ($status, $out) = nginx_config_test(
        http_config => "    ws_relay_redis $args;\n", config => $loc);
    is($status, 0, "\"$args\" is accepted") or diag($out);
}

my @bad = (
    ["cluster=$c db=1", 'db= with cluster='],
    ["db=1 cluster=$c", 'db= before cluster='],
    ["cluster=$c sentinel=127.0.0.1:$p2 master=mymaster",
     'sentinel= with cluster='],
    ["sentinel=127.0.0.1:$p2 master=mymaster cluster=$c",
     'cluster= with sentinel='],
    ['cluster=', 'an empty list'],
    ["cluster=127.0.0.1:$p1,,127.0.0.1:$p2", 'an empty address in the list'],
    ['cluster=127.0.0.1:99999', 'a port out of range'],
    ['cluster=127.0.0.1:abc', 'a port that is no number'],
    ["cluster=$c colour=red", 'an unknown parameter'],
    ["cluster=$c \"prefix={app}:\"",
     'a prefix with a hash tag (every key on one master)'],
);

for my $case (@bad) {
    my ($args, $why) = @$case;
    my ($status, $out) = nginx_config_test(
        http_config => "    ws_relay_redis $args;\n", config => $loc);
    isnt($status, 0, "$why (\"$args\"): nginx -t fails");
    like($out, qr/\[emerg\] .*(?:cluster|ws_relay_redis)|\[emerg\] invalid/,
         "$why: an [emerg] says why") or diag($out);
}
--- http_config
--- no_error_log
[error]
[crit]
[alert]
