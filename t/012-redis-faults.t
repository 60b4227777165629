# Faults under traffic: Redis killed and restarted, Redis paused
# (SIGSTOP), a worker SIGKILLed, nginx reloaded, Redis dropping the
# workers' links. Short Redis timeouts keep the faults short. Each block
# says what may be lost while its fault lasts, and checks every message
# outside it: delivered and received exactly once, in order; and never,
# even within the fault, a message reported delivered that did not
# arrive, or one that arrived twice or out of order.

use Test::Nginx::Socket;
use WsRelay::Test;
use WsRelay::Redis;

redis_start();

if (!redis_managed()) {
    plan(skip_all => 'the Redis on port ' . redis_port() . ' was not started'
                     . ' by the tests: they may not kill it');
}

plan('no_plan');


# Traffic: every round, each sender sends one chat to each of its
# targets and reads the replies; every chat that arrives anywhere is
# recorded. check() then judges each message by the phase it was sent in.
package Traffic;

use Time::HiRes qw(sleep time);

# Traffic->new(reconnect => sub { $user -> a new registered client },
#              clients => {user => client, ...}, pairs => [[from, to], ...])
sub new {
    my ($class, %opts) = @_;

    return bless { %opts, seq => 0, sent => [], got => {}, closed => {} },
                 $class;
}

sub client { $_[0]{clients}{$_[1]} }

# A round: returns true when every chat of it was delivered.
sub round {
    my $self = shift;

    my $seq = ++$self->{seq};
    my (%mine, @round);

    for my $pair (@{ $self->{pairs} }) {
        my ($from, $to) = @$pair;
        my $c = $self->client($from);
        next if $self->{closed}{$from};

        my $m = { from => $from, to => $to, seq => $seq, sent => time,
                  local => $c->{pid} == $self->client($to)->{pid} };
        $c->send_json({type => 'chat', targetUserId => $to,
                       text => "$from>$to:$seq"});
        push @{ $self->{sent} }, $m;
        push @{ $mine{$from} }, $m;
        push @round, $m;
    }

    for my $from (sort keys %mine) {
        for my $m (@{ $mine{$from} }) {
            my $r = $self->reply($from) or last;
            $m->{delivered} = $r->{delivered} ? 1 : 0;
            $m->{took} = time - $m->{sent};
        }
    }

    $self->pump($_, 0.002) for sort keys %{ $self->{clients} };
    $self->reconnect_closed;

    return @round && !grep { !$_->{delivered} } @round;
}

# the next reply to $user, recording the chats on the way
sub reply {
    my ($self, $user) = @_;

    while (1) {
        my $m = $self->receive($user, 3) or return undef;
        return $m if $m->{type} eq 'chat_delivered';
    }
}

sub pump {
    my ($self, $user, $secs) = @_;

    1 while $self->receive($user, $secs);
}

# The next message of $user's connection; a chat is recorded, a close
# marks the connection closed. undef when nothing came in time.
sub receive {
    my ($self, $user, $secs) = @_;

    return undef if $self->{closed}{$user};

    my $m = $self->client($user)->next_message($secs) or return undef;

    if ($m->{type} eq 'close' || $m->{type} eq 'eof') {
        $self->{closed}{$user} = $m->{code} // 'eof';
        return undef;
    }

    my $msg = JSON::PP->new->utf8->decode($m->{data});

    if ($msg->{type} eq 'chat') {
        my ($from, $to, $seq) = $msg->{text} =~ /^(\w+)>(\w+):(\d+)$/
            or die "unexpected chat \"$msg->{text}\"\n";
        die "$user got a chat for $to\n" if $to ne $user;
        push @{ $self->{got}{"$from>$to"} }, $seq;
    }

    return $msg;
}

sub reconnect_closed {
    my $self = shift;

    for my $user (sort keys %{ $self->{closed} }) {
        my $old = $self->client($user);
        push @{ $self->{closes} }, $self->{closed}{$user};
        $old->send_close(1000) if $self->{closed}{$user} ne 'eof'
                                  && !$old->{eof};
        $self->{clients}{$user} = $self->{reconnect}->($user);
        delete $self->{closed}{$user};
    }
}

# rounds for $secs seconds
sub run_for {
    my ($self, $secs) = @_;

    my $end = time + $secs;
    while (time < $end) {
        $self->round;
        sleep 0.01;
    }
}

# rounds until one is fully delivered; the time it was sent, or undef
sub run_until_delivered {
    my ($self, $secs) = @_;

    my $end = time + $secs;
    while (time < $end) {
        my $start = time;
        return $start if $self->round;
        sleep 0.02;
    }
    return undef;
}

# Judges every message by $phase->(send time, message):
#   up     delivered, received once
#   down   Redis away: a local chat delivered and received once, one to
#          another worker reported not delivered and never received
#   fault  a local chat as in "up"; one to another worker may be lost,
#          and may even arrive though reported not delivered (its ack was
#          lost, or Redis ran its PUBLISH after the link was given up)
#   any    may be lost either way (its connection was closing)
# In every phase: reported delivered means received once; nothing is
# received twice; each sender's chats to a target arrive in order.
sub check {
    my ($self, $name, $phase) = @_;

    $self->pump($_, 0.5) for sort keys %{ $self->{clients} };

    my %count;
    for my $key (keys %{ $self->{got} }) {
        $count{"$key:$_"}++ for @{ $self->{got}{$key} };
    }

    my (%bad, %phases, $late);

    for my $m (@{ $self->{sent} }) {
        my $p = $phase->($m->{sent}, $m);
        my $n = $count{"$m->{from}>$m->{to}:$m->{seq}"} // 0;
        my $what = "$m->{from}>$m->{to}:$m->{seq}"
                   . ' (' . ($m->{local} ? 'local' : 'cross')
                   . ', delivered ' . ($m->{delivered} // 'no reply')
                   . ", received $n)";

        $phases{$p}++;

        $late++ if defined $m->{delivered} && !$m->{delivered} && $n;
        push @{ $bad{'received twice'} }, $what if $n > 1;
        push @{ $bad{'reported delivered, never received'} }, $what
            if $m->{delivered} && $n == 0;

        my $strict = $p eq 'up' || ($m->{local} && $p ne 'any');

        if ($strict && !($m->{delivered} && $n == 1)) {
            push @{ $bad{"lost ($p)"} }, $what;
        }

        if ($p eq 'down' && !$m->{local}
            && (!defined $m->{delivered} || $m->{delivered} || $n))
        {
            push @{ $bad{'crossed workers without Redis'} }, $what;
        }
    }

    for my $key (sort keys %{ $self->{got} }) {
        my $seqs = $self->{got}{$key};
        push @{ $bad{'out of order'} }, "$key:$seqs->[$_]"
            for grep { $seqs->[$_] <= $seqs->[$_ - 1] } 1 .. $#$seqs;
    }

    Test::More::ok(!%bad, "$WsRelay::Test::BlockName - $name: "
                   . join(', ', map { "$phases{$_} $_" } sort keys %phases)
                   . ' (' . ($late // 0) . ' arrived though reported not'
                   . ' delivered)')
        or Test::More::diag(join "\n", map {
               my @l = @{ $bad{$_} };
               "$_: " . @l . ': ' . join(' ', @l[0 .. ($#l > 9 ? 9 : $#l)])
           } sort keys %bad);
}

# the slowest reply to a chat sent within [$from, $to)
sub slowest {
    my ($self, $from, $to) = @_;

    my @t = map { $_->{took} // 99 }
            grep { $_->{sent} >= $from && $_->{sent} < $to }
            @{ $self->{sent} };
    my ($max) = sort { $b <=> $a } @t;
    return $max // 0;
}


package main;

# Clients for the traffic: alice and ann on the first worker, bob and bea
# on the second; alice and bob chat across workers, each also to the
# user beside it.
sub traffic {
    my ($w1, $w2) = ws_open_per_worker('/ws', 2);
    my %clients = (alice => $w1->[0], ann => $w1->[1],
                   bob => $w2->[0], bea => $w2->[1]);

    redis_up_ok(values %clients);
    $clients{$_}->call({type => 'register', userId => $_})
        for sort keys %clients;
    redis_routes_ok(alice => 1, ann => 1, bob => 1, bea => 1);

    return Traffic->new(
        clients => \%clients,
        pairs => [[qw(alice bob)], [qw(bob alice)], [qw(alice ann)],
                  [qw(bob bea)]],
        reconnect => sub {
            my $user = shift;
            my $c = ws_open('/ws');
            $c->call({type => 'register', userId => $user});
            return $c;
        });
}

# Redis as each block expects it at its start: up, empty, unpaused
add_block_preprocessor(sub {
    redis_resume();
    redis_start();
    redis_cmd('FLUSHALL');
});

ws_defaults(http_config => <<'_EOC_', config => <<'_EOC_');
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms
                   ack_timeout=300ms;
_EOC_
    location = /ws {
        ws_relay;
    }

    location = /api/health {
        ws_relay_api health;
    }
_EOC_

master_on();
workers(2);
log_level('info');
run_tests();

__DATA__

=== TEST 1: Redis killed and restarted mid-traffic: local delivery goes on, cross-worker delivery comes back by itself
--- ws_session
# May be lost: chats across workers sent within 0.3 s of the kill, and
# between the restart and the first round that is delivered again (the
# workers reconnect with backoff); those sent while Redis is away must
# say "not delivered". Local chats are never lost.
my $t = main::traffic();
$t->run_for(1);

my $killed = time;
redis_kill();
$t->run_for(0.5);

my ($status, $health) = http_get_json('/api/health');
is($health->{status}, 'degraded', 'health: degraded while Redis is away');
$t->run_for(0.5);

my $restarted = time;
redis_start();
my $back = $t->run_until_delivered(5);
ok(defined $back, 'cross-worker delivery comes back by itself within 5 s'
                  . sprintf(' (%.1f s)', ($back // time) - $restarted));
$back //= time;
$t->run_for(1);

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $killed ? 'up'
         : $sent < $killed + 0.3 ? 'fault'
         : $sent < $restarted ? 'down'
         : $sent < $back ? 'fault' : 'up';
});

my @nodes = map { $t->client($_)->node } qw(alice bob);
redis_routes_ok(alice => 1, ann => 1, bob => 1, bea => 1);
is(join(' ', redis_numsub(map { "ws_relay:n:$_" } @nodes)), '1 1',
   'one subscriber on each node channel');
my @links = grep { $_->{flags} !~ /O/ } redis_clients();
is(join(' ', sort map { $_->{sub} } @links), '0 0 3 3',
   'two links per worker, no leftover: each subscriber has its node and'
   . ' two users');
is(join(' ', sort @{ redis_cmd('SMEMBERS', "ws_relay:node:$nodes[0]:users") }),
   'alice ann', 'the presence set is written again');
ok(wait_for(sub { (http_get_json('/api/health'))[1]{status} eq 'ok' }),
   'health: ok again');
--- error_log
ws relay: redis commands link lost
ws relay: redis subscriber link lost
redis commands link: could not connect
--- no_error_log
[crit]
[alert]



=== TEST 2: Redis paused: sends complete within ack_timeout, local delivery goes on, all recovers after SIGCONT
--- ws_session
# May be lost: chats across workers sent while Redis is stopped, and
# until the first round delivered after it resumes; they say "not
# delivered" (Redis may still run the PUBLISH it had buffered once it
# resumes: such a chat arrives late). Local chats are never lost.
my $t = main::traffic();
$t->run_for(0.5);

my $paused = time;
redis_pause();
$t->run_for(1.2);

my ($status, $health) = http_get_json('/api/health');
is($status, 200, 'health answers while Redis hangs');
is($health->{status}, 'degraded', 'health: degraded');
$t->run_for(0.3);

my $resumed = time;
redis_resume();
my $back = $t->run_until_delivered(5);
ok(defined $back, 'cross-worker delivery comes back within 5 s'
                  . sprintf(' (%.1f s)', ($back // time) - $resumed));
$back //= time;
$t->run_for(1);

my $slowest = $t->slowest($paused, $resumed);
ok($slowest < 0.3 + 0.4, sprintf('every send answered within ack_timeout'
                                 . ' (300 ms) and a margin: %.0f ms',
                                 $slowest * 1000));

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $paused ? 'up' : $sent < $back ? 'fault' : 'up';
});

redis_routes_ok(alice => 1, ann => 1, bob => 1, bea => 1);
my @links = grep { $_->{flags} !~ /O/ } redis_clients();
is(join(' ', sort map { $_->{sub} } @links), '0 0 3 3',
   'two links per worker, no leftover');
--- error_log
ws relay: redis commands link: command timed out, reconnecting
ws relay: redis commands link: timed out connecting, reconnecting
ws relay: a delivery got no PUBLISH reply in time
--- no_error_log
[crit]
[alert]



=== TEST 3: a worker SIGKILLed: its users' routes are gone, the new worker serves
--- ws_session
# May be lost: everything for the connections of the killed worker (they
# die with it). Nothing else.
my ($w1, $w2) = ws_open_per_worker('/ws', 2);
my ($alice, $ann) = @$w1;
my ($bob, $bob2) = @$w2;
redis_up_ok($alice, $bob);
$alice->call({type => 'register', userId => 'alice'});
$ann->call({type => 'register', userId => 'ann'});
$_->call({type => 'register', userId => 'bob'}) for $bob, $bob2;
redis_routes_ok(alice => 1, ann => 1, bob => 1);

my $dead = $bob->{pid};
my $node = $bob->node;
kill 'KILL', $dead;
ok(wait_for(sub { !kill 0, $dead } ), 'the worker is gone');
is($bob->next_message(3)->{type}, 'eof', 'its clients lose the connection');

redis_routes_ok(alice => 1, ann => 1, bob => 0);
is((redis_numsub("ws_relay:n:$node"))[0], 0, 'its node channel is gone');

json_is($alice->call({type => 'notification', targetUserId => 'bob'}),
        {type => 'notification_result', targetUserId => 'bob',
         delivered => FALSE, connections => 0, timestamp => NOW},
        'bob is reached nowhere');

my $ttl = redis_cmd('PTTL', "ws_relay:node:$node:users");
ok($ttl > 0 && $ttl <= 30_000,
   "the dead worker's presence set expires within 30 s ($ttl ms)");
my $lease = redis_cmd('ZSCORE', 'ws_relay:nodes', $node);
ok(defined $lease && $lease <= time * 1000 + 30_000,
   'its lease ends within 30 s');

my @pids = nginx_workers_up();
is(scalar @pids, 2, 'the master started another worker');
ok(!grep({ $_ == $dead } @pids), 'not the dead one');

my ($v1, $v2) = ws_open_per_worker('/ws', 1);
my ($new) = grep { $_->{pid} != $alice->{pid} } $v1->[0], $v2->[0];
redis_up_ok($new);
$new->call({type => 'register', userId => 'bob'});
redis_routes_ok(bob => 1);
json_is($alice->call({type => 'chat', targetUserId => 'bob', text => 'back'}),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => TRUE,
         timestamp => NOW}, 'bob on the new worker: delivered');
json_is($new->recv_json, {type => 'chat', text => 'back', sender => 'alice',
                          timestamp => NOW}, 'bob gets it');
json_is($new->call({type => 'chat', targetUserId => 'ann', text => 'hi'}),
        {type => 'chat_delivered', targetUserId => 'ann', delivered => TRUE,
         timestamp => NOW}, 'and the new worker reaches the old one');
is($ann->recv_json->{text}, 'hi', 'ann gets it');
--- error_log eval
['[alert]', qr/worker process \d+ exited on signal 9/]
--- no_error_log
[crit]
link lost



=== TEST 4: nginx reloaded under traffic: clients get 1001, reconnect, traffic resumes
--- ws_session
# May be lost: chats sent from the HUP until traffic is fully delivered
# again on the new workers (connections closing, new workers joining
# Redis); a chat reported delivered still arrives. Nothing after.
my $t = main::traffic();
my @old = nginx_worker_pids();
my @old_nodes = map { $t->client($_)->node } qw(alice bob);
$t->run_for(0.5);

my $hup = time;
kill 'HUP', nginx_pid();
my $back;
my $end = time + 10;
while (time < $end) {
    $t->round;
    my %pids = map { $t->client($_)->{pid} => 1 } qw(alice ann bob bea);
    next if grep { $pids{$_} } @old;
    $back = $t->run_until_delivered(5);
    last;
}
ok(defined $back, 'every client is on a new worker and delivered to'
                  . sprintf(' (%.1f s)', ($back // time) - $hup));
$back //= time;
$t->run_for(1);

is(join(' ', sort @{ $t->{closes} || [] }), '1001 1001 1001 1001',
   'each client was closed with 1001 once');
ok(wait_for(sub { !grep { kill 0, $_ } @old }, 5),
   'the old workers are gone');

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $hup ? 'up' : $sent < $back ? 'any' : 'up';
});

redis_routes_ok(map { $_ => 1 } qw(alice ann bob bea));
is(join(' ', redis_numsub(map { "ws_relay:n:$_" } @old_nodes)), '0 0',
   'the old workers left their node channels');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 5: Redis drops the subscriber links, then the command links: each comes back with all it had
--- ws_session
# May be lost: chats across workers from the drop until the first round
# delivered again. Redis keeps its data: nothing else changes.
my $t = main::traffic();
my @nodes = map { $t->client($_)->node } qw(alice bob);
$t->run_for(0.5);

my $dropped = time;
is(redis_cmd('CLIENT', 'KILL', 'TYPE', 'pubsub'), 2,
   'Redis drops the two subscriber links');
my $back = $t->run_until_delivered(5);
ok(defined $back, 'delivery across workers is back within 5 s'
                  . sprintf(' (%.1f s)', ($back // time) - $dropped));
redis_routes_ok(alice => 1, ann => 1, bob => 1, bea => 1);
$t->run_for(0.5);

my $dropped2 = time;
is(redis_cmd('CLIENT', 'KILL', 'TYPE', 'normal'), 2,
   'Redis drops the two command links');
my $back2 = $t->run_until_delivered(5);
ok(defined $back2, 'delivery across workers is back within 5 s'
                   . sprintf(' (%.1f s)', ($back2 // time) - $dropped2));
$back //= time;
$back2 //= time;
$t->run_for(0.5);

$t->check('every message judged', sub {
    my $sent = shift;
    return $sent < $dropped ? 'up'
         : $sent < $back ? 'fault'
         : $sent < $dropped2 ? 'up'
         : $sent < $back2 ? 'fault' : 'up';
});

is(join(' ', redis_numsub(map { "ws_relay:n:$_" } @nodes)), '1 1',
   'one subscriber on each node channel');
my @links = grep { $_->{flags} !~ /O/ } redis_clients();
is(join(' ', sort map { $_->{sub} } @links), '0 0 3 3',
   'two links per worker, no leftover');
--- error_log
ws relay: redis subscriber link lost
ws relay: redis commands link lost
--- no_error_log
[crit]
[alert]
