# Redis answering with errors, or with replies of a type the module does
# not expect: a real redis-server made to misbehave, by ACL rules that
# deny a command or channels (real NOPERM error replies), or by renaming
# GETSET to PUBLISH (real nil and bulk string replies to "PUBLISH"). Each
# reply is logged, the worker lives on (same pid), local delivery goes
# on, "delivered" stays honest, and all recovers once Redis behaves.

use Test::Nginx::Socket;
use WsRelay::Test;
use WsRelay::Redis;

redis_start();

if (!redis_managed()) {
    plan(skip_all => 'the Redis on port ' . redis_port() . ' was not started'
                     . ' by the tests: they may not reconfigure it');
}

plan('no_plan');

# A Redis that behaves, at the start of every block
add_block_preprocessor(sub {
    redis_resume();
    redis_start();
    redis_cmd('ACL', 'SETUSER', 'default', 'reset', 'on', 'nopass', '~*',
              '&*', '+@all');
    redis_cmd('FLUSHALL');
});

# alice and ann on the first worker, bob on the second, and "both" on
# each; returns them, all registered and routed
sub cluster {
    my ($w1, $w2) = ws_open_per_worker('/ws', 3);
    my %c = (alice => $w1->[0], ann => $w1->[1], both1 => $w1->[2],
             bob => $w2->[0], both2 => $w2->[2]);
    $w2->[1]->close;

    redis_up_ok(values %c);
    for my $name (sort keys %c) {
        (my $user = $name) =~ s/\d$//;
        $c{$name}->call({type => 'register', userId => $user});
    }
    redis_routes_ok(alice => 1, ann => 1, bob => 1, both => 2);

    return \%c;
}

# What must hold while Redis misbehaves: the local chat and notification
# are delivered, the one to the other worker is honestly not, and
# nothing arrives where it was not reported.
sub local_only {
    my $c = shift;

    json_is($c->{alice}->call({type => 'chat', targetUserId => 'ann',
                               text => 'local'}),
            {type => 'chat_delivered', targetUserId => 'ann',
             delivered => TRUE, timestamp => NOW}, 'local chat: delivered');
    is($c->{ann}->recv_json->{text}, 'local', 'ann gets it');

    json_is($c->{alice}->call({type => 'chat', targetUserId => 'bob',
                               text => 'cross'}),
            {type => 'chat_delivered', targetUserId => 'bob',
             delivered => FALSE, timestamp => NOW},
            'chat to the other worker: not delivered');

    json_is($c->{alice}->call({type => 'notification',
                               targetUserId => 'both'}),
            {type => 'notification_result', targetUserId => 'both',
             delivered => TRUE, connections => 1, timestamp => NOW},
            'notification to a user on both workers: the local connection');
    is($c->{both1}->recv_json->{type}, 'notification',
       'the local connection gets it');

    $c->{bob}->expect_silence(0.3, 'bob got nothing');
    $c->{both2}->expect_silence(0.1, 'nor did the other connection');
}

# Redis behaves again: within 5 s a chat crosses workers, then both
# connections of "both" are counted
sub recovers {
    my $c = shift;

    my $ok = wait_for(sub {
        my $r = $c->{alice}->call({type => 'chat', targetUserId => 'bob',
                                   text => 'probe'});
        $c->{bob}->recv_all(0.05) if $r->{delivered};
        return $r->{delivered};
    }, 5);
    ok($ok, "$WsRelay::Test::BlockName - delivery across workers is back");

    redis_routes_ok(alice => 1, ann => 1, bob => 1, both => 2);
    json_is($c->{bob}->call({type => 'notification', targetUserId => 'both'}),
            {type => 'notification_result', targetUserId => 'both',
             delivered => TRUE, connections => 2, timestamp => NOW},
            'both connections of "both" are reached again');
}

ws_defaults(http_config => <<'_EOC_');
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms
                   ack_timeout=300ms;
_EOC_

master_on();
workers(2);
log_level('info');
run_tests();

__DATA__

=== TEST 1: PUBLISH answered with an error (denied by an ACL)
--- ws_session
my $c = main::cluster();
my @pids = nginx_worker_pids();

redis_cmd('ACL', 'SETUSER', 'default', '-publish');
main::local_only($c);
is("@{[ nginx_worker_pids() ]}", "@pids", 'the same workers');

redis_cmd('ACL', 'SETUSER', 'default', '+publish');
main::recovers($c);
is("@{[ nginx_worker_pids() ]}", "@pids", 'still the same workers');
--- error_log
ws relay: redis commands link: PUBLISH failed: NOPERM
--- no_error_log
[crit]
[alert]



=== TEST 2: SUBSCRIBE answered with an error (user channels denied by an ACL)
--- ws_session
my $c = main::cluster();
my @pids = nginx_worker_pids();

# node channels only: Redis drops the subscribers of the users' channels,
# and refuses them when they subscribe again
redis_cmd('ACL', 'SETUSER', 'default', 'resetchannels', '&ws_relay:n:*');
sleep 0.5;
main::local_only($c);
is("@{[ nginx_worker_pids() ]}", "@pids", 'the same workers');

redis_cmd('ACL', 'SETUSER', 'default', 'allchannels');
main::recovers($c);
is("@{[ nginx_worker_pids() ]}", "@pids", 'still the same workers');
--- error_log
ws relay: redis subscriber link lost: NOPERM
--- no_error_log
[crit]
[alert]



=== TEST 3: PUBLISH answered with a nil and a bulk string (GETSET renamed PUBLISH)
--- ws_session
my $c = main::cluster();
my @pids = nginx_worker_pids();

redis_restart('--rename-command', 'PUBLISH', 'REALPUBLISH',
              '--rename-command', 'GETSET', 'PUBLISH');
# both workers on this Redis: their "PUBLISH" (GETSET) made the keys
ok(wait_for(sub {
    $c->{alice}->call({type => 'notification', targetUserId => 'x1'});
    $c->{bob}->call({type => 'notification', targetUserId => 'x2'});
    redis_cmd('EXISTS', 'ws_relay:u:{x1}', 'ws_relay:u:{x2}') == 2;
}, 5), 'both workers send to the new Redis');
json_is($c->{alice}->call({type => 'notification', targetUserId => 'x1'}),
        {type => 'notification_result', targetUserId => 'x1',
         delivered => FALSE, connections => 0, timestamp => NOW},
        'answered with a bulk string: nobody reached');

main::local_only($c);
is("@{[ nginx_worker_pids() ]}", "@pids", 'the same workers');

redis_restart();
main::recovers($c);
is("@{[ nginx_worker_pids() ]}", "@pids", 'still the same workers');
--- error_log
ws relay: redis PUBLISH answered with type 4
ws relay: redis PUBLISH answered with type 1
--- no_error_log
[crit]
[alert]
